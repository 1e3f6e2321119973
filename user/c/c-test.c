/* The C library's conformance test: each header's calls as a C program uses them, with the
   error cases POSIX gives them (EBADF, EACCES, EINVAL, ENOMEM, ENOENT, EEXIST, ECHILD, and
   mmap's MAP_FAILED with errno), and how wait reports a child's end (exit status, SIGSEGV,
   SIGBUS, SIGKILL). One PASS/FAIL line per check; exits with the number of failures. Needs a
   writable disk (it creates and removes ctest.txt, ctest.dat and ctest.map). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

/* One check: PASS, or FAIL with what was wanted and errno. */
static void check(int ok, const char *id, const char *what) {
    if (ok) {
        printf("PASS %s\n", id);
    } else {
        printf("FAIL %s: %s (errno %d: %s)\n", id, what, errno, strerror(errno));
        failures++;
    }
}

/* Whether a call failed with -1 and errno e (errno cleared first by the caller). */
#define FAILS(call, e) ((errno = 0, (call)) == -1 && errno == (e))

/* <stdio.h>: printf, fopen, fwrite, fread, fgets, fclose. */
static void test_stdio(void) {
    FILE *fp = fopen("ctest.txt", "w");
    int ok = fp != NULL;
    ok = ok && fprintf(fp, "line %d\n", 1) == 7;
    ok = ok && fwrite("second line\n", 1, 12, fp) == 12;
    ok = ok && fclose(fp) == 0;
    check(ok, "c-stdio-fopen-write", "fopen \"w\", fprintf, fwrite, fclose");

    char buf[64];
    fp = fopen("ctest.txt", "r");
    ok = fp != NULL && fgets(buf, sizeof buf, fp) != NULL && strcmp(buf, "line 1\n") == 0;
    ok = ok && fread(buf, 1, sizeof buf, fp) == 12 && memcmp(buf, "second line\n", 12) == 0;
    ok = ok && fgets(buf, sizeof buf, fp) == NULL && feof(fp);
    if (fp != NULL)
        fclose(fp);
    check(ok, "c-stdio-fgets-fread", "fgets and fread give back what was written");

    /* A last line without a newline, and a byte pushed back with ungetc. */
    fp = fopen("ctest.txt", "w");
    ok = fp != NULL && fputs("ab\nlast", fp) >= 0 && fclose(fp) == 0;
    fp = fopen("ctest.txt", "r");
    ok = ok && fp != NULL && fgets(buf, sizeof buf, fp) != NULL && strcmp(buf, "ab\n") == 0;
    ok = ok && fgets(buf, 1, fp) == buf && buf[0] == '\0';
    ok = ok && ungetc('L', fp) == 'L' && fgets(buf, 3, fp) != NULL && strcmp(buf, "Ll") == 0;
    ok = ok && fgets(buf, sizeof buf, fp) != NULL && strcmp(buf, "ast") == 0;
    ok = ok && fgets(buf, sizeof buf, fp) == NULL && feof(fp) && !ferror(fp);
    if (fp != NULL)
        fclose(fp);
    check(ok, "c-stdio-fgets-last-line", "fgets: a size of 1, a short buffer, ungetc, a last "
                                         "line without a newline, then NULL at the end");

    /* fread across many buffers of big.dat (each word its offset), then a short last item. */
    static uint64_t words[12500];
    fp = fopen("big.dat", "r");
    ok = fp != NULL && fread(words, 8, 12500, fp) == 12500;
    for (int k = 0; ok && k < 12500; k++)
        ok = words[k] == (uint64_t) k * 8;
    ok = ok && fseek(fp, -1500, SEEK_END) == 0 && fread(words, 1000, 2, fp) == 1 && feof(fp);
    if (fp != NULL)
        fclose(fp);
    check(ok, "c-stdio-fread-big", "fread of 100,000 bytes of big.dat, then a short last item");

    errno = 0;
    check(fopen("nofile.txt", "r") == NULL && errno == ENOENT, "c-stdio-fopen-enoent",
          "fopen of a missing file: NULL and ENOENT");
    char line[32];
    int n = snprintf(line, sizeof line, "%d %s %x %5.2f", -42, "str", 255, 3.14159);
    check(n == 16 && strcmp(line, "-42 str ff  3.14") == 0, "c-stdio-snprintf",
          "snprintf's formatting");
}

/* <stdlib.h> and <string.h>: malloc, calloc, realloc, free; ENOMEM for an impossible size. */
static void test_stdlib(void) {
    char *p = malloc(100000);
    int ok = p != NULL;
    if (ok) {
        memset(p, 0xab, 100000);
        ok = (unsigned char) p[99999] == 0xab;
    }
    int *z = calloc(1000, sizeof(int));
    ok = ok && z != NULL && z[0] == 0 && z[999] == 0;
    p = realloc(p, 200000);
    ok = ok && p != NULL && (unsigned char) p[99999] == 0xab;
    free(p);
    free(z);
    check(ok, "c-stdlib-malloc", "malloc, calloc, realloc keep their bytes");

    errno = 0;
    void *huge = malloc((size_t) 1 << 40);
    check(huge == NULL && errno == ENOMEM, "c-stdlib-malloc-enomem",
          "malloc of 1 TiB: NULL and ENOMEM");

    char s[16];
    strcpy(s, "abc");
    strcat(s, "def");
    check(strlen(s) == 6 && strcmp(s, "abcdef") == 0 && strncmp(s, "abx", 2) == 0 &&
              memchr(s, 'd', 6) == s + 3 && strstr(s, "cde") == s + 2,
          "c-string", "strcpy, strcat, strlen, strcmp, memchr, strstr");
    check(atoi("1234") == 1234 && strtol("-0x10", NULL, 16) == -16, "c-stdlib-atoi",
          "atoi and strtol");
}

/* <fcntl.h> and <unistd.h>: open's flags, read, write, lseek, ftruncate, close, unlink. */
static void test_files(void) {
    unlink("ctest.dat");
    int fd = open("ctest.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    check(fd >= 3, "c-open-creat", "open O_RDWR | O_CREAT | O_TRUNC");
    check(write(fd, "0123456789", 10) == 10, "c-write", "write 10 bytes");
    check(lseek(fd, 0, SEEK_CUR) == 10 && lseek(fd, 2, SEEK_SET) == 2, "c-lseek",
          "lseek SEEK_CUR and SEEK_SET");
    char buf[16] = {0};
    check(read(fd, buf, 4) == 4 && memcmp(buf, "2345", 4) == 0, "c-read", "read at the offset");
    check(lseek(fd, -3, SEEK_END) == 7 && read(fd, buf, 16) == 3 && memcmp(buf, "789", 3) == 0 &&
              read(fd, buf, 16) == 0,
          "c-read-eof", "SEEK_END, then 0 at the end of the file");
    check(FAILS(lseek(fd, -100, SEEK_SET), EINVAL) && FAILS(lseek(fd, 0, 7), EINVAL),
          "c-lseek-einval", "lseek to a negative offset or with a bad whence: EINVAL");
    struct stat st;
    check(ftruncate(fd, 5000) == 0 && fstat(fd, &st) == 0 && st.st_size == 5000 &&
              S_ISREG(st.st_mode),
          "c-ftruncate", "ftruncate grows the file (fstat)");
    check(lseek(fd, 4000, SEEK_SET) == 4000 && read(fd, buf, 4) == 4 &&
              memcmp(buf, "\0\0\0\0", 4) == 0,
          "c-ftruncate-zeros", "the new bytes read as zero");
    check(ftruncate(fd, 4) == 0 && fstat(fd, &st) == 0 && st.st_size == 4, "c-ftruncate-shrink",
          "ftruncate shrinks the file");
    check(FAILS(ftruncate(fd, -1), EINVAL), "c-ftruncate-einval", "negative length: EINVAL");
    check(close(fd) == 0, "c-close", "close");

    check(FAILS(read(fd, buf, 1), EBADF) && FAILS(write(fd, buf, 1), EBADF) &&
              FAILS(close(fd), EBADF) && FAILS(lseek(fd, 0, SEEK_SET), EBADF) &&
              FAILS(ftruncate(fd, 0), EBADF),
          "c-ebadf-closed", "read, write, close, lseek, ftruncate of a closed descriptor: EBADF");
    check(FAILS(read(-1, buf, 1), EBADF) && FAILS(write(12345, buf, 1), EBADF) &&
              FAILS(close(-7), EBADF),
          "c-ebadf-forged", "negative and never-opened descriptors: EBADF");

    fd = open("ctest.dat", O_RDONLY);
    check(fd >= 0 && FAILS(write(fd, "x", 1), EBADF), "c-write-rdonly-ebadf",
          "write to an O_RDONLY descriptor: EBADF");
    close(fd);
    check(FAILS(open("ctest.dat", O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST), "c-open-eexist",
          "O_CREAT | O_EXCL of an existing file: EEXIST");
    check(FAILS(open("nofile.dat", O_RDONLY), ENOENT) && FAILS(open("nodir/x.dat", O_RDONLY),
                                                                 ENOENT),
          "c-open-enoent", "open of a missing file or directory: ENOENT");
    check(FAILS(open("ctest.dat", O_RDWR | O_WRONLY), EINVAL), "c-open-einval",
          "access mode O_RDWR | O_WRONLY: EINVAL");
    check(FAILS(open(NULL, O_RDONLY), EFAULT), "c-open-efault", "a NULL path: EFAULT");
    fd = open("ctest.dat", O_RDWR | O_TRUNC);
    check(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 0, "c-open-trunc",
          "O_TRUNC empties the file");
    close(fd);

    /* O_DIRECT: whole sectors at sector-aligned offsets. */
    fd = open("ctest.dat", O_RDWR | O_DIRECT);
    static char sector[4096];
    memset(sector, 'd', sizeof sector);
    check(fd >= 0 && write(fd, sector, 4096) == 4096 && lseek(fd, 0, SEEK_SET) == 0 &&
              read(fd, sector, 512) == 512 && sector[511] == 'd',
          "c-open-direct", "O_DIRECT write and read of whole sectors");
    check(FAILS(read(fd, sector, 100), EINVAL), "c-direct-einval",
          "O_DIRECT read of a part of a sector: EINVAL");
    close(fd);

    check(unlink("ctest.dat") == 0 && FAILS(open("ctest.dat", O_RDONLY), ENOENT),
          "c-unlink", "unlink, then open: ENOENT");
    check(FAILS(unlink("ctest.dat"), ENOENT), "c-unlink-enoent", "unlink of a missing file");
    check(unlink("ctest.txt") == 0, "c-unlink-stdio-file", "unlink of the stdio test's file");
}

/* Runs fn in a child; its wait status. */
static int in_child(void (*fn)(void)) {
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = -1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return status;
}

static volatile char *fault_at;

/* The file server's block: a mapping's faults past the end of a file are SIGBUS from the
   first block wholly past it. */
#define BLOCK 65536

static void write_fault_at(void) {
    *fault_at = 1;
}

static void read_fault_at(void) {
    (void) *fault_at;
}

/* <sys/mman.h>: mmap, munmap, mprotect, msync, and their errors. */
static void test_mman(void) {
    char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(p != MAP_FAILED && p[0] == 0 && p[8191] == 0, "c-mmap-anon",
          "an anonymous mapping reads as zero");
    if (p != MAP_FAILED) {
        p[4096] = 'x';
        check(mprotect(p, 4096, PROT_READ) == 0, "c-mprotect", "mprotect to PROT_READ");
        fault_at = p;
        int status = in_child(write_fault_at);
        check(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV && !WIFEXITED(status),
              "c-wait-sigsegv", "a write to a read-only page: WIFSIGNALED with SIGSEGV");
        check(p[4096] == 'x' && munmap(p, 8192) == 0, "c-munmap", "munmap");
        status = in_child(read_fault_at);
        check(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "c-munmap-sigsegv",
              "a read of an unmapped page: SIGSEGV");
    }

    errno = 0;
    check(mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED &&
              errno == EINVAL,
          "c-mmap-einval", "mmap of length 0: MAP_FAILED and EINVAL");
    errno = 0;
    check(mmap(0, 4096, PROT_READ, MAP_SHARED, 12345, 0) == MAP_FAILED && errno == EBADF,
          "c-mmap-ebadf", "mmap of a bad descriptor: MAP_FAILED and EBADF");
    errno = 0;
    check(mmap(0, (size_t) 1 << 46, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
                  MAP_FAILED &&
              errno == ENOMEM,
          "c-mmap-enomem", "mmap of 64 TiB: MAP_FAILED and ENOMEM");
    errno = 0;
    check(mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, -4096) == MAP_FAILED &&
              errno == EINVAL,
          "c-mmap-negative-offset", "mmap at a negative offset: MAP_FAILED and EINVAL");

    /* A shared file mapping: stores reach the file (msync), read() sees them. */
    unlink("ctest.map");
    int fd = open("ctest.map", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int ok = fd >= 0 && ftruncate(fd, 4096) == 0;
    char *m = ok ? mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    ok = ok && m != MAP_FAILED;
    char buf[8] = {0};
    if (ok) {
        memcpy(m + 100, "shared", 6);
        ok = msync(m, 4096, MS_SYNC) == 0 && pread(fd, buf, 6, 100) == 6 &&
             memcmp(buf, "shared", 6) == 0;
    }
    check(ok, "c-mmap-shared-file", "a shared file mapping's stores, msync, then read");
    if (m != MAP_FAILED) {
        check(FAILS(msync(m, 4096, MS_SYNC | MS_ASYNC), EINVAL) &&
                  FAILS(msync(m + 1, 4096, MS_SYNC), EINVAL),
              "c-msync-einval", "msync with MS_SYNC | MS_ASYNC or an unaligned address: EINVAL");
        munmap(m, 4096);
        check(FAILS(msync(m, 4096, MS_SYNC), ENOMEM), "c-msync-enomem",
              "msync of an unmapped range: ENOMEM");
    }
    /* Past the end of the file: SIGBUS (here for a 64 KiB block wholly past the end, the
       file server's unit; the rest of the block holding the end reads as zeros). */
    char *b = fd >= 0 ? mmap(0, 2 * BLOCK, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (b != MAP_FAILED) {
        fault_at = b + BLOCK;
        int status = in_child(read_fault_at);
        check(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "c-wait-sigbus",
              "a read past the end of a mapped file: WIFSIGNALED with SIGBUS");
        munmap(b, 2 * BLOCK);
    } else {
        check(0, "c-wait-sigbus", "mmap of 128 KiB of a 4 KiB file");
    }
    close(fd);
    fd = open("ctest.map", O_RDONLY);
    errno = 0;
    check(fd >= 0 && mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED &&
              errno == EACCES,
          "c-mmap-eacces", "a shared writable mapping of an O_RDONLY descriptor: EACCES");
    close(fd);
    unlink("ctest.map");

    /* shm_open and shm_unlink. */
    shm_unlink("/ctest");
    fd = shm_open("/ctest", O_CREAT | O_EXCL | O_RDWR, 0600);
    check(fd >= 0 && ftruncate(fd, 4096) == 0, "c-shm-open", "shm_open O_CREAT | O_EXCL");
    check(FAILS(shm_open("/ctest", O_CREAT | O_EXCL | O_RDWR, 0600), EEXIST), "c-shm-eexist",
          "shm_open O_CREAT | O_EXCL of an existing object: EEXIST");
    close(fd);
    check(FAILS(shm_open("noslash", O_RDWR, 0), EINVAL), "c-shm-einval",
          "a name without its leading slash: EINVAL");
    check(shm_unlink("/ctest") == 0 && FAILS(shm_open("/ctest", O_RDWR, 0), ENOENT) &&
              FAILS(shm_unlink("/ctest"), ENOENT),
          "c-shm-unlink-enoent", "after shm_unlink: shm_open and shm_unlink give ENOENT");
    fd = shm_open("/ctestro", O_CREAT | O_RDWR, 0400);
    close(fd);
    check(fd >= 0 && FAILS(shm_open("/ctestro", O_RDWR, 0), EACCES), "c-shm-eacces",
          "O_RDWR of an object created read-only (mode 0400): EACCES");
    shm_unlink("/ctestro");
}

static void spin(void) {
    for (;;)
        ;
}

/* <unistd.h> and <sys/wait.h>: fork, execv, getpid, waitpid, exit statuses, pipe. */
static void test_proc(void) {
    pid_t me = getpid();
    int fds[2] = {-1, -1};
    check(me > 0, "c-getpid", "getpid");
    pid_t pid = fork();
    if (pid == 0)
        exit(getpid() != me && getppid() == me ? 42 : 1);
    int status = -1;
    check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 42 && !WIFSIGNALED(status),
          "c-fork-waitpid", "fork, exit(42), waitpid: WIFEXITED with status 42");
    check(FAILS(waitpid(-1, &status, 0), ECHILD) && FAILS(waitpid(pid, &status, 0), ECHILD),
          "c-waitpid-echild", "waitpid with no children left: ECHILD");
    check(FAILS(waitpid(-1, &status, 0x100), EINVAL), "c-waitpid-einval",
          "an unknown waitpid option: EINVAL");

    pid = fork();
    if (pid == 0)
        spin();
    check(pid > 0 && waitpid(pid, &status, WNOHANG) == 0, "c-waitpid-wnohang",
          "WNOHANG while the child runs: 0");
    check(kill(pid, SIGKILL) == 0 && waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
              WTERMSIG(status) == SIGKILL,
          "c-kill-sigkill", "kill, then waitpid: WIFSIGNALED with SIGKILL");

    /* execv: the child becomes c-hello with our arguments. */
    pid = fork();
    if (pid == 0) {
        char *argv[] = {"c-hello", "from", "execv", NULL};
        execv("/bin/c-hello", argv);
        _exit(99);
    }
    check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0,
          "c-execv", "execv of /bin/c-hello runs it (status 0)");
    char *argv[] = {"nothing", NULL};
    check(FAILS(execv("/bin/nothing", argv), ENOENT), "c-execv-enoent",
          "execv of a missing program: ENOENT, and execv returns");

    /* exit flushes a stream fopen opened and nobody closed (C's exit). */
    pid = fork();
    if (pid == 0) {
        FILE *f = fopen("ctflush.txt", "w");
        if (f == NULL || fprintf(f, "flushed at exit\n") != 16)
            _exit(3);
        exit(0);
    }
    {
        char got[32] = {0};
        int ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                 WEXITSTATUS(status) == 0;
        int fd = open("ctflush.txt", O_RDONLY);
        ok = ok && fd >= 0 && read(fd, got, sizeof got - 1) == 16 &&
             strcmp(got, "flushed at exit\n") == 0;
        if (fd >= 0)
            close(fd);
        unlink("ctflush.txt");
        check(ok, "c-exit-flushes-fopen", "exit flushes a stream fopen opened");
    }

    /* pipe: a round trip (ENOSYS before the runtime had pipes). */
    errno = 0;
    if (pipe(fds) == -1 && errno == ENOSYS) {
        printf("c-test: pipe: not yet available (ENOSYS)\n");
    } else {
        char buf[8] = {0};
        check(write(fds[1], "pipe", 4) == 4 && read(fds[0], buf, 8) == 4 &&
                  memcmp(buf, "pipe", 4) == 0,
              "c-pipe", "pipe: what is written to fds[1] is read from fds[0]");
        struct stat pst;
        check(fstat(fds[0], &pst) == 0 && S_ISFIFO(pst.st_mode) && fstat(fds[1], &pst) == 0 &&
                  S_ISFIFO(pst.st_mode),
              "c-fstat-fifo", "fstat of a pipe's ends: S_ISFIFO");
        /* A child with the pipe on 1: printf goes into the pipe, 1 is no terminal. */
        pid = fork();
        if (pid == 0) {
            close(fds[0]);
            if (dup2(fds[1], 1) != 1)
                _exit(3);
            printf("into the pipe %d\n", isatty(1));
            fflush(stdout);
            _exit(isatty(1) ? 4 : 0);
        }
        close(fds[1]);
        char got[32] = {0};
        ssize_t n = read(fds[0], got, sizeof got - 1);
        check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                  WEXITSTATUS(status) == 0 && n == 16 &&
                  memcmp(got, "into the pipe 0\n", 16) == 0,
              "c-dup2-stdout", "dup2 of a pipe onto 1: printf lands in it, isatty(1) is 0");
        close(fds[0]);
    }
}

int main(int argc, char *argv[]) {
    printf("c-test: %s, %d argument(s)\n", argv[0], argc);
    test_stdio();
    test_stdlib();
    test_files();
    test_mman();
    test_proc();
    printf("c-test: %d failures\n", failures);
    return failures;
}
