# Thin entry points; the work is done by the Rust tool in tools/ (`cargo xtask help`).
#   make run     boot the system in QEMU and take the tour; DEMO=<name> runs one demo
#                (CPU=, MEM=, SMP=, GIC=, EL2=, ARGS=, TEST= override)
#   make shell   boot the system in QEMU into the shell (the same as make run DEMO=sh)
#   make test    host unit tests, then every boot scenario (TEST=<scenario> runs one)
#   make bench   deterministic benchmarks under QEMU -icount; writes target/bench/results.json
#   make gdb     start QEMU halted with its gdb stub, and print how to attach
# Each first installs what is missing: the pinned toolchain's AArch64 targets and components
# (tools/toolchain.sh reads rust-toolchain.toml), QEMU, and the C compiler with picolibc
# (for the C programs of user/c, docs/c.md).

QEMU := qemu-system-aarch64
CC_AARCH64 := aarch64-linux-gnu-gcc
PICOLIBC_SPECS := /usr/lib/picolibc/aarch64-linux-gnu/picolibc.specs

.PHONY: run shell test bench gdb qemu toolchain ccompiler

run: toolchain qemu ccompiler
	cargo xtask run

shell: toolchain qemu ccompiler
	DEMO=sh cargo xtask run

test: toolchain qemu ccompiler
	cargo xtask test

bench: toolchain qemu ccompiler
	cargo xtask bench

gdb: toolchain qemu ccompiler
	cargo xtask gdb

# The toolchain rust-toolchain.toml pins, with its targets and components: rustup adds them
# only when it installs the toolchain itself, not to one that is already there.
toolchain:
	@sh tools/toolchain.sh

# Installs QEMU from Debian's qemu-system-arm (without recommends) when it is missing.
qemu:
	@command -v $(QEMU) >/dev/null 2>&1 || { \
		echo "$(QEMU) not found: installing Debian's qemu-system-arm"; \
		SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm; \
	}

# Installs Debian's AArch64 C compiler and picolibc (without recommends) when either is
# missing: the C programs of user/c are compiled with them (tools/src/cprog.rs).
ccompiler:
	@{ command -v $(CC_AARCH64) >/dev/null 2>&1 && [ -f $(PICOLIBC_SPECS) ]; } || { \
		echo "$(CC_AARCH64) or picolibc not found: installing Debian's gcc-aarch64-linux-gnu and picolibc-aarch64-linux-gnu"; \
		SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu picolibc-aarch64-linux-gnu; \
	}
