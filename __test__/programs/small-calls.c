// Exercises the small system-call families a program meets in passing:
// membarrier, personality, the mlock family, mincore, kcmp, and the calls
// that act on the host machine. Prints one line per check with the
// result or errno name, so a run can be compared with a native one.
//   small-calls safe        what any process may do (same answers natively)
//   small-calls privileged  calls no container may make (never run natively:
//                           as host root they would set the host's clock)
#define _GNU_SOURCE
#include <errno.h>
#include <linux/kcmp.h>
#include <linux/membarrier.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void safe(void) {
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    printf("membarrier query has private expedited: %d\n", q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0);
    show("membarrier private before registering", syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0));
    show("membarrier register", syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0));
    show("membarrier private", syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0));
    show("membarrier global", syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0));
    show("membarrier bad flags", syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 1, 0));

    show("personality query", personality(0xffffffff));
    show("personality set", personality(PER_LINUX | ADDR_NO_RANDOMIZE));
    show("personality now", personality(0xffffffff));
    pid_t c = fork();
    if (c == 0) {
        show("personality in child", personality(0xffffffff));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    personality(PER_LINUX);

    long page = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m[0] = 1;
    show("mlock", mlock(m, 4 * page));
    show("mlock2 onfault", syscall(SYS_mlock2, m, page, MLOCK_ONFAULT));
    show("mlock2 bad flags", syscall(SYS_mlock2, m, page, 8));
    show("munlock", munlock(m, 4 * page));
    show("mlockall bad flags", mlockall(0));
    show("mlockall", mlockall(MCL_CURRENT | MCL_FUTURE));
    show("munlockall", munlockall());
    unsigned char vec[4] = {9, 9, 9, 9};
    show("mincore", mincore(m, 4 * page, vec));
    printf("mincore first page resident: %d\n", vec[0] & 1);
    show("mincore unaligned", mincore(m + 1, page, vec));
    munmap(m + 2 * page, page);
    show("mlock over a hole", mlock(m, 4 * page));
    show("mincore over a hole", mincore(m, 4 * page, vec));

    pid_t me = getpid();
    int fd = dup(1);
    show("kcmp same file", syscall(SYS_kcmp, me, me, KCMP_FILE, 1, fd));
    show("kcmp same vm", syscall(SYS_kcmp, me, me, KCMP_VM, 0, 0));
    int p[2];
    if (pipe(p) != 0) return;
    c = fork();
    if (c == 0) {
        char b;
        read(p[0], &b, 1);
        _exit(0);
    }
    long vm = syscall(SYS_kcmp, me, c, KCMP_VM, 0, 0);
    printf("kcmp vm after fork differs: %d\n", vm == 1 || vm == 2);
    show("kcmp inherited file", syscall(SYS_kcmp, me, c, KCMP_FILE, fd, fd));
    show("kcmp bad type", syscall(SYS_kcmp, me, c, 99, 0, 0));
    show("kcmp no such fd", syscall(SYS_kcmp, me, c, KCMP_FILE, 1000, 1000));
    write(p[1], "x", 1);
    waitpid(c, NULL, 0);
}

static void privileged(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    show("clock_settime", clock_settime(CLOCK_REALTIME, &ts));
    show("clock_settime monotonic", clock_settime(CLOCK_MONOTONIC, &ts));
    struct timeval tv = {ts.tv_sec, 0};
    show("settimeofday", settimeofday(&tv, NULL));
    show("reboot bad magic", syscall(SYS_reboot, 1, 2, LINUX_REBOOT_CMD_CAD_OFF, 0));
    show("reboot", syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF, 0));
    show("iopl", syscall(SYS_iopl, 3));
    show("swapoff", syscall(SYS_swapoff, "/nothing"));
    show("delete_module", syscall(SYS_delete_module, "nothing", 0));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "privileged") == 0)
        privileged();
    else
        safe();
    return 0;
}
