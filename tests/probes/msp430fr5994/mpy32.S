/*
 * mpy32 (msp430fr5994) - the MPY32 hardware multiplier (base 0x04C0).
 *
 * Registers used (MSP430FR5994 / FR58xx-59xx family, word access):
 *   MPY 0x04C0   MPYS 0x04C2   MAC 0x04C4    OP2 0x04C8
 *   RESLO 0x04CA RESHI 0x04CC  SUMEXT 0x04CE
 *   MPY32L 0x04D0 MPY32H 0x04D2 OP2L 0x04E0  OP2H 0x04E2
 *   RES0 0x04E4  RES1 0x04E6   RES2 0x04E8   RES3 0x04EA
 * Writing OP2 starts a 16-bit operation whose kind is chosen by the operand-1
 * register written last (MPY unsigned, MPYS signed, MAC unsigned accumulate:
 * RESHI:RESLO += op1 * op2 with the carry in SUMEXT); writing OP2H starts a
 * 32 x 32 operation with operand 1 from MPY32L/MPY32H.
 *
 * No C runtime: the reset vector (0xFFFE) points to _start.
 *
 * Instructions ([n] = n-th instruction executed):
 *   [1]  mov.w #0x5A80, &0x015C    stop the watchdog
 *   16 x 16 unsigned: 0x1234 * 0x5678 = 0x06260060
 *   [2]  mov.w #0x1234, &MPY
 *   [3]  mov.w #0x5678, &OP2
 *   [4]  mov.w &RESLO, &mpy_u16_lo      -> 0x0060
 *   [5]  mov.w &RESHI, &mpy_u16_hi      -> 0x0626
 *   16 x 16 signed: -5 * 300 = -1500 = 0xFFFFFA24
 *   [6]  mov.w #-5, &MPYS               (0xFFFB)
 *   [7]  mov.w #300, &OP2
 *   [8]  mov.w &RESLO, &mpy_s16_lo      -> 0xFA24
 *   [9]  mov.w &RESHI, &mpy_s16_hi      -> 0xFFFF
 *   [10] mov.w &SUMEXT, &mpy_s16_sumext -> 0xFFFF (result negative)
 *   multiply-accumulate: 100*200 + 300*400 + 0xFFFF*0xFFFF
 *                        = 0x1_000022E1 -> RES 0x000022E1, carry 1
 *   [11] mov.w #100, &MPY
 *   [12] mov.w #200, &OP2               RES = 20000
 *   [13] mov.w #300, &MAC
 *   [14] mov.w #400, &OP2               RES = 140000 (0x000222E0), SUMEXT 0
 *   [15] mov.w #0xFFFF, &MAC
 *   [16] mov.w #0xFFFF, &OP2            RES = 0x000022E1, SUMEXT = 0x0001
 *   [17] mov.w &RESLO, &mac_lo          -> 0x22E1
 *   [18] mov.w &RESHI, &mac_hi          -> 0x0000
 *   [19] mov.w &SUMEXT, &mac_sumext     -> 0x0001
 *   32 x 32 unsigned: 0x12345678 * 0x9ABCDEF0 = 0x0B00EA4E242D2080
 *   [20] mov.w #0x5678, &MPY32L
 *   [21] mov.w #0x1234, &MPY32H
 *   [22] mov.w #0xDEF0, &OP2L
 *   [23] mov.w #0x9ABC, &OP2H           starts the 32 x 32 multiply
 *   [24] nop                            latency margin before reading RES0..3
 *   [25] nop
 *   [26] mov.w &RES0, &mpy32_res0       -> 0x2080
 *   [27] mov.w &RES1, &mpy32_res1       -> 0x242D
 *   [28] mov.w &RES2, &mpy32_res2       -> 0xEA4E
 *   [29] mov.w &RES3, &mpy32_res3       -> 0x0B00
 *   done: jmp $ (0x3FFF)                self-branch = completed
 *
 * Expected outcome: 29 instructions retire before PC reaches `done`; the 12
 * NV words (FRAM, 16-bit, each 0xA5A5 at flashing time so that every store is
 * visible) hold the values after "->" above.
 *
 * Symbols: _start, done; mpy_u16_lo, mpy_u16_hi, mpy_s16_lo, mpy_s16_hi,
 * mpy_s16_sumext, mac_lo, mac_hi, mac_sumext, mpy32_res0 .. mpy32_res3
 * (16-bit objects in .nv, consecutive, in this order).
 */
    .set    MPY,    0x04c0
    .set    MPYS,   0x04c2
    .set    MAC,    0x04c4
    .set    OP2,    0x04c8
    .set    RESLO,  0x04ca
    .set    RESHI,  0x04cc
    .set    SUMEXT, 0x04ce
    .set    MPY32L, 0x04d0
    .set    MPY32H, 0x04d2
    .set    OP2L,   0x04e0
    .set    OP2H,   0x04e2
    .set    RES0,   0x04e4
    .set    RES1,   0x04e6
    .set    RES2,   0x04e8
    .set    RES3,   0x04ea

    .section .text._start,"ax",@progbits
    .globl  _start
    .type   _start,@function
_start:
    mov.w   #0x5a80, &0x015c        ; [1]  stop the watchdog
    mov.w   #0x1234, &MPY           ; [2]
    mov.w   #0x5678, &OP2           ; [3]
    mov.w   &RESLO, &mpy_u16_lo     ; [4]
    mov.w   &RESHI, &mpy_u16_hi     ; [5]
    mov.w   #-5, &MPYS              ; [6]
    mov.w   #300, &OP2              ; [7]
    mov.w   &RESLO, &mpy_s16_lo     ; [8]
    mov.w   &RESHI, &mpy_s16_hi     ; [9]
    mov.w   &SUMEXT, &mpy_s16_sumext ; [10]
    mov.w   #100, &MPY              ; [11]
    mov.w   #200, &OP2              ; [12]
    mov.w   #300, &MAC              ; [13]
    mov.w   #400, &OP2              ; [14]
    mov.w   #0xffff, &MAC           ; [15]
    mov.w   #0xffff, &OP2           ; [16]
    mov.w   &RESLO, &mac_lo         ; [17]
    mov.w   &RESHI, &mac_hi         ; [18]
    mov.w   &SUMEXT, &mac_sumext    ; [19]
    mov.w   #0x5678, &MPY32L        ; [20]
    mov.w   #0x1234, &MPY32H        ; [21]
    mov.w   #0xdef0, &OP2L          ; [22]
    mov.w   #0x9abc, &OP2H          ; [23]
    nop                             ; [24]
    nop                             ; [25]
    mov.w   &RES0, &mpy32_res0      ; [26]
    mov.w   &RES1, &mpy32_res1      ; [27]
    mov.w   &RES2, &mpy32_res2      ; [28]
    mov.w   &RES3, &mpy32_res3      ; [29]
    .globl  done
    .type   done,@function
done:
    jmp     .                       ; self-branch (0x3FFF)
    .size   done, .-done
    .size   _start, .-_start

    .macro NVWORD name
    .globl  \name
    .type   \name,@object
    .size   \name, 2
\name:
    .word   0xa5a5
    .endm

    .section .nv,"aw",@progbits
    .p2align 1
    NVWORD  mpy_u16_lo
    NVWORD  mpy_u16_hi
    NVWORD  mpy_s16_lo
    NVWORD  mpy_s16_hi
    NVWORD  mpy_s16_sumext
    NVWORD  mac_lo
    NVWORD  mac_hi
    NVWORD  mac_sumext
    NVWORD  mpy32_res0
    NVWORD  mpy32_res1
    NVWORD  mpy32_res2
    NVWORD  mpy32_res3

    .section .resetvec,"a",@progbits
    .word   _start
