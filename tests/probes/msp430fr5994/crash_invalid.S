/*
 * crash_invalid (msp430fr5994) - an opcode that is no MSP430X instruction.
 *
 * The word 0x13C0 sits in the CALLA block of the MSP430X instruction map
 * (0x1300-0x13FF): RETI is 0x1300 and CALLA uses 0x134x-0x139x and 0x13Bx
 * (Rdst, x(Rdst), @Rdst, @Rdst+, &abs20, EDE, #imm20); 0x13Ax and
 * 0x13C0-0x13FF encode nothing, with or without an extension word.  Ghidra's
 * MSP430X decoder (TI_MSP430X) also rejects it.  The MSP430 has no
 * illegal-instruction trap, so on silicon the effect is undefined; the
 * emulator must stop with a FAULT (invalid instruction).  The assembler has
 * no mnemonic for it, hence the .word.
 *
 * No C runtime: the reset vector (0xFFFE) points to _start.
 *
 * Instructions ([n] = n-th instruction executed):
 *   [1] mov.w #0x5A80, &0x015C     stop the watchdog
 *   [2] mov.w #0x1234, r4          r4 = 0x1234
 *   [3] .word 0x13C0               FAULT: invalid instruction
 *   done: jmp $ (0x3FFF)           only reached if [3] does not fault
 *
 * Expected outcome: a FAULT at PC = `bad_insn` (the address of [3]) with
 * exactly 2 instructions retired; r4 = 0x1234.
 *
 * Symbols: _start, bad_insn, done.
 */
    .section .text._start,"ax",@progbits
    .globl  _start
    .type   _start,@function
_start:
    mov.w   #0x5a80, &0x015c        ; [1] stop the watchdog
    mov.w   #0x1234, r4             ; [2]
    .globl  bad_insn
bad_insn:
    .word   0x13c0                  ; [3] invalid opcode -> FAULT
    .globl  done
    .type   done,@function
done:
    jmp     .
    .size   done, .-done
    .size   _start, .-_start

    .section .resetvec,"a",@progbits
    .word   _start
