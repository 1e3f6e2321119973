/* The fileio comparison of `make bench` as a C program (bench `cfiles`, docs/c.md): the ways
   of user/demos filebench's fileio_* figures, through picolibc and the C layer, on the disk's
   big.dat (16 MiB, every 8-byte word holding its own offset) with the page cache warm:
   read() 1 KiB and 4 KiB at a time, O_DIRECT 4 KiB, fgets() with a 1 KiB line buffer (the
   stream's buffer 4 KiB, as the Rust runtime's), mmap reading every word; then write() of
   4 MiB 1 KiB and 4 KiB at a time into a file whose blocks are cached. One line per figure,
   `BENCH c_fileio_<way>_per_mib <instructions> instructions kernel_entries=E
   address_space_switches=S cycles=C vm_faults=F calls=N`, per MiB moved, as the Rust ones. */
#include <arm_neon.h>
#include <fcntl.h>
#include <mk.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FILE_NAME "big.dat"
#define FILE_BYTES (16UL << 20)
#define MIB (1UL << 20)
#define WRITE_FILE "cbench.dat"
#define WRITE_BYTES (4UL << 20)

struct window {
    uint64_t instructions, cycles, entries, switches, faults;
};

static void fail(const char *what) {
    printf("FAIL c-filebench: %s\n", what);
    exit(1);
}

static void start(struct window *w) {
    w->faults = mk_vm_faults();
    mk_counters(&w->entries, &w->switches);
    w->cycles = mk_cycles();
    w->instructions = mk_instructions();
}

static void stop(struct window *w) {
    uint64_t instructions = mk_instructions();
    uint64_t cycles = mk_cycles();
    uint64_t entries, switches;
    mk_counters(&entries, &switches);
    w->instructions = mk_instructions_between(w->instructions, instructions);
    w->cycles = cycles - w->cycles;
    /* The second mk_counters call is one of the entries counted. */
    w->entries = entries - w->entries - 1;
    w->switches = switches - w->switches;
    w->faults = mk_vm_faults() - w->faults;
}

/* n / d with three decimals, as the Rust figures print them. */
static void ratio(char *out, size_t len, uint64_t n, uint64_t d) {
    uint64_t milli = (n * 1000 + d / 2) / (d ? d : 1);
    if (milli % 1000 == 0)
        snprintf(out, len, "%lu", (unsigned long) (milli / 1000));
    else
        snprintf(out, len, "%lu.%03lu", (unsigned long) (milli / 1000),
                 (unsigned long) (milli % 1000));
}

static void report(const char *name, const struct window *w, uint64_t per, uint64_t calls,
                   const char *extra) {
    char a[32], b[32], c[32], d[32], e[32], f[32];
    ratio(a, sizeof a, w->instructions, per);
    ratio(b, sizeof b, w->entries, per);
    ratio(c, sizeof c, w->switches, per);
    ratio(d, sizeof d, w->cycles, per);
    ratio(e, sizeof e, w->faults, per);
    ratio(f, sizeof f, calls, per);
    printf("BENCH %s %s instructions kernel_entries=%s address_space_switches=%s cycles=%s "
           "vm_faults=%s calls=%s%s\n",
           name, a, b, c, d, e, f, extra);
}

static int open_big(int flags) {
    int fd = open(FILE_NAME, flags);
    if (fd < 0)
        fail("open big.dat");
    return fd;
}

/* Whether buf holds big.dat's word at offset off (a multiple of 8). */
static int right_word(const char *buf, uint64_t off) {
    uint64_t word;
    memcpy(&word, buf, 8);
    return word == off;
}

/* read() of the whole file, `size` bytes a call (no figure for a NULL name). */
static void read_way(const char *name, int flags, size_t size, const char *extra) {
    static char buf[4096];
    int fd = open_big(flags);
    uint64_t bytes = 0, calls = 0;
    struct window w;
    start(&w);
    for (;;) {
        ssize_t n = read(fd, buf, size);
        calls++;
        if (n <= 0)
            break;
        bytes += (uint64_t) n;
        if (bytes >= FILE_BYTES)
            break;
    }
    stop(&w);
    close(fd);
    if (bytes != FILE_BYTES || !right_word(buf + 8, FILE_BYTES - size + 8))
        fail(name ? name : "read");
    if (name != NULL)
        report(name, &w, FILE_BYTES / MIB, calls, extra);
}

/* fgets() into a 1 KiB line buffer until the end of the file. */
static void fgets_way(void) {
    static char stream_buf[4096];
    /* 1 KiB of the file a call at most, as the Rust figure's read_line (fgets keeps a byte
       for the NUL). */
    char line[1024 + 1];
    FILE *fp = fopen(FILE_NAME, "r");
    if (fp == NULL || setvbuf(fp, stream_buf, _IOFBF, sizeof stream_buf) != 0)
        fail("fopen big.dat");
    uint64_t calls = 0;
    struct window w;
    start(&w);
    while (fgets(line, sizeof line, fp) != NULL)
        calls++;
    calls++;
    stop(&w);
    if (!feof(fp) || ferror(fp))
        fail("fgets: no end of file");
    fclose(fp);
    report("c_fileio_fgets_per_mib", &w, FILE_BYTES / MIB, calls, " line_buffer=1024");
}

/* The sum of n words (n a multiple of 8), eight a step in four vector accumulators: the
   loop of the Rust figure (filebench's sum_words). */
static uint64_t sum_words(const uint64_t *p, uint64_t n) {
    uint64x2_t a = vdupq_n_u64(0), b = a, c = a, d = a;
    for (const uint64_t *end = p + n; p < end; p += 8) {
        uint64x2x4_t v = vld1q_u64_x4(p);
        a = vaddq_u64(a, v.val[0]);
        b = vaddq_u64(b, v.val[1]);
        c = vaddq_u64(c, v.val[2]);
        d = vaddq_u64(d, v.val[3]);
    }
    return vaddvq_u64(vaddq_u64(vaddq_u64(a, b), vaddq_u64(c, d)));
}

/* mmap of the whole file (private, read-only), every word read, munmap: all in the window. */
static void mmap_way(void) {
    int fd = open_big(O_RDONLY);
    uint64_t sum = 0, n = FILE_BYTES / 8;
    struct window w;
    start(&w);
    const uint64_t *p = mmap(0, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        fail("mmap big.dat");
    sum = sum_words(p, n);
    munmap((void *) p, FILE_BYTES);
    stop(&w);
    close(fd);
    if (sum != 4 * n * (n - 1))
        fail("mmap: the words' sum is wrong");
    report("c_fileio_mmap_per_mib", &w, FILE_BYTES / MIB, 1, "");
}

/* write() of WRITE_BYTES, `chunk` bytes a call: one pass creates the file, the measured one
   writes it again from the start on a new descriptor. */
static void write_way(const char *name, size_t chunk) {
    static char buf[4096];
    struct window w;
    uint64_t calls = 0;
    for (int pass = 0; pass < 2; pass++) {
        int fd = open(WRITE_FILE, O_RDWR | (pass == 0 ? O_CREAT | O_TRUNC : 0), 0644);
        if (fd < 0)
            fail("open " WRITE_FILE);
        start(&w);
        for (uint64_t at = 0; at < WRITE_BYTES; at += chunk) {
            buf[0] = (char) (at / chunk + pass);
            if (write(fd, buf, chunk) != (ssize_t) chunk)
                fail("write");
            calls++;
        }
        stop(&w);
        close(fd);
    }
    unlink(WRITE_FILE);
    char extra[32];
    snprintf(extra, sizeof extra, " buffer=%lu", (unsigned long) chunk);
    report(name, &w, WRITE_BYTES / MIB, calls / 2, extra);
}

int main(void) {
    /* Warm the page cache as the Rust figures find it (filebench's file_fault passes before
       them): one byte of every page of a private mapping of big.dat, a few times. */
    for (int pass = 0; pass < 4; pass++) {
        int fd = open_big(O_RDONLY);
        volatile const char *p = mmap(0, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            fail("mmap big.dat");
        for (uint64_t at = 0; at < FILE_BYTES; at += 4096)
            (void) p[at];
        munmap((void *) p, FILE_BYTES);
        close(fd);
    }
    /* And filebench's shm passes: a 16 MiB object written a byte a page, five times. */
    for (int pass = 0; pass < 5; pass++) {
        int fd = shm_open("/bench", O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0 || ftruncate(fd, FILE_BYTES) != 0)
            fail("shm_open /bench");
        volatile char *p = mmap(0, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            fail("mmap /bench");
        for (uint64_t at = 0; at < FILE_BYTES; at += 4096)
            p[at] = 1;
        munmap((void *) p, FILE_BYTES);
        close(fd);
        shm_unlink("/bench");
    }
    read_way("c_fileio_read_per_mib", O_RDONLY, 1024, " buffer=1024");
    read_way("c_fileio_read4k_per_mib", O_RDONLY, 4096, " buffer=4096");
    read_way("c_fileio_direct_per_mib", O_RDONLY | O_DIRECT, 4096,
             " buffer=4096 counter=instructions_retired");
    fgets_way();
    mmap_way();
    write_way("c_fileio_write_per_mib", 1024);
    write_way("c_fileio_write4k_per_mib", 4096);
    return 0;
}
