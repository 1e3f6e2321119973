/* The first C program: prints its arguments and its pid. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
    printf("hello from C: pid %d, %d argument(s):", getpid(), argc);
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    return 0;
}
