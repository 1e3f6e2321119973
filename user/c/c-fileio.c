/* The lecture's slide "File I/O Comparisons" in C: the slide's four ways of reading a file,
   each on the disk's big.dat (16 MiB, every 8-byte word holding its own offset) and each
   checked. The slide's lines are kept; its "..." are filled in and the file "a" is big.dat.
   One PASS/FAIL line per way; exits with the number of failures. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FILE_NAME "big.dat"
#define FILE_BYTES (16L << 20)

static int failures;

static void check(int ok, const char *id, const char *why) {
    if (ok) {
        printf("PASS %s\n", id);
    } else {
        printf("FAIL %s: %s\n", id, why);
        failures++;
    }
}

/* Whether the n bytes at buf are big.dat's bytes at offset off. */
static int right_bytes(const char *buf, long off, long n) {
    for (long i = 0; i < n; i++) {
        uint64_t word = (uint64_t) ((off + i) & ~7L);
        if ((unsigned char) buf[i] != (unsigned char) (word >> (8 * ((off + i) & 7))))
            return 0;
    }
    return 1;
}

/* char buf[1024]; int fd = open("a",...); read(fd, buf, 1024); */
static void way_read(void) {
    char buf[1024];
    int fd = open(FILE_NAME, O_RDONLY);
    long total = 0, n, calls = 0;
    int ok = fd >= 0;
    while (ok && (n = read(fd, buf, 1024)) > 0) {
        ok = right_bytes(buf, total, n);
        total += n;
        calls++;
    }
    close(fd);
    printf("c-fileio: read() 1 KiB at a time: %ld bytes in %ld calls\n", total, calls);
    check(ok && total == FILE_BYTES, "c-fileio-read", "wrong bytes or length");
}

/* char buf[4096]; int fd = open("a",..., O_DIRECT); read(fd, buf, 4096); */
static void way_direct(void) {
    char buf[4096];
    int fd = open(FILE_NAME, O_RDONLY | O_DIRECT);
    long total = 0, n, calls = 0;
    int ok = fd >= 0;
    while (ok && (n = read(fd, buf, 4096)) > 0) {
        ok = right_bytes(buf, total, n);
        total += n;
        calls++;
    }
    close(fd);
    printf("c-fileio: read() with O_DIRECT, 4 KiB at a time: %ld bytes in %ld calls\n", total,
           calls);
    check(ok && total == FILE_BYTES, "c-fileio-direct", "wrong bytes or length");
}

/* char buf[1024]; FILE *fp = fopen("a","r"); fgets(buf, 1024, fp); */
static void way_fgets(void) {
    char buf[1024];
    FILE *fp = fopen(FILE_NAME, "r");
    long calls = 0;
    int ok = fp != NULL;
    /* The first line: big.dat's bytes up to its first '\n' (or 1023 bytes). */
    if (ok && fgets(buf, 1024, fp) != NULL) {
        long len = 0;
        while (len < 1023 && (len == 0 || buf[len - 1] != '\n'))
            len++;
        ok = right_bytes(buf, 0, len);
        calls++;
        while (fgets(buf, 1024, fp) != NULL)
            calls++;
        ok = ok && feof(fp) && !ferror(fp);
    } else {
        ok = 0;
    }
    if (fp != NULL)
        fclose(fp);
    printf("c-fileio: fgets() with a 1 KiB line buffer: %ld calls to the end\n", calls);
    check(ok && calls > FILE_BYTES / 1024, "c-fileio-fgets", "wrong bytes, or no end of file");
}

/* int fd = open("a",...); char *p = mmap(0,.., fd, 0); */
static void way_mmap(void) {
    int fd = open(FILE_NAME, O_RDONLY);
    char *p = mmap(0, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0);
    int ok = p != MAP_FAILED;
    uint64_t sum = 0, n = FILE_BYTES / 8;
    if (ok) {
        const uint64_t *words = (const uint64_t *) p;
        for (uint64_t i = 0; i < n; i++)
            sum += words[i];
        munmap(p, FILE_BYTES);
    }
    close(fd);
    printf("c-fileio: mmap() of %ld bytes, every word read\n", FILE_BYTES);
    check(ok && sum == 4 * n * (n - 1), "c-fileio-mmap", "the words' sum is wrong");
}

int main(void) {
    way_read();
    way_direct();
    way_fgets();
    way_mmap();
    printf("c-fileio: %d failures\n", failures);
    return failures;
}
