/*
 * jit.S - cortex-m4-mram register save/restore of the just-in-time checkpoint
 * (runtime/jit.c has the design). AAPCS: callee-saved r4-r11, sp, lr. The firmware
 * runs in thread mode on the MSP, so `sp` here is the MSP.
 */
    .syntax unified
    .thumb

/* int rt_checkpoint(void): push r4-r11 and lr (r3 keeps SP 8-byte aligned), save the
 * stack from there up (jit.c), return 0. */
    .section .text.rt_checkpoint,"ax",%progbits
    .globl  rt_checkpoint
    .type   rt_checkpoint,%function
    .thumb_func
    .p2align 1
rt_checkpoint:
    push    {r3-r11, lr}
    mov     r0, sp                  @ the checkpoint's SP
    bl      rt_jit_save             @ r0 = 0; r4-r11 preserved
    pop     {r3-r11, pc}
    .size   rt_checkpoint, .-rt_checkpoint

/* void rt_jit_resume(const word *stack = r0, word *sp = r1): copy the image to
 * sp .. __stack_top using registers only (this overwrites rt_restore's frame: nothing
 * here uses it), then return from rt_checkpoint with 1. */
    .section .text.rt_jit_resume,"ax",%progbits
    .globl  rt_jit_resume
    .type   rt_jit_resume,%function
    .thumb_func
    .p2align 2
rt_jit_resume:
    ldr     r2, =__stack_top
    mov     r3, r1
1:  cmp     r3, r2
    bhs     2f
    ldr     r12, [r0], #4
    str     r12, [r3], #4
    b       1b
2:  mov     sp, r1
    movs    r0, #1
    pop     {r3-r11, pc}
    .ltorg
    .size   rt_jit_resume, .-rt_jit_resume
