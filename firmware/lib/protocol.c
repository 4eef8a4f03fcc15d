/*
 * Host protocol framing (docs/protocol.md): COBS, CRC-16/CCITT-FALSE, drop-and-count.
 * Polled UART, static buffers: no heap, nothing that an emulator provides and a board
 * does not.
 */
#include "protocol.h"

#include "nv.h"
#include "uart.h"

uint16_t proto_dropped;

/* worst case COBS size of a PROTO_MAX_FRAME frame: one code byte per 254 bytes, plus one */
#define ENCODED_MAX (PROTO_MAX_FRAME + PROTO_MAX_FRAME / 254 + 1)

NOINIT static uint8_t encoded[ENCODED_MAX];
NOINIT static uint8_t raw[PROTO_MAX_FRAME];

uint16_t proto_crc16(const uint8_t *data, uint16_t len, uint16_t crc)
{
    while (len--) {
        crc ^= (uint16_t)(*data++) << 8;
        for (int i = 0; i < 8; i++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* COBS-decode encoded[0..n) into raw; returns the decoded length or -1. */
static int cobs_decode(uint16_t n)
{
    uint16_t in = 0, out = 0;
    while (in < n) {
        uint8_t code = encoded[in];
        if (code == 0 || (uint16_t)(in + code) > n)
            return -1;
        for (uint8_t k = 1; k < code; k++) {
            uint8_t b = encoded[in + k];
            if (b == 0 || out >= PROTO_MAX_FRAME)
                return -1;
            raw[out++] = b;
        }
        in = (uint16_t)(in + code);
        if (code < 0xFF && in < n) {
            if (out >= PROTO_MAX_FRAME)
                return -1;
            raw[out++] = 0;
        }
    }
    return out;
}

/* Called when the firmware needs a byte from the host and none has arrived: it waits for
 * one. A separate function so that an emulator can recognise "waiting for the host" by
 * its address (emu.Machine stops here when its UART input is empty); on a board it is an
 * ordinary polling loop. */
__attribute__((noinline, used)) void proto_wait_input(void)
{
    while (!uart_rx_ready())
        ;
}

static uint8_t next_byte(void)
{
    if (!uart_rx_ready())
        proto_wait_input();
    return (uint8_t)uart_getc();
}

void proto_receive(proto_frame_t *frame)
{
    for (;;) {
        uint16_t n = 0;
        int overflow = 0;
        for (;;) {
            uint8_t b = next_byte();
            if (b == 0)
                break;
            if (n < ENCODED_MAX)
                encoded[n++] = b;
            else
                overflow = 1; /* keep discarding until the delimiter */
        }
        if (n == 0 && !overflow)
            continue; /* idle line */
        int len = overflow ? -1 : cobs_decode(n);
        if (len < 4 || proto_crc16(raw, (uint16_t)(len - 2), 0xFFFF)
                           != (uint16_t)(raw[len - 2] | (raw[len - 1] << 8))) {
            proto_dropped++;
            continue;
        }
        frame->type = raw[0];
        frame->seq = raw[1];
        frame->len = (uint16_t)(len - 4);
        for (uint16_t i = 0; i < frame->len; i++)
            frame->body[i] = raw[2 + i];
        return;
    }
}

/* Send raw[0..n) COBS-encoded, then the delimiter. A block of 254 non-zero bytes at the
 * end is not followed by an empty block (as emu/protocol.py encodes). */
static void cobs_send(uint16_t n)
{
    uint16_t start = 0;
    while (start <= n) {
        uint16_t end = start;
        while (end < n && raw[end] != 0 && end - start < 254)
            end++;
        uint16_t run = (uint16_t)(end - start);
        uart_putc((char)(run + 1));
        for (uint16_t i = start; i < end; i++)
            uart_putc((char)raw[i]);
        if (run == 254) {
            if (end == n)
                break; /* no trailing empty block */
            start = end; /* the next block continues; no zero was consumed */
        } else {
            start = (uint16_t)(end + 1); /* skip the zero (or pass the end) */
        }
    }
    uart_putc(0);
}

/* Each frame starts with a delimiter as well as ending with one: a frame cut short by a
 * power failure (or any noise before it) is then ended and dropped by the receiver
 * instead of merging into this one. */
void proto_send(uint8_t type, uint8_t seq, const uint8_t *body, uint16_t len)
{
    if (len > PROTO_MAX_BODY)
        len = PROTO_MAX_BODY;
    raw[0] = type;
    raw[1] = seq;
    for (uint16_t i = 0; i < len; i++)
        raw[2 + i] = body[i];
    uint16_t crc = proto_crc16(raw, (uint16_t)(len + 2), 0xFFFF);
    raw[len + 2] = (uint8_t)crc;
    raw[len + 3] = (uint8_t)(crc >> 8);
    uart_putc(0);
    cobs_send((uint16_t)(len + 4));
}
