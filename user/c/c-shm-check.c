/* Runs the lecture's shared-memory example (c-shm: creates /shm1 and writes 0..1023 into
   it) as a child, then opens /shm1 itself, maps it and reads back what the child wrote:
   the object outlives the task that wrote it until shm_unlink. One PASS/FAIL line per
   check; exits with the number of failures. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char *id, const char *why) {
    if (ok) {
        printf("PASS %s\n", id);
    } else {
        printf("FAIL %s: %s (errno %d)\n", id, why, errno);
        failures++;
    }
}

int main(void) {
    char *argv[] = {"c-shm", NULL};
    int status = -1;
    /* Left over from an earlier run in the same boot (the Rust demo shm uses the name too):
       the slide's O_CREAT | O_EXCL would fail. */
    shm_unlink("/shm1");
    pid_t pid = fork();
    if (pid == 0) {
        execv("/bin/c-shm", argv);
        perror("execv");
        _exit(127);
    }
    check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0,
          "c-shm-ran", "c-shm did not exit with status 0");

    int fd = shm_open("/shm1", O_RDONLY, 0);
    struct stat st;
    check(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 4096, "c-shm-size",
          "/shm1 is not there with 4096 bytes");
    int *p = (int *) mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0);
    int ok = p != MAP_FAILED;
    for (int i = 0; ok && i < 1024; i++)
        ok = p[i] == i;
    check(ok, "c-shm-contents", "p[i] != i");
    check(shm_open("/shm1", O_CREAT | O_EXCL | O_RDWR, 0600) == -1 && errno == EEXIST,
          "c-shm-exists", "a second O_CREAT | O_EXCL did not fail with EEXIST");
    check(shm_unlink("/shm1") == 0, "c-shm-unlink", "shm_unlink failed");
    /* The mapping outlives the name. */
    check(ok && p[1023] == 1023, "c-shm-mapping-outlives-name", "the mapping changed");
    munmap(p, 4096);
    close(fd);
    check(shm_open("/shm1", O_RDONLY, 0) == -1 && errno == ENOENT, "c-shm-gone",
          "/shm1 still opens after shm_unlink");
    printf("c-shm-check: %d failures\n", failures);
    return failures;
}
