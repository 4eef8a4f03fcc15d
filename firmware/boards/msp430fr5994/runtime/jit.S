/*
 * jit.S - msp430fr5994 register save/restore of the just-in-time checkpoint
 * (runtime/jit.c has the design). Plain MSP430: callee-saved R4-R10, SP = R1,
 * argument/return in R12, R13.
 */

/* int rt_checkpoint(void): push R4-R10, save the stack from there up (jit.c), return 0. */
    .section .text.rt_checkpoint,"ax",@progbits
    .globl  rt_checkpoint
    .type   rt_checkpoint,@function
    .p2align 1
rt_checkpoint:
    push.w  r4
    push.w  r5
    push.w  r6
    push.w  r7
    push.w  r8
    push.w  r9
    push.w  r10
    mov.w   r1, r12                 ; the checkpoint's SP
    call    #rt_jit_save            ; R12 = 0; R4-R10 preserved
    add.w   #14, r1                 ; drop the pushed R4-R10 (unchanged)
    ret
    .size   rt_checkpoint, .-rt_checkpoint

/* void rt_jit_resume(const word *stack = R12, word *sp = R13): copy the image to
 * SP .. __stack_top using registers only (this overwrites the frames of rt_restore and
 * of this function: nothing here uses them), then return from rt_checkpoint with 1. */
    .section .text.rt_jit_resume,"ax",@progbits
    .globl  rt_jit_resume
    .type   rt_jit_resume,@function
    .p2align 1
rt_jit_resume:
    mov.w   r13, r14
1:  cmp.w   #__stack_top, r14
    jhs     2f
    mov.w   @r12+, r15          ; (the assembler has no @Rn+ -> X(Rn) form)
    mov.w   r15, 0(r14)
    incd.w  r14
    jmp     1b
2:  mov.w   r13, r1
    pop.w   r10
    pop.w   r9
    pop.w   r8
    pop.w   r7
    pop.w   r6
    pop.w   r5
    pop.w   r4
    mov.w   #1, r12
    ret
    .size   rt_jit_resume, .-rt_jit_resume
