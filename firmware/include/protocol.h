/*
 * Host protocol, firmware side: COBS frames with CRC-16/CCITT-FALSE over the UART.
 * Wire format: docs/protocol.md (the host side is emu/protocol.py).
 */
#ifndef FIRMWARE_PROTOCOL_H
#define FIRMWARE_PROTOCOL_H

#include <stdint.h>

/* Largest frame this firmware accepts: type + seq + body + crc, before COBS. Longer
 * frames (the host allows up to 1024 bytes) are dropped and counted. */
#ifndef PROTO_MAX_FRAME
#define PROTO_MAX_FRAME 260
#endif
#define PROTO_MAX_BODY (PROTO_MAX_FRAME - 4)

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint16_t len;
    uint8_t body[PROTO_MAX_BODY];
} proto_frame_t;

/* Frames dropped since boot (bad COBS, too short, too long, bad CRC). */
extern uint16_t proto_dropped;

uint16_t proto_crc16(const uint8_t *data, uint16_t len, uint16_t crc);

/* Block until a valid frame arrives; corrupt frames are dropped and counted. */
void proto_receive(proto_frame_t *frame);

/* Wait until the UART has a byte. proto_receive calls it only when none is waiting, so
 * its address marks "waiting for the host" (emu.Machine completes a run there when no
 * host input is pending). */
void proto_wait_input(void);

/* Send one frame; len <= PROTO_MAX_BODY. */
void proto_send(uint8_t type, uint8_t seq, const uint8_t *body, uint16_t len);

#endif /* FIRMWARE_PROTOCOL_H */
