// Legacy system-call entries from a 64-bit process, for
// __test__/legacy-entry.test.mjs: `int $0x80`,
// `sysenter`, and calls into the vsyscall page. Prints one line per probe.
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static sigjmp_buf back;
static volatile int caught;

static void on_signal(int sig) {
  caught = sig;
  siglongjmp(back, 1);
}

static long int80(long nr) {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

static long sysenter(long nr) {
  long ret;
  __asm__ volatile("push %%rbp\n\tmov %%rsp, %%rbp\n\tsysenter\n\tpop %%rbp" : "=a"(ret) : "a"(nr) : "memory", "rcx", "r11");
  return ret;
}

int main(int argc, char **argv) {
  const char *probe = argc > 1 ? argv[1] : "";
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGILL, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  if (sigsetjmp(back, 1)) {
    printf("%s: signal %s\n", probe, strsignal(caught));
    return 0;
  }
  if (!strcmp(probe, "int80")) {
    // 20: getpid for i386, writev for x86-64.
    printf("int80: rax %ld\n", int80(20));
  } else if (!strcmp(probe, "sysenter")) {
    printf("sysenter: rax %ld\n", sysenter(20));
  } else if (!strcmp(probe, "vgettimeofday")) {
    struct timeval tv = {0};
    long (*f)(struct timeval *, void *) = (void *)0xffffffffff600000;
    long r = f(&tv, NULL);
    printf("vgettimeofday: rax %ld, close to time(): %d\n", r, labs(tv.tv_sec - time(NULL)) <= 2);
  } else if (!strcmp(probe, "vtime")) {
    long (*f)(long *) = (void *)0xffffffffff600400;
    long t = 0;
    long r = f(&t);
    printf("vtime: same value stored %d, close to time(): %d\n", r == t, labs(r - time(NULL)) <= 2);
  } else if (!strcmp(probe, "vgetcpu")) {
    long (*f)(unsigned *, unsigned *, void *) = (void *)0xffffffffff600800;
    unsigned cpu = 99999, node = 99999;
    long r = f(&cpu, &node, NULL);
    printf("vgetcpu: rax %ld, cpu in range %d, node %u\n", r, cpu < 4096, node);
  } else if (!strcmp(probe, "vread")) {
    volatile unsigned char *p = (void *)0xffffffffff600000;
    printf("vread: byte %u\n", p[0]);
  } else if (!strcmp(probe, "vmiddle")) {
    long (*f)(void) = (void *)0xffffffffff600100;
    printf("vmiddle: rax %ld\n", f());
  } else {
    fprintf(stderr, "usage: legacy int80|sysenter|vgettimeofday|vtime|vgetcpu|vread|vmiddle\n");
    return 2;
  }
  return 0;
}
