/* The lecture's slide "Copy-on-Write during fork()" in C: after fork() parent and child
   share every page read-only; a write makes the writer's own copy, so neither sees the
   other's change. One PASS/FAIL line per check; exits with the number of failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int counter = 1;                /* data segment */

int main(void) {
    int failures = 0;
    char *heap = malloc(64 * 1024); /* heap: 16 pages */
    memset(heap, 'p', 64 * 1024);
    int local = 10;             /* stack */

    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        /* The child writes: each write copies one page, for the child alone. */
        counter = 2;
        heap[0] = 'c';
        local = 20;
        printf("child:  pid %d, counter %d, heap[0] '%c', local %d\n", getpid(), counter,
               heap[0], local);
        exit(counter == 2 && heap[0] == 'c' && heap[1] == 'p' && local == 20 ? 7 : 1);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        return 1;
    }
    printf("parent: pid %d, counter %d, heap[0] '%c', local %d\n", getpid(), counter, heap[0],
           local);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 7) {
        printf("PASS c-fork-child-sees-its-writes\n");
    } else {
        printf("FAIL c-fork-child-sees-its-writes: status %#x\n", status);
        failures++;
    }
    if (counter == 1 && heap[0] == 'p' && local == 10) {
        printf("PASS c-fork-parent-unchanged\n");
    } else {
        printf("FAIL c-fork-parent-unchanged: the child's writes reached the parent\n");
        failures++;
    }
    printf("c-fork: %d failures\n", failures);
    return failures;
}
