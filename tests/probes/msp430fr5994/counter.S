/*
 * counter (msp430fr5994) - boot counter plus a resumable NV loop.
 *
 * No C runtime: the reset vector (0xFFFE) points to _start.
 *
 * Instructions ([n] = instruction number in the listing):
 *   [1] mov.w #0x5A80, &0x015C     stop the watchdog
 *   [2] inc.w &boots               boots += 1 (one read-modify-write instruction)
 *   loop:
 *   [3] cmp.w #10, &progress       progress - 10
 *   [4] jhs done                   leave when progress >= 10 (unsigned)
 *   [5] inc.w &progress            progress += 1 (one instruction)
 *   [6] jmp loop
 *   done: jmp $ (0x3FFF)           self-branch = completed
 *
 * Both NV words (FRAM) are 0 at flashing time.  A boot that starts with
 * progress = p (0 <= p <= 10) retires 2 + 4 * (10 - p) + 2 = 44 - 4p
 * instructions before PC reaches `done`: 44 on the first, uninterrupted run.
 * Each boot increments `boots` once, even after progress reached 10.
 * Power failures at any point: progress never goes back and never exceeds 10,
 * and after the final completed boot progress = 10, boots = number of boots
 * that executed [2].
 *
 * Symbols: _start, loop, done; boots, progress (16-bit objects in .nv).
 */
    .section .text._start,"ax",@progbits
    .globl  _start
    .type   _start,@function
_start:
    mov.w   #0x5a80, &0x015c        ; [1] stop the watchdog
    inc.w   &boots                  ; [2] boots += 1
    .globl  loop
loop:
    cmp.w   #10, &progress          ; [3]
    jhs     done                    ; [4] progress >= 10 -> done
    inc.w   &progress               ; [5] progress += 1
    jmp     loop                    ; [6]
    .globl  done
    .type   done,@function
done:
    jmp     .                       ; self-branch (0x3FFF)
    .size   done, .-done
    .size   _start, .-_start

    .section .nv,"aw",@progbits
    .p2align 1
    .globl  boots
    .type   boots,@object
    .size   boots, 2
boots:
    .word   0
    .globl  progress
    .type   progress,@object
    .size   progress, 2
progress:
    .word   0

    .section .resetvec,"a",@progbits
    .word   _start
