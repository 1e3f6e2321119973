/* This system's measurement counters, for benchmarks in C (user/crt/src/lib.rs). */
#ifndef _MK_H_
#define _MK_H_

#include <stdint.h>

/* The PMU's instructions retired (32 bits wide: take differences with
   mk_instructions_between; they count only under QEMU -icount, as `make bench` runs). */
uint64_t mk_instructions(void);
uint64_t mk_instructions_between(uint64_t start, uint64_t end);
/* The PMU's cycle counter. */
uint64_t mk_cycles(void);
/* The kernel's counts of kernel entries and address-space switches (this call is one entry). */
void mk_counters(uint64_t *entries, uint64_t *switches);
/* The page faults vm has served for this task. */
uint64_t mk_vm_faults(void);

#endif
