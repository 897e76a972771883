#ifndef CTESTKIT_H
#define CTESTKIT_H

/* Steps CLOCK_REALTIME by +1 ns and back again with adjtimex(ADJ_SETOFFSET):
   no net change, but two clock sets that every TFD_TIMER_CANCEL_ON_SET timer
   hears. Returns 0, or the errno of the failing call (EPERM without
   CAP_SYS_TIME). For tests only. */
int ctestkit_step_wall_clock_by_nothing(void);

/* A pidfd for `pid` (pidfd_open(2)), or -1 with errno set. For tests only. */
int ctestkit_pidfd_open(int pid);

#endif
