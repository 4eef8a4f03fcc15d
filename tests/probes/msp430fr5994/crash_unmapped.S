/*
 * crash_unmapped (msp430fr5994) - a load from an address in no region.
 *
 * 0x1000 lies between the peripherals (0x0000-0x0FFF) and info FRAM
 * (0x1800-0x19FF): no region of the board's memory map covers 0x1000-0x17FF.
 * (On the real chip 0x1000-0x17FF holds the bootloader ROM and reads do not
 * trap - the MSP430 has no bus fault; the emulator's map leaves it unmapped,
 * so the read must stop the run with a FAULT.)
 *
 * No C runtime: the reset vector (0xFFFE) points to _start.
 *
 * Instructions ([n] = n-th instruction executed):
 *   [1] mov.w #0x5A80, &0x015C     stop the watchdog
 *   [2] mov.w #0x1234, r4          r4 = 0x1234
 *   [3] mov.w &0x1000, r5          FAULT: read of unmapped address 0x1000
 *   done: jmp $ (0x3FFF)           only reached if [3] does not fault
 *
 * Expected outcome: a FAULT at PC = `bad_load` (the address of [3]) with
 * exactly 2 instructions retired; r4 = 0x1234, r5 unchanged.
 *
 * Symbols: _start, bad_load, done.
 */
    .section .text._start,"ax",@progbits
    .globl  _start
    .type   _start,@function
_start:
    mov.w   #0x5a80, &0x015c        ; [1] stop the watchdog
    mov.w   #0x1234, r4             ; [2]
    .globl  bad_load
bad_load:
    mov.w   &0x1000, r5             ; [3] unmapped read -> FAULT
    .globl  done
    .type   done,@function
done:
    jmp     .
    .size   done, .-done
    .size   _start, .-_start

    .section .resetvec,"a",@progbits
    .word   _start
