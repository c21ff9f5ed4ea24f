// One call that uses the file position of stdin or stdout, for the tests
// of positions shared across processes (__test__/file-position.test.mjs).
//
//   fpos OP TEXT [OFF]  output: puts TEXT and a newline on stdout with OP
//                       (write writev pwritev2 sendfile copy_file_range
//                       splice; pwrite pwritev at OFF, leaving the position)
//   fpos OP N [OFF]     input: takes N bytes from stdin with OP (read readv
//                       preadv2 sendfile-in copy_file_range-in splice-in;
//                       pread preadv at OFF) and writes them and a '|'
//   fpos seek-in N      lseek(0, N, SEEK_CUR)
//   fpos position FD    prints "position N" (lseek(FD, 0, SEEK_CUR))
// Exits 1 with a message on stderr when a call fails or falls short.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void check(ssize_t got, size_t want, const char *what) {
  if (got < 0) die(what);
  if ((size_t)got != want) {
    fprintf(stderr, "%s: %zd of %zu bytes\n", what, got, want);
    exit(1);
  }
}

// A file (unlinked) holding `data`, its position at 0.
static int file_with(const char *data, size_t len) {
  char path[] = "/tmp/fpos-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) die("mkstemp");
  unlink(path);
  check(write(fd, data, len), len, "write temp");
  if (lseek(fd, 0, SEEK_SET) != 0) die("lseek temp");
  return fd;
}

static void out(const char *op, const char *text, off_t off) {
  size_t len = strlen(text) + 1;
  char *buf = malloc(len);
  memcpy(buf, text, len - 1);
  buf[len - 1] = '\n';
  if (!strcmp(op, "write")) {
    check(write(1, buf, len), len, op);
  } else if (!strcmp(op, "writev")) {
    struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};
    check(writev(1, iov, 2), len, op);
  } else if (!strcmp(op, "pwritev2")) {
    struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};
    check(pwritev2(1, iov, 2, -1, 0), len, op);
  } else if (!strcmp(op, "pwrite")) {
    check(pwrite(1, buf, len - 1, off), len - 1, op);
  } else if (!strcmp(op, "pwritev")) {
    struct iovec iov = {buf, len - 1};
    check(pwritev(1, &iov, 1, off), len - 1, op);
  } else if (!strcmp(op, "sendfile")) {
    check(sendfile(1, file_with(buf, len), NULL, len), len, op);
  } else if (!strcmp(op, "copy_file_range")) {
    check(copy_file_range(file_with(buf, len), NULL, 1, NULL, len, 0), len, op);
  } else if (!strcmp(op, "splice")) {
    int p[2];
    if (pipe(p)) die("pipe");
    check(write(p[1], buf, len), len, "write pipe");
    check(splice(p[0], NULL, 1, NULL, len, 0), len, op);
  } else {
    fprintf(stderr, "fpos: unknown output op %s\n", op);
    exit(2);
  }
}

static void in(const char *op, size_t n, off_t off) {
  char *buf = calloc(1, n + 1);
  if (!strcmp(op, "read")) {
    check(read(0, buf, n), n, op);
  } else if (!strcmp(op, "readv")) {
    struct iovec iov[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
    check(readv(0, iov, 2), n, op);
  } else if (!strcmp(op, "preadv2")) {
    struct iovec iov[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
    check(preadv2(0, iov, 2, -1, 0), n, op);
  } else if (!strcmp(op, "pread")) {
    check(pread(0, buf, n, off), n, op);
  } else if (!strcmp(op, "preadv")) {
    struct iovec iov = {buf, n};
    check(preadv(0, &iov, 1, off), n, op);
  } else if (!strcmp(op, "sendfile-in")) {
    check(sendfile(1, 0, NULL, n), n, op);
  } else if (!strcmp(op, "copy_file_range-in")) {
    check(copy_file_range(0, NULL, 1, NULL, n, 0), n, op);
  } else if (!strcmp(op, "splice-in")) {
    int p[2];
    if (pipe(p)) die("pipe");
    check(splice(0, NULL, p[1], NULL, n, 0), n, op);
    check(read(p[0], buf, n), n, "read pipe");
  } else {
    fprintf(stderr, "fpos: unknown input op %s\n", op);
    exit(2);
  }
  // The transfers that wrote straight to stdout have nothing in buf.
  if (buf[0]) check(write(1, buf, n), n, "write");
  check(write(1, "|", 1), 1, "write");
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fpos OP ARG [OFF]\n");
    return 2;
  }
  const char *op = argv[1];
  off_t off = argc > 3 ? atoll(argv[3]) : 0;
  if (!strcmp(op, "position")) {
    off_t pos = lseek(atoi(argv[2]), 0, SEEK_CUR);
    if (pos < 0) die("lseek");
    printf("position %lld\n", (long long)pos);
  } else if (!strcmp(op, "seek-in")) {
    if (lseek(0, atoll(argv[2]), SEEK_CUR) < 0) die("lseek");
  } else if (strchr("0123456789", argv[2][0]) && strcmp(op, "pwrite") && strcmp(op, "pwritev")) {
    in(op, atoll(argv[2]), off);
  } else {
    out(op, argv[2], off);
  }
  return 0;
}
