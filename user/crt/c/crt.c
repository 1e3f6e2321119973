/* The C side of the C layer (user/crt): the standard streams, errno, the TLS block, fstat
   and stat, and the start of main. Everything else is in src/lib.rs (Rust, over rt).

   TLS. picolibc keeps errno and a little per-thread state in thread-local variables,
   addressed from TPIDR_EL0. The kernel's library (libmk) keeps the IPC buffer's address in
   that register, so the TLS block lives in the IPC buffer's page, past the buffer: link.ld
   aligns the TLS segment to 1024 bytes, which makes the linker place it at TPIDR_EL0 + 1024
   (AArch64's TLS variant 1 rounds the 16-byte thread control block up to the segment's
   alignment), and asserts it ends within the page. */

#include <arm_neon.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio-bufio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* What src/lib.rs assumes of picolibc's headers. */
_Static_assert(O_WRONLY == 0x1 && O_RDWR == 0x2 && O_CREAT == 0x40 && O_TRUNC == 0x200 &&
                   O_APPEND == 0x400 && O_EXCL == 0x800 && O_SYNC == 0x2000 &&
                   O_NONBLOCK == 0x4000 && O_NOCTTY == 0x8000 && O_CLOEXEC == 0x40000 &&
                   O_DIRECT == 0x80000 && O_NOFOLLOW == 0x100000 && O_DIRECTORY == 0x200000,
               "picolibc's O_* values (src/lib.rs OPEN_FLAGS)");
_Static_assert(ENOSYS == 88 && ENOTEMPTY == 90 && ENAMETOOLONG == 91 && ETIMEDOUT == 116 &&
                   EINPROGRESS == 119 && EOVERFLOW == 139,
               "picolibc's errno values above 35 (src/lib.rs c_errno)");
_Static_assert(EPERM == 1 && ENOENT == 2 && EBADF == 9 && ECHILD == 10 && EAGAIN == 11 &&
                   ENOMEM == 12 && EACCES == 13 && EFAULT == 14 && EEXIST == 17 &&
                   EISDIR == 21 && EINVAL == 22 && EMFILE == 24 && ENOTTY == 25 &&
                   ENOSPC == 28 && ESPIPE == 29 && EROFS == 30 && EPIPE == 32,
               "picolibc's errno values below 35 are Linux's (src/lib.rs c_errno)");
_Static_assert(SIGKILL == 9 && SIGBUS == 10 && SIGSEGV == 11 && WNOHANG == 1,
               "picolibc's signal numbers (src/lib.rs wait_status)");
_Static_assert(sizeof(off_t) == 8 && sizeof(ssize_t) == 8 && sizeof(pid_t) == 4 &&
                   sizeof(mode_t) == 4,
               "picolibc's types (src/lib.rs)");

/* The TLS template (link.ld) and where the block starts. The anchor gives the segment its
   1024-byte alignment even when nothing else is in .tdata (link.ld keeps it). */
extern char __tdata_start[], __tdata_end[], __tbss_end[];
#define TLS_OFFSET 1024
__thread char __crt_tls_anchor
    __attribute__((aligned(TLS_OFFSET), section(".tdata.__crt_tls_anchor"))) = 1;

static char *tls_block(void) {
    char *tp;
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
    return tp + TLS_OFFSET;
}

static size_t tls_size(void) {
    return (size_t) (__tbss_end - __tdata_start);
}

/* Copies the template in: .tdata's bytes, then zeros for .tbss. */
static void tls_init(void) {
    char *block = tls_block();
    size_t data = (size_t) (__tdata_end - __tdata_start);
    memcpy(block, __tdata_start, data);
    memset(block + data, 0, tls_size() - data);
}

/* fork (src/lib.rs): the child's IPC buffer page is a fresh one. */
size_t __crt_tls_save(void *buf, size_t len) {
    size_t n = tls_size() < len ? tls_size() : len;
    memcpy(buf, tls_block(), n);
    return n;
}

void __crt_tls_restore(const void *buf, size_t len) {
    memcpy(tls_block(), buf, len);
}

void __crt_set_errno(int e) {
    errno = e;
}

/* The standard streams: picolibc's buffered streams over descriptors 0, 1 and 2 (the
   console). Output is line-buffered (a whole line is one message to the console server)
   and flushed at exit. */
static char stdin_buf[BUFSIZ], stdout_buf[BUFSIZ], stderr_buf[BUFSIZ];
static struct __file_bufio stdin_file =
    FDEV_SETUP_BUFIO(0, stdin_buf, BUFSIZ, read, write, lseek, close, __SRD, 0);
static struct __file_bufio stdout_file =
    FDEV_SETUP_BUFIO(1, stdout_buf, BUFSIZ, read, write, lseek, close, __SWR, __BLBF);
static struct __file_bufio stderr_file =
    FDEV_SETUP_BUFIO(2, stderr_buf, BUFSIZ, read, write, lseek, close, __SWR, __BLBF);
FILE *const stdin = (FILE *) &stdin_file;
FILE *const stdout = (FILE *) &stdout_file;
FILE *const stderr = (FILE *) &stderr_file;

/* The streams fopen opened and fclose did not close yet: exit flushes them, as C has it
   (picolibc 1.8 keeps no list of them). The program is linked with --wrap=fopen and
   --wrap=fclose (tools/src/cprog.rs), so its calls come here first. A stream past the
   list's room is not flushed at exit (fclose or fflush it). */
#define LISTED_STREAMS 256
static FILE *listed[LISTED_STREAMS];

FILE *__real_fopen(const char *path, const char *mode);
int __real_fclose(FILE *f);

FILE *__wrap_fopen(const char *path, const char *mode) {
    FILE *f = __real_fopen(path, mode);
    for (size_t i = 0; f != NULL && i < LISTED_STREAMS; i++) {
        if (listed[i] == NULL) {
            listed[i] = f;
            break;
        }
    }
    return f;
}

int __wrap_fclose(FILE *f) {
    for (size_t i = 0; f != NULL && i < LISTED_STREAMS; i++) {
        if (listed[i] == f)
            listed[i] = NULL;
    }
    return __real_fclose(f);
}

static void flush_streams(void) {
    for (size_t i = 0; i < LISTED_STREAMS; i++) {
        if (listed[i] != NULL)
            fflush(listed[i]);
    }
    fflush(stdout);
    fflush(stderr);
}

/* fgets: picolibc 1.8's reads a character at a time through fgetc (a call through the
   stream's get function and its lock per byte, 50 times the Rust runtime's cost) and
   returns NULL for a last line without a newline. This one copies from the buffer of a
   buffered stream (stdio-bufio.h) up to the newline: a line that ends within 16 bytes
   here, any other with the runtime's NEON scan (__crt_copy_line, src/lib.rs: the search
   and the copy in one pass, 64 bytes a step). Every other case goes to fgetc: an ungetc'd
   byte, a stream last written, an empty buffer (fgetc refills it, flushes stdout before
   reading stdin, and sets the end-of-file and error flags). The stream's lock is not
   taken: a task here has one thread, and picolibc's locks are its empty default
   functions (a call each; fgets is called once a line, and half of big.dat's lines are 8
   bytes long: `make bench`'s c_fileio_fgets_per_mib). */
size_t __crt_copy_line(char *dst, const char *src, size_t len, int *found);

/* Copies n bytes (dst and src apart), the last ones with overlapping 16-, 8- or 4-byte
   moves. */
static inline void copy_small(char *dst, const char *src, size_t n) {
    if (n >= 16) {
        size_t i = 0;
        for (; i + 16 < n; i += 16)
            vst1q_u8((uint8_t *) dst + i, vld1q_u8((const uint8_t *) src + i));
        vst1q_u8((uint8_t *) dst + n - 16, vld1q_u8((const uint8_t *) src + n - 16));
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + n - 4, 4);
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
    }
}

/* A newline among the 16 bytes at src: its index + 1, or 0. */
static inline size_t newline_in_16(const char *src) {
    uint8x16_t eq = vceqq_u8(vld1q_u8((const uint8_t *) src), vdupq_n_u8('\n'));
    uint64_t mask =
        vget_lane_u64(vreinterpret_u64_u8(vshrn_n_u16(vreinterpretq_u16_u8(eq), 4)), 0);
    return mask != 0 ? (size_t) (__builtin_ctzll(mask) >> 2) + 1 : 0;
}

char *fgets(char *s, int n, FILE *f) {
    if (n <= 0 || !(f->flags & __SRD))
        return NULL;
    size_t max = (size_t) n - 1, i = 0;
    if (max == 0) {
        /* Room for the terminator alone: nothing is read, and that is no end of file. */
        s[0] = '\0';
        return s;
    }
    while (i < max) {
        struct __file_bufio *bf = (struct __file_bufio *) f;
        if ((f->flags & __SBUF) && f->unget == 0) {
            if (bf->dir == __SRD && bf->off < bf->len) {
                size_t take = (size_t) (bf->len - bf->off);
                if (take > max - i)
                    take = max - i;
                int nl;
                const char *from = bf->buf + bf->off;
                size_t short_line = take >= 16 ? newline_in_16(from) : 0;
                if (short_line != 0) {
                    /* A short line: copied here, without the call. */
                    copy_small(s + i, from, short_line);
                    take = short_line;
                    nl = 1;
                } else {
                    take = __crt_copy_line(s + i, from, take, &nl);
                }
                bf->off += (int) take;
                i += take;
                if (nl)
                    break;
                continue;
            }
        }
        int c = fgetc(f);
        if (c == EOF) {
            if (f->flags & __SERR)
                return NULL;
            break;
        }
        s[i++] = (char) c;
        if (c == '\n')
            break;
    }
    if (i == 0)
        return NULL;
    s[i] = '\0';
    return s;
}

/* fread: picolibc 1.8's reads a byte at a time through fgetc; this one copies from the
   buffer of a buffered stream being read and leaves the rest to fgetc (which refills the
   buffer), as fgets above. The count of whole items read. */
size_t fread(void *ptr, size_t size, size_t nmemb, FILE *f) {
    size_t total;
    if (size == 0 || !(f->flags & __SRD) || __builtin_mul_overflow(size, nmemb, &total))
        return 0;
    char *out = ptr;
    size_t done = 0;
    struct __file_bufio *bf = (struct __file_bufio *) f;
    while (done < total) {
        if ((f->flags & __SBUF) && f->unget == 0 && bf->dir == __SRD && bf->off < bf->len) {
            size_t take = (size_t) (bf->len - bf->off);
            if (take > total - done)
                take = total - done;
            memcpy(out + done, bf->buf + bf->off, take);
            bf->off += (int) take;
            done += take;
            continue;
        }
        int c = fgetc(f);
        if (c == EOF)
            break;
        out[done++] = (char) c;
    }
    return done / size;
}

int __crt_stat(const char *path, uint64_t *size, int *is_dir);
int __crt_fstat(int fd, uint64_t *size, int *is_dir);
int __crt_console(int fd);

static void fill_stat(struct stat *st, uint64_t size, int is_dir, int console) {
    memset(st, 0, sizeof *st);
    st->st_size = (off_t) size;
    /* is_dir: the kind __crt_fstat gives, 0 a file, 1 a directory, 2 a pipe. */
    st->st_mode = console     ? (S_IFCHR | 0620)
                  : is_dir == 2 ? (S_IFIFO | 0600)
                  : is_dir      ? (S_IFDIR | 0755)
                                : (S_IFREG | 0644);
    st->st_nlink = 1;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t) ((size + 511) / 512);
}

int stat(const char *path, struct stat *st) {
    uint64_t size;
    int is_dir;
    if (st == NULL) {
        errno = EFAULT;
        return -1;
    }
    if (__crt_stat(path, &size, &is_dir) < 0)
        return -1;
    fill_stat(st, size, is_dir, 0);
    return 0;
}

int fstat(int fd, struct stat *st) {
    uint64_t size;
    int is_dir;
    if (st == NULL) {
        errno = EFAULT;
        return -1;
    }
    if (__crt_fstat(fd, &size, &is_dir) < 0)
        return -1;
    fill_stat(st, size, is_dir, __crt_console(fd));
    return 0;
}

int main(int argc, char *argv[], char *envp[]);

/* Called by src/lib.rs with argv and envp as C wants them. */
_Noreturn void __crt_start(int argc, char **argv, char **envp) {
    tls_init();
    environ = envp;
    atexit(flush_streams);
    exit(main(argc, argv, envp));
}
