#include <sys/syscall.h>
#include <unistd.h>
#include "CTestKit.h"

#include <errno.h>
#include <string.h>
#include <sys/timex.h>

static int step(long seconds, long nanoseconds) {
    struct timex change;
    memset(&change, 0, sizeof change);
    change.modes = ADJ_SETOFFSET | ADJ_NANO;
    change.time.tv_sec = seconds;
    change.time.tv_usec = nanoseconds; /* nanoseconds with ADJ_NANO */
    return adjtimex(&change) < 0 ? errno : 0;
}

int ctestkit_step_wall_clock_by_nothing(void) {
    int error = step(0, 1);
    if (error != 0) return error;
    return step(-1, 999999999); /* -1 ns */
}

int ctestkit_pidfd_open(int pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}
