/*
 * Test program (not an app): echo every valid frame back as a reply (type | 0x80, same
 * seq and body) until a frame of type 0x10 arrives; answer that with the number of
 * frames dropped since boot (u16 LE) and return (the startup's self-branch completes the
 * run). Built by `make firmware` into build/test-apps/<board>/proto_echo.elf.
 */
#include <stdint.h>

#include "protocol.h"
#include "uart.h"

static proto_frame_t frame;

int main(void)
{
    uart_init();
    for (;;) {
        proto_receive(&frame);
        if (frame.type == 0x10) {
            uint8_t dropped[2] = {(uint8_t)proto_dropped, (uint8_t)(proto_dropped >> 8)};
            proto_send(0x90, frame.seq, dropped, 2);
            return 0;
        }
        proto_send((uint8_t)(frame.type | 0x80), frame.seq, frame.body, frame.len);
    }
}
