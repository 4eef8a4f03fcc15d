/*
 * Just-in-time checkpoint (rt.h, "just-in-time checkpoint"): the board-independent part.
 * The register save/restore is boards/<board>/runtime/jit.S.
 *
 * What a checkpoint holds: the used stack (SP .. __stack_top) and the volatile data
 * (__data_start .. __bss_end), plus the SP value. Registers are not stored separately:
 * rt_checkpoint (jit.S) pushes the callee-saved registers onto the stack before it calls
 * rt_jit_save, so the stack image above that SP holds them and, above them, the return
 * address into rt_checkpoint's caller and the caller's frames. Caller-saved registers need
 * no saving: rt_checkpoint is an ordinary external call, its caller keeps nothing in them.
 *
 * Layout (non-volatile): two slots, each { sp, stack image, data image }, and the commit
 * word rt_jit_valid (0 none, 1 slot 0, 2 slot 1). A checkpoint is written whole into the
 * slot that is NOT valid, then one word store of rt_jit_valid (after NV_BARRIER, a dsb on
 * Cortex-M) switches to it. A power failure anywhere before that store leaves the old
 * checkpoint (or none) in force, untouched; after it, the new one is complete.
 *
 * Restore (at boot, before the program does anything else): copy the data image back
 * (C, its own frame is on the stack, not in .data/.bss), then rt_jit_resume (jit.S) copies
 * the stack image into SRAM using registers only - the words it overwrites include
 * rt_restore's and its own frames, which are never used again - sets SP, pops the
 * callee-saved registers and returns 1 to rt_checkpoint's caller. Nothing is pushed during
 * the copy (interrupts are off after reset). Restoring writes only volatile memory and
 * leaves the checkpoint valid, so a failure during or after it simply restores again.
 *
 * From a power-warning interrupt handler. The handler's frames and the CPU's interrupt
 * frame are part of the live stack, so the image holds them: after a reboot rt_checkpoint
 * returns 1 inside the handler, which sets its peripheral up again and returns from the
 * interrupt to the interrupted instruction with every register as it was. On the MSP430
 * that return is an ordinary RETI from the restored stack. On Cortex-M it must be an
 * exception return, which only handler mode can make, while rt_restore runs in thread
 * mode at boot: rt_checkpoint records IPSR in its frame and rt_jit_resume enters handler
 * mode through `svc` (SVCall, the runtime's SVC_Handler in jit.S) to finish the restore
 * there; the handler's EXC_RETURN then unstacks the saved frame (IT state included) and
 * ends SVCall. Both are what the real parts do; no emulator-specific path.
 *
 * Limits: RT_JIT_STACK_MAX / RT_JIT_DATA_MAX bytes per slot (rt_fatal when the live
 * stack or the data do not fit). Peripheral state is not part of a checkpoint: a program
 * resumed from one must set up its peripherals again. On Cortex-M the firmware runs on the
 * MSP (thread mode with CONTROL.SPSEL = 0) and owns no other `svc`.
 */
#include "rt.h"

/* A stack or memory word: what SP and the section bounds are aligned to. */
typedef unsigned int word_t;

#ifndef RT_JIT_STACK_MAX
#if defined(__MSP430__)
#define RT_JIT_STACK_MAX 1024
#else
#define RT_JIT_STACK_MAX 4096
#endif
#endif
#ifndef RT_JIT_DATA_MAX
#if defined(__MSP430__)
#define RT_JIT_DATA_MAX 2048
#else
#define RT_JIT_DATA_MAX 16384
#endif
#endif
_Static_assert(RT_JIT_STACK_MAX % sizeof(word_t) == 0 && RT_JIT_DATA_MAX % sizeof(word_t) == 0,
               "RT_JIT_STACK_MAX and RT_JIT_DATA_MAX must be multiples of the word size");

typedef struct {
    word_t *sp; /* SP after rt_checkpoint's pushes: the image covers sp .. __stack_top */
    word_t stack[RT_JIT_STACK_MAX / sizeof(word_t)];
    word_t data[RT_JIT_DATA_MAX / sizeof(word_t)];
} slot_t;

extern word_t __data_start[], __bss_end[], __stack_top[];

NV static slot_t rt_jit_slot[2];
NV volatile uint16_t rt_jit_valid; /* the commit word: 0 none, 1 slot 0, 2 slot 1 */

/* jit.S: rt_checkpoint pushes the callee-saved registers and calls rt_jit_save with its
 * SP; rt_jit_resume copies a stack image to sp .. __stack_top and returns from
 * rt_checkpoint through it, with 1. */
int rt_jit_save(word_t *sp);
void rt_jit_resume(const word_t *stack, word_t *sp) __attribute__((noreturn));

int rt_jit_save(word_t *sp)
{
    uint16_t valid = rt_jit_valid;
    uint16_t target = valid == 1 ? 1 : 0; /* never the slot in force */
    volatile slot_t *slot = &rt_jit_slot[target];
    const volatile word_t *src;
    volatile word_t *dst;

    if ((uintptr_t)__stack_top - (uintptr_t)sp > RT_JIT_STACK_MAX)
        rt_fatal("rt_checkpoint: live stack larger than RT_JIT_STACK_MAX");
    if ((uintptr_t)__bss_end - (uintptr_t)__data_start > RT_JIT_DATA_MAX)
        rt_fatal("rt_checkpoint: .data + .bss larger than RT_JIT_DATA_MAX");

    slot->sp = sp;
    for (src = sp, dst = slot->stack; src < __stack_top;)
        *dst++ = *src++;
    for (src = __data_start, dst = slot->data; src < __bss_end;)
        *dst++ = *src++;
    NV_BARRIER();
    rt_jit_valid = (uint16_t)(target + 1); /* the commit */
    NV_BARRIER();
    return 0;
}

void rt_restore(void)
{
    uint16_t valid = rt_jit_valid;
    if (valid != 1 && valid != 2)
        return;
    const volatile slot_t *slot = &rt_jit_slot[valid - 1];
    word_t *sp = slot->sp;
    if (sp < __bss_end || sp > __stack_top || (uintptr_t)__stack_top - (uintptr_t)sp > RT_JIT_STACK_MAX)
        rt_fatal("rt_restore: checkpoint SP outside the stack");
    const volatile word_t *src = slot->data;
    for (volatile word_t *dst = __data_start; dst < __bss_end;)
        *dst++ = *src++;
    rt_jit_resume((const word_t *)slot->stack, sp);
}

void rt_checkpoint_clear(void)
{
    NV_BARRIER();
    rt_jit_valid = 0;
    NV_BARRIER();
}
