/* Runtime-internal interfaces between its parts (not for apps). */
#ifndef FIRMWARE_RT_INTERNAL_H
#define FIRMWARE_RT_INTERNAL_H

#include <stdint.h>

/* Sequence number of the committed task state (task.c): the undo log's epoch. */
uint32_t rt_commit_seq(void);

/* Start the board's cycle counter at boot; the job's count goes on from here (task.c). */
void rt_cycles_boot(void);

/* Roll back the undo log if it belongs to the committed state (undo.c). */
void rt_undo_recover(void);

#endif
