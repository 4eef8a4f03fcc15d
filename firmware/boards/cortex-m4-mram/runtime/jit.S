/*
 * jit.S - cortex-m4-mram register save/restore of the just-in-time checkpoint
 * (runtime/jit.c has the design). AAPCS: callee-saved r4-r11, sp, lr. The firmware
 * runs on the MSP (thread mode, and handler mode always), so `sp` here is the MSP.
 *
 * Checkpoints in exception handlers (a power-warning ISR). rt_checkpoint records IPSR
 * in the padding word of its frame (the r3 slot). Returning through a checkpoint taken
 * in handler mode must happen in handler mode: the ISR's frames in the image end with
 * an EXC_RETURN branch, which only an exception handler may take. So rt_jit_resume,
 * called in thread mode at boot, enters handler mode with `svc #0` when the saved IPSR
 * is not 0, and SVC_Handler finishes the restore there. The ISR then returns by its
 * EXC_RETURN through the exception frame saved in the image (the interrupted thread's
 * registers, return address and xPSR, IT state included), and SVCall is the exception
 * that return deactivates (ARMv7-M: the return ends the active exception, whichever it
 * is). The SVC's own frame is never used. Nothing else may preempt the copy: after
 * reset no interrupt is enabled until the firmware sets one up.
 */
    .syntax unified
    .thumb

/* int rt_checkpoint(void): push IPSR (as padding: SP stays 8-byte aligned), r4-r11 and
 * lr, save the stack from there up (jit.c), return 0. */
    .section .text.rt_checkpoint,"ax",%progbits
    .globl  rt_checkpoint
    .type   rt_checkpoint,%function
    .thumb_func
    .p2align 1
rt_checkpoint:
    mrs     r3, ipsr                @ 0 in thread mode, else the active exception
    push    {r3-r11, lr}
    mov     r0, sp                  @ the checkpoint's SP
    bl      rt_jit_save             @ r0 = 0; r4-r11 preserved
    pop     {r3-r11, pc}
    .size   rt_checkpoint, .-rt_checkpoint

/* void rt_jit_resume(const word *stack = r0, word *sp = r1): copy the image to
 * sp .. __stack_top using registers only (this overwrites rt_restore's frame: nothing
 * here uses it), then return from rt_checkpoint with 1 - in handler mode (through
 * SVC_Handler) if the checkpoint was taken there. */
    .section .text.rt_jit_resume,"ax",%progbits
    .globl  rt_jit_resume
    .type   rt_jit_resume,%function
    .thumb_func
    .p2align 2
rt_jit_resume:
    ldr     r2, [r0]                @ the saved IPSR (image word 0: the r3 slot)
    cbz     r2, 3f
    svc     #0                      @ -> SVC_Handler, with r0 and r1 unchanged
    .globl  rt_jit_copy
    .type   rt_jit_copy,%function
    .thumb_func
rt_jit_copy:
3:
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

/* SVCall (exception 11): the handler-mode half of rt_jit_resume. The runtime's only
 * SVC: firmware that uses rt_checkpoint leaves `svc` to it. */
    .section .text.SVC_Handler,"ax",%progbits
    .globl  SVC_Handler
    .type   SVC_Handler,%function
    .thumb_func
    .p2align 1
SVC_Handler:
    b       rt_jit_copy
    .size   SVC_Handler, .-SVC_Handler
