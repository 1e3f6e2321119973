//! The boot scenarios and the benchmarks: one table entry each.
//!
//! To add a boot scenario, append a `Scenario` to [`SCENARIOS`]: a unique name, the machine
//! (usually `DEFAULT_MACHINE` with a field or two changed), the initrd, the bootargs init reads
//! (`test=<name>` selects what it checks), and how the boot ends:
//! - `Ends::Done { min_pass }`: the test root task (`ktest`) runs to `ktest: done` after at
//!   least `min_pass` `PASS` lines;
//! - `Ends::Stops { after, lines }`: the boot gets through the banner up to `after`, then prints
//!   `lines` in order (any failure markers among them are allowed), then `system off`.
//!
//! The banner lines to expect follow from the machine (CPU name, EL, CPU count, RAM, GIC) and
//! from the bootargs; `system off` always ends the list. `TEST=<name> cargo xtask test` runs one
//! scenario; `TEST=<name> cargo xtask run` boots its machine interactively. A scenario too long
//! for every `make test` goes into [`OPT_IN_SCENARIOS`]: it runs only when named.
//!
//! To add a benchmark, append a `Bench` to [`BENCHES`]; its init prints `BENCH ...` lines.

use crate::initrd::Initrd;
use crate::judge::{Check, Expectation, SYSTEM_OFF};
use crate::machine::{CORTEX_A57, CORTEX_A72, DEFAULT_MACHINE, Gic, MAX, Machine, Mem};
use crate::qemu::Input;

/// How many checks the kernel test suite (`test=kernel`, microkernel/ktest/src/suite) runs; every one
/// must pass.
const KERNEL_CHECKS: usize = 170;

/// QEMU gets killed after this long unless the scenario says otherwise.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// One boot of QEMU and what its console must show.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub machine: Machine,
    pub initrd: Initrd,
    /// `-append`: the kernel command line, `/chosen/bootargs` in the device tree.
    pub bootargs: &'static str,
    pub ends: Ends,
    pub timeout_secs: u64,
    /// Whether the guest may write to the disk: such a run gets its own copy of the image
    /// (the others share the built one, attached read-only).
    pub writes_disk: bool,
    /// Files the guest must have left on its disk copy, read back after power-off and
    /// compared byte for byte (needs `writes_disk`).
    pub disk_files: &'static [DiskCheck],
    /// A second boot after this one powers off, on the same disk copy (needs `writes_disk`),
    /// judged by its own expectation and disk checks: what the first boot wrote must still be
    /// there. Its name labels its checks; it is not a scenario of its own.
    pub then: Option<&'static Scenario>,
    /// Done to the scenario's disk copy before it boots (needs `writes_disk`): damage, or
    /// files added (`disk::prep`).
    pub disk_prep: Option<DiskPrep>,
    /// What is typed on the serial line, each piece once the console shows its marker
    /// (Ctrl-C is `\x03`, Ctrl-D `\x04`, backspace `\x7f`, Ctrl-U `\x15`).
    pub input: &'static [Input],
    /// A check of the whole console beyond the expected lines (the console's lines, `\r`
    /// trimmed).
    pub console_check: Option<fn(&[&str]) -> Check>,
    /// Whether the volume, consistent before the boot, must need no repair after it
    /// (`disk::fsck`; needs `writes_disk`). True for every scenario (the fuzzer included).
    pub fsck: bool,
}

/// A change made to a scenario's disk copy before the boot.
pub type DiskPrep = fn(&std::path::Path) -> std::io::Result<()>;

/// A file a scenario leaves on the disk: its path and the bytes it must hold.
#[derive(Debug, Clone, Copy)]
pub struct DiskCheck {
    pub path: &'static str,
    pub bytes: fn() -> Vec<u8>,
}

/// `filetest`'s `keep.dat`: the same bytes as `demos::filetest::keep_byte` makes.
/// `exectest`'s `EXIT.DAT` and `SYNC.DAT`: the bytes `demos::exectest::file_byte` makes.
fn exectest_file() -> Vec<u8> {
    (0..3 * 4096 + 100u64)
        .map(|i| ((i * 13) ^ (i >> 10) ^ 0x3c) as u8)
        .collect()
}

/// `attack-power`'s `POWER.DAT`: one page of the words `demos::attack_power::word` makes.
fn attack_power_file() -> Vec<u8> {
    (0..512u64)
        .flat_map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x0ff0).to_le_bytes())
        .collect()
}

fn filetest_keep() -> Vec<u8> {
    (0..300_001usize)
        .map(|i| ((i * 31) ^ (i >> 9)) as u8)
        .collect()
}

/// `writeback`'s `WB.DAT`: the same bytes as `demos::writeback::byte` makes.
fn writeback_file() -> Vec<u8> {
    (0..17 * 65536 + 1000u64)
        .map(|i| ((i * 7) ^ (i >> 12) ^ 0x5a) as u8)
        .collect()
}

/// What the `writeback` demo leaves on the disk.
const WRITEBACK_DISK: &[DiskCheck] = &[DiskCheck {
    path: "WB.DAT",
    bytes: writeback_file,
}];

/// `wbstress`'s `STRESS.DAT`: every word its writer's last value, as
/// `demos::wbstress::final_word` makes it (3 writers, 8 words of every page each, written
/// 8 rounds x 64 passes times).
fn wbstress_file() -> Vec<u8> {
    const WRITERS: u64 = 3;
    const LAST: u64 = 8 * 64 - 1;
    let word = |at: u64| {
        let (p, q) = (at / 4096, at % 4096);
        let (j, k) = (q / 512, (q % 512) / 8);
        if k >= WRITERS {
            return 0;
        }
        ((k + 1) << 56) | (LAST << 32) | (p << 16) | j
    };
    (0..6 * 65536u64)
        .step_by(8)
        .flat_map(|at| word(at).to_le_bytes())
        .collect()
}

/// `wbstress`'s `FORKREV.DAT`: one page, the word 2 first.
fn wbstress_fork_file() -> Vec<u8> {
    let mut bytes = vec![0; 4096];
    bytes[0] = 2;
    bytes
}

/// `filetail`'s `TAIL.DAT`: the bytes `demos::filetail::byte` makes, 5000 of them.
fn filetail_file() -> Vec<u8> {
    (0..5000u64)
        .map(|i| ((i * 11 + 3) ^ (i >> 8)) as u8)
        .collect()
}

/// The second boot of `proc-writeback`: `writeback-check` reads the file back.
const WRITEBACK_SECOND_BOOT: Scenario = Scenario {
    writes_disk: true,
    disk_files: WRITEBACK_DISK,
    ..Scenario::stops(
        "writeback-second-boot",
        Initrd::Normal,
        "run=writeback-check",
        Stage::Hello,
        &[
            "writeback-check: WB.DAT is 1115112 bytes",
            "PASS writeback-check-size",
            "writeback-check: read() returned 1115112 bytes, each as written",
            "PASS writeback-check-read",
            "PASS writeback-check-mmap",
            "writeback-check: 0 failures",
            "init: writeback-check exited with status 0",
            "init: done",
        ],
    )
};

/// What the tour (`make run`) prints, in order: every slide's demo passing.
const TOUR_LINES: &[&str] = &[
    "slide \"Virtual Memory Area\" (vaspace)",
    "==== vaspace: all its checks passed",
    "slide \"File vs. Anonymous Mapping\" (anon)",
    "==== anon: all its checks passed",
    "slide \"Shared vs. Private Mapping\" (mapping-kinds)",
    "==== mapping-kinds: all its checks passed",
    "slide \"Memory-Mapped File: Example\" (mmap-file)",
    "==== mmap-file: all its checks passed",
    "==== c-mmap: all its checks passed",
    "slide \"Memory-Mapped File\" (writeback)",
    "==== writeback: all its checks passed",
    "slide \"File I/O Comparisons\" (fileio)",
    "==== fileio: all its checks passed",
    "==== c-fileio: all its checks passed",
    "slide \"Shared Memory\" (shm)",
    "==== shm: all its checks passed",
    "==== c-shm-check: all its checks passed",
    "slide \"Copy-on-Write during fork()\" (fork-cow)",
    "==== fork-cow: all its checks passed",
    "==== c-fork: all its checks passed",
    "tour: 8 demos, 0 failed",
    "init: tour exited with status 0",
    "init: done",
];

/// What `limits` prints when every limit holds (two scenarios run it).
const LIMITS_LINES: &[&str] = &[
    "PASS limits-open-emfile",
    "PASS limits-open-server-answers",
    "PASS limits-open-back",
    "PASS limits-direct-enomem",
    "PASS limits-direct-server-answers",
    "PASS limits-direct-back",
    "PASS limits-fork-fds-eagain",
    "PASS limits-fork-fds-server-answers",
    "PASS limits-fork-fds-back",
    "PASS limits-direct-global-eagain",
    "PASS limits-direct-global-back",
    "PASS limits-file-mappings-enomem",
    "PASS limits-file-mappings-back",
    "PASS limits-shm-objects-enospc",
    "PASS limits-shm-objects-back",
    "PASS limits-shared-anon-enomem",
    "PASS limits-shared-anon-back",
    "PASS limits-regions-enomem",
    "PASS limits-regions-server-answers",
    "PASS limits-regions-back",
    "PASS limits-children-eagain",
    "PASS limits-children-back",
    "PASS limits-all-back",
    "limits: 0 failures",
    "init: limits exited with status 0",
    "init: done",
];

/// How a scenario's boot ends.
#[derive(Debug, Clone, Copy)]
pub enum Ends {
    /// init prints at least `min_pass` `PASS` lines and `init: done`.
    Done { min_pass: usize },
    /// The boot gets through the banner up to `after`, then prints `lines` (markers allowed).
    Stops {
        after: Stage,
        lines: &'static [&'static str],
    },
}

/// The normal boot's banner lines, in console order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Booting,
    Cpu,
    Cpus,
    Ram,
    Initrd,
    Gic,
    Bootargs,
    /// init's first line.
    Hello,
}

impl Scenario {
    /// A boot of the test root task (`ktest`) that runs its checks to the end.
    const fn done(name: &'static str, machine: Machine, bootargs: &'static str) -> Scenario {
        Scenario {
            name,
            machine,
            initrd: Initrd::Tests,
            bootargs,
            ends: Ends::Done { min_pass: 3 },
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            writes_disk: false,
            disk_files: &[],
            then: None,
            disk_prep: None,
            input: &[],
            console_check: None,
            fsck: true,
        }
    }

    /// A boot that stops with the given lines after the banner up to `after`.
    const fn stops(
        name: &'static str,
        initrd: Initrd,
        bootargs: &'static str,
        after: Stage,
        lines: &'static [&'static str],
    ) -> Scenario {
        Scenario {
            name,
            machine: DEFAULT_MACHINE,
            initrd,
            bootargs,
            ends: Ends::Stops { after, lines },
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            writes_disk: false,
            disk_files: &[],
            then: None,
            disk_prep: None,
            input: &[],
            console_check: None,
            fsck: true,
        }
    }

    /// Everything the console must show, given the size of the initrd QEMU was handed.
    pub fn expectation(&self, initrd_bytes: Option<u64>) -> Expectation {
        let (after, tail, min_pass) = match self.ends {
            Ends::Done { min_pass } => (Stage::Hello, &[][..], min_pass),
            Ends::Stops { after, lines } => (after, lines, 0),
        };
        let root = self.initrd.root_name();
        let mut lines: Vec<String> = banner(&self.machine, initrd_bytes, self.bootargs, root)
            .into_iter()
            .filter(|(stage, _)| *stage <= after)
            .map(|(_, line)| line)
            .collect();
        lines.extend(tail.iter().map(|line| line.to_string()));
        if matches!(self.ends, Ends::Done { .. }) {
            lines.push(format!("{root}: done"));
        }
        lines.push(SYSTEM_OFF.to_string());
        Expectation { lines, min_pass }
    }
}

/// The banner a normal boot prints on `machine`, as (stage, substring) in order.
/// `root` is the root task's name (`init`, or `ktest` for the test archive).
fn banner(
    machine: &Machine,
    initrd_bytes: Option<u64>,
    bootargs: &str,
    root: &str,
) -> Vec<(Stage, String)> {
    let entered = if machine.el2 {
        "entered at EL2, dropped to EL1"
    } else {
        "entered at EL1"
    };
    let mut lines = vec![
        (
            Stage::Booting,
            concat!("microkernel ", env!("CARGO_PKG_VERSION"), " booting").to_string(),
        ),
        (Stage::Cpu, format!("cpu: {} (MIDR 0x", machine.cpu.banner)),
        (Stage::Cpu, entered.to_string()),
        (Stage::Cpus, format!("cpus: {} in device tree", machine.smp)),
        (Stage::Ram, format!("ram: {} MiB in ", machine.mem.in_mib())),
    ];
    if let Some(bytes) = initrd_bytes {
        lines.push((Stage::Initrd, format!("initrd: {bytes} bytes at 0x")));
    }
    lines.extend([
        (Stage::Gic, format!("gic: v{}", machine.gic.version())),
        (Stage::Bootargs, format!("bootargs: \"{bootargs}\"")),
        (Stage::Hello, format!("{root}: hello from user space")),
    ]);
    lines
}

const fn with_cpu(cpu: crate::machine::Cpu) -> Machine {
    Machine {
        cpu,
        ..DEFAULT_MACHINE
    }
}

/// What `mmaptest` prints when every check holds (two scenarios run it).
const MMAPTEST_LINES: &[&str] = &[
    "PASS mmap-hint-exact",
    "PASS mmap-hint-taken",
    "PASS mmap-null-placement",
    "PASS mmap-fixed-replaces",
    "PASS mmap-rounds-up",
    "PASS mmap-einval-len0",
    "PASS mmap-einval-fixed-misaligned",
    "PASS mmap-einval-offset",
    "PASS mmap-einval-flags",
    "PASS mmap-einval-prot",
    "PASS mmap-enomem-too-long",
    "PASS munmap-errors",
    " mmaptest: SEGV at 0x",
    "PASS munmap-partial",
    "PASS mprotect-errors",
    "PASS mprotect-keeps-data",
    " mmaptest: SEGV at 0x",
    "PASS mmap-prot-none-segv",
    " mmaptest: SEGV at 0x",
    "PASS mprotect-none-segv",
    " mmaptest: SEGV at 0x",
    "PASS mprotect-ro-write-segv",
    " mmaptest: SEGV at 0x",
    "PASS segv-unmapped",
    " mmaptest: SEGV at 0x10",
    "PASS segv-null",
    "PASS shared-anon-fork",
    "PASS zero-page-shared",
    "PASS faults-served-by-vm",
    "PASS cow-sole-owner-no-copy",
    "PASS hello-getpid",
    "PASS fork-exec-copies-little",
    "vmmap ",
    "pages resident",
    "PASS vmmap-lists",
    " mmaptest: SEGV at 0x10",
    "PASS reclaim-100-children",
    "init: mmaptest exited with status 0",
    "init: done",
];

/// Every boot test, run in this order (two at a time).
pub const SCENARIOS: &[Scenario] = &[
    Scenario::done("boot", DEFAULT_MACHINE, "test=boot"),
    Scenario::done("cpu-a57", with_cpu(CORTEX_A57), "test=boot"),
    Scenario::done("cpu-a72", with_cpu(CORTEX_A72), "test=boot"),
    Scenario::done("cpu-max", with_cpu(MAX), "test=boot"),
    Scenario::done(
        "mem-128m",
        Machine {
            mem: Mem::mib(128),
            ..DEFAULT_MACHINE
        },
        "test=boot",
    ),
    Scenario::done(
        "mem-2g",
        Machine {
            cpu: CORTEX_A72,
            mem: Mem::gib(2),
            ..DEFAULT_MACHINE
        },
        "test=boot",
    ),
    Scenario::done(
        "el2",
        Machine {
            el2: true,
            ..DEFAULT_MACHINE
        },
        "test=boot",
    ),
    Scenario::done(
        "gicv3",
        Machine {
            cpu: CORTEX_A72,
            mem: Mem::gib(1),
            gic: Gic::V3,
            ..DEFAULT_MACHINE
        },
        "test=boot",
    ),
    Scenario::done(
        "smp4",
        Machine {
            smp: 4,
            ..DEFAULT_MACHINE
        },
        "test=boot",
    ),
    Scenario::done(
        "el2-gicv3",
        Machine {
            cpu: MAX,
            mem: Mem::gib(1),
            gic: Gic::V3,
            el2: true,
            ..DEFAULT_MACHINE
        },
        "test=boot",
    ),
    Scenario {
        ends: Ends::Done {
            min_pass: KERNEL_CHECKS,
        },
        ..Scenario::done("kernel", DEFAULT_MACHINE, "test=kernel")
    },
    // The system-call fuzzer (microkernel/ktest/src/fuzz.rs): fuzz-syscalls, fuzz-memory-reclaimed,
    // fuzz-kernel-alive, then the whole kernel suite. It takes a few seconds; the timeout
    // leaves room for slow hosts.
    Scenario {
        ends: Ends::Done {
            min_pass: 3 + KERNEL_CHECKS,
        },
        timeout_secs: 300,
        ..Scenario::done("fuzz", DEFAULT_MACHINE, "test=fuzz")
    },
    Scenario::stops(
        "initrd-missing",
        Initrd::None,
        "test=boot",
        Stage::Ram,
        &["FATAL: no initrd"],
    ),
    Scenario::stops(
        "initrd-not-cpio",
        Initrd::NotCpio,
        "test=boot",
        Stage::Initrd,
        &["FATAL: initrd: not a newc cpio archive"],
    ),
    Scenario::stops(
        "initrd-no-init",
        Initrd::NoInit,
        "test=boot",
        Stage::Initrd,
        &["FATAL: initrd: no file named \"init\""],
    ),
    Scenario::stops(
        "initrd-x86-elf",
        Initrd::X86Elf,
        "test=boot",
        Stage::Initrd,
        &["FATAL: init: not an AArch64 ELF"],
    ),
    Scenario::stops(
        "initrd-not-elf",
        Initrd::NotElf,
        "test=boot",
        Stage::Initrd,
        &["FATAL: init: not an ELF file"],
    ),
    Scenario::stops(
        "user-undef",
        Initrd::Tests,
        "test=undef",
        Stage::Hello,
        &["UNHANDLED EXCEPTION: EL0", "Unknown reason"],
    ),
    Scenario::stops(
        "kernel-fault",
        Initrd::Normal,
        "kernel.selftest=data-abort",
        Stage::Bootargs,
        &["UNHANDLED EXCEPTION: EL1", "Data abort (same EL)"],
    ),
    // init as the process server (init/src/proc): starts zero and vm, runs one program
    // from user/demos and reports how it ended.
    Scenario::stops(
        "proc-hello",
        Initrd::Normal,
        "run=hello",
        Stage::Hello,
        &[
            "init: running bin/hello on the disk (pid 10)",
            "PASS hello-getpid",
            "init: hello exited with status 3",
            "init: done",
        ],
    ),
    Scenario::stops(
        "proc-vmtest",
        Initrd::Normal,
        "run=vmtest",
        Stage::Hello,
        &[
            "PASS vm-mmap-rw",
            "PASS vm-munmap",
            "PASS vm-mprotect",
            "PASS vm-heap",
            "PASS vm-fork-cow",
            "PASS vm-segv",
            "init: vmtest exited with status 0",
            "init: done",
        ],
    ),
    Scenario::stops(
        "proc-proctest",
        Initrd::Normal,
        "run=proctest",
        Stage::Hello,
        &[
            "PASS proc-spawn-wait",
            "PASS proc-wait-echild",
            "PASS proc-spawn-enoent",
            "PASS proc-fork-getppid",
            "PASS proc-fork-exec",
            "PASS proc-exec-enoent",
            "PASS proc-kill",
            "PASS proc-kill-eperm",
            "PASS proc-wait-any",
            "PASS proc-orphan",
            "PASS proc-memory-reclaimed",
            "init: proctest exited with status 0",
            "init: ending proctest (pid ",
            "init: done",
        ],
    ),
    // `make run` with no arguments: the tour of every demo (user/demos tour), on a private
    // copy of the disk (mapping-kinds and writeback write files), checked afterwards.
    Scenario {
        writes_disk: true,
        disk_files: WRITEBACK_DISK,
        timeout_secs: 180,
        ..Scenario::stops("tour", Initrd::Normal, "", Stage::Hello, TOUR_LINES)
    },
    // The lecture demos (user/demos anon, fork-cow, vaspace): each explains itself and
    // checks its counters.
    Scenario::stops(
        "proc-anon",
        Initrd::Normal,
        "run=anon",
        Stage::Hello,
        &[
            "PASS anon-mmap-lazy",
            "PASS anon-read-zero-page",
            "PASS anon-write-allocates",
            "PASS anon-untouched-still-free",
            "vmmap ",
            "33 pages resident",
            "PASS anon-vmmap",
            "PASS anon-munmap-frees",
            "init: anon exited with status 0",
            "init: done",
        ],
    ),
    Scenario::stops(
        "proc-fork-cow",
        Initrd::Normal,
        "run=fork-cow",
        Stage::Hello,
        &[
            "PASS fork-cow-same-data",
            "PASS fork-cow-child-copies",
            "PASS fork-cow-child-checks",
            "PASS fork-cow-child-writes-private",
            "PASS fork-cow-parent-copies",
            "PASS fork-cow-parent-writes-private",
            "PASS fork-cow-sole-owner-no-copy",
            "PASS fork-cow-reclaimed",
            "init: fork-cow exited with status 0",
            "init: done",
        ],
    ),
    Scenario::stops(
        "proc-vaspace",
        Initrd::Normal,
        "run=vaspace",
        Stage::Hello,
        &[
            "PASS vaspace-enomem",
            "PASS vaspace-no-memory-used",
            "PASS vaspace-memory-still-free",
            "PASS vaspace-munmap-gives-back",
            "init: vaspace exited with status 0",
            "init: done",
        ],
    ),
    // mmap/munmap/mprotect and their errors, SEGV kills seen by wait (each one's console
    // line too), shared memory across fork, the zero page, COW around fork and exec, and
    // 100 children giving back every page.
    Scenario::stops(
        "proc-mmaptest",
        Initrd::Normal,
        "run=mmaptest",
        Stage::Hello,
        MMAPTEST_LINES,
    ),
    // The same program with a page cache of two 64 KiB blocks: the running program's own
    // text (paged in from the disk) is evicted again and again while it forks and execs;
    // every check must still hold.
    Scenario::stops(
        "proc-tiny-cache",
        Initrd::Normal,
        "run=mmaptest file.cache=2",
        Stage::Hello,
        MMAPTEST_LINES,
    ),
    // A child touches more memory than zero has: vm kills it with BUS, wait says so, and
    // every page comes back. A small machine, so that zero runs out quickly.
    Scenario {
        machine: Machine {
            mem: Mem::mib(128),
            ..DEFAULT_MACHINE
        },
        ..Scenario::stops(
            "proc-bustest",
            Initrd::Normal,
            "run=bustest",
            Stage::Hello,
            &[
                "zero: out of memory after ",
                " bustest: BUS at 0x",
                "PASS bus-kill-reported",
                "PASS bus-address",
                "PASS bus-reclaimed",
                "PASS bus-memory-usable-again",
                "init: bustest exited with status 0",
                "init: done",
            ],
        )
    },
    // The file server (pagers/file): the virtio-blk disk, its FAT volume, open/read/close.
    Scenario::stops(
        "proc-fileread",
        Initrd::Normal,
        "run=fileread",
        Stage::Hello,
        &[
            "file: virtio-blk disk on virtio-mmio transport ",
            "fileread: | Hello from the disk!",
            "PASS file-hello",
            "PASS file-big-pattern",
            "PASS file-long-name",
            "fileread: bin/fileread starts with 0x7f 0x45 0x4c 0x46",
            "PASS file-bin-elf",
            "PASS file-stat",
            "PASS file-two-descriptors",
            "PASS file-enoent",
            "PASS file-ebadf",
            "PASS file-eisdir",
            "PASS file-erofs",
            "init: fileread exited with status 0",
            "init: done",
        ],
    ),
    // File mappings: vm's memory-object regions over the file server's page cache.
    Scenario {
        writes_disk: true,
        ..Scenario::stops(
            "proc-mmapfile",
            Initrd::Normal,
            "run=mmapfile",
            Stage::Hello,
            &[
                "mmapfile: checked big.dat across 16 MiB",
                "PASS mmap-big-private",
                "mmapfile: bin/mmapfile mapped at 0x",
                " starts with 0x7f 0x45 0x4c 0x46",
                "PASS mmap-elf-magic",
                "PASS mmap-private-write",
                "PASS mmap-eacces",
                "mmapfile: after msync pread sees 0x5a 0x5b",
                "PASS mmap-shared-write-msync",
                "PASS mmap-msync-errors",
                " mmapfile: BUS at 0x",
                "PASS mmap-bus-past-eof",
                "mmapfile: 0 failures",
                "init: mmapfile exited with status 0",
                "init: done",
            ],
        )
    },
    // The shm server (pagers/shm) and the lecture's shared memory slides: an unrelated task
    // maps what another wrote; pointers inside break at different addresses, work at the same.
    Scenario::stops(
        "proc-shm",
        Initrd::Normal,
        "run=shm",
        Stage::Hello,
        &[
            "init: started shm-server (pid 5)",
            "PASS shm-open-create",
            "PASS shm-ftruncate",
            "PASS shm-slide-example",
            "shmpeer: mapped \"/shm1\" (4096 bytes) at ",
            "p[0] = 0, p[1] = 1, p[1023] = 1023",
            "PASS shm-unrelated-task-reads",
            "PASS shm-writes-go-both-ways",
            "PASS shm-list-written",
            "which is outside my mapping",
            "as an offset (0x10) it finds 20",
            "PASS shm-different-address-pointers-break",
            "PASS shm-same-written",
            "following head->next...: [10, 20, 30, 40]",
            "PASS shm-same-address-pointers-work",
            "PASS shm-unlink",
            "shmpeer: shm_open(\"/shm1\") -> ENOENT",
            "PASS shm-unlink-seen-by-others",
            "PASS shm-name-reused",
            "PASS shm-enoent",
            "PASS shm-eexist",
            "PASS shm-einval-name",
            "PASS shm-ebadf",
            "PASS shm-eacces",
            "init: shm exited with status 0",
            "init: done",
        ],
    ),
    // The file server's write path and page cache (user/demos filetest), on a private copy
    // of the disk and a 512 KiB cache so that writing 2 MiB evicts; afterwards the host reads
    // `keep.dat` back out of that copy and compares every byte.
    Scenario {
        writes_disk: true,
        disk_files: &[DiskCheck {
            path: "keep.dat",
            bytes: filetest_keep,
        }],
        timeout_secs: 180,
        ..Scenario::stops(
            "proc-filetest",
            Initrd::Normal,
            "run=filetest file.cache=8",
            Stage::Hello,
            &[
                "(64 MiB, read-write), FAT volume mounted, page cache of 8 blocks",
                "PASS file-create-excl",
                "PASS file-write-read",
                "PASS file-pwrite-pread",
                "PASS file-lseek",
                "PASS file-ftruncate",
                "PASS file-o-trunc",
                "PASS file-direct",
                "PASS file-evict-writeback",
                "PASS file-evict-counters",
                "PASS file-stdio-lines",
                "PASS file-unlink",
                "PASS file-ebadf-access",
                "PASS file-eacces-object",
                "PASS file-open-errors",
                "PASS file-keep",
                "PASS file-sync",
                "init: filetest exited with status 0",
                "init: done",
            ],
        )
    },
    // Programs from the disk, descriptors across fork, exit and kill, and data written
    // through shared mappings that reaches the disk without msync (at exit, and for a task
    // still running when exectest ends: init ends it before power-off).
    Scenario {
        writes_disk: true,
        disk_files: &[
            DiskCheck {
                path: "EXIT.DAT",
                bytes: exectest_file,
            },
            DiskCheck {
                path: "SYNC.DAT",
                bytes: exectest_file,
            },
        ],
        ..Scenario::stops(
            "proc-exectest",
            Initrd::Normal,
            "run=exectest",
            Stage::Hello,
            &[
                "init: running bin/exectest on the disk",
                "vmmap ",
                " r-xp file ",
                "hello: hello from task",
                "PASS exec-spawn-from-disk",
                "hello: hello from task",
                "PASS exec-fork-exec-from-disk",
                "PASS exec-enoent",
                "exectest: a fork child read ",
                "PASS fd-inherited-by-fork",
                "PASS shm-fd-inherited-by-fork",
                "PASS fd-released-at-exit",
                "PASS fd-released-at-kill",
                "PASS shared-write-at-exit",
                "PASS shared-write-still-running",
                "exectest: 0 failures",
                "init: exectest exited with status 0",
                "init: ending exectest (pid ",
                "init: done",
            ],
        )
    },
    // The lecture demos of part 2 (user/demos mmap-file, mapping-kinds, fileio, writeback).
    Scenario::stops(
        "proc-mmap-file",
        Initrd::Normal,
        "run=mmap-file",
        Stage::Hello,
        &[
            "mmap-file:   int fd = open(\"bin/hello\", O_RDONLY);",
            "PASS mmap-file-lazy",
            "mmap-file:   0x7f 0x45 0x4c 0x46",
            "PASS mmap-file-elf-magic",
            "PASS mmap-file-first-touch-faults",
            "PASS mmap-file-close-keeps-mapping",
            "PASS mmap-file-munmap",
            "PASS mmap-file-fault-around",
            "PASS mmap-file-pages-on-touch",
            "PASS mmap-file-last-word",
            "PASS mmap-file-big-unmapped",
            "mmap-file: 0 failures",
            "init: mmap-file exited with status 0",
            "init: done",
        ],
    ),
    Scenario {
        writes_disk: true,
        ..Scenario::stops(
            "proc-mapping-kinds",
            Initrd::Normal,
            "run=mapping-kinds",
            Stage::Hello,
            &[
                "PASS kinds-private-file",
                "PASS kinds-shared-file",
                "PASS kinds-private-anon",
                "PASS kinds-shared-anon",
                "mapping-kinds:   private file      | yes    | no            | no            | no      | no",
                "mapping-kinds:   shared file       | yes    | yes           | yes           | yes     | yes",
                "mapping-kinds:   private anonymous | yes    | no            | -             | -       | -",
                "mapping-kinds:   shared anonymous  | yes    | yes           | -             | -       | -",
                "mapping-kinds: the slide's table, filled in from what was seen:",
                "Private  | writer only (copy-on-write); file unchanged",
                "Shared   | all mappers see writes; file changes",
                "mapping-kinds: 0 failures",
                "init: mapping-kinds exited with status 0",
                "init: done",
            ],
        )
    },
    Scenario {
        timeout_secs: 180,
        // The write ways create a file (the tour, on the shared read-only disk, skips them).
        writes_disk: true,
        ..Scenario::stops(
            "proc-fileio",
            Initrd::Normal,
            "run=fileio",
            Stage::Hello,
            &[
                "PASS fileio-warm",
                "PASS fileio-one-request-per-block",
                "PASS fileio-read-ahead",
                "PASS fileio-read-1k",
                "PASS fileio-read-4k",
                "PASS fileio-direct-4k",
                "PASS fileio-fgets-1k",
                "PASS fileio-mmap",
                "PASS fileio-write-1k",
                "PASS fileio-write-4k",
                "PASS fileio-mmap-write",
                "fileio: per MiB moved",
                "PASS fileio-read-warm",
                "PASS fileio-direct-disk",
                "PASS fileio-mmap-object-pages",
                "fileio: 0 failures",
                "init: fileio exited with status 0",
                "init: done",
            ],
        )
    },
    // Nothing lost: shared-mapping writes reach the disk at msync, munmap, eviction (a cache
    // of 8 blocks for a file of 18) and exit; the host compares every byte after power-off,
    // and a second boot on the same disk copy reads the file back.
    Scenario {
        writes_disk: true,
        disk_files: WRITEBACK_DISK,
        then: Some(&WRITEBACK_SECOND_BOOT),
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-writeback",
            Initrd::Normal,
            "run=writeback file.cache=8",
            Stage::Hello,
            &[
                "page cache of 8 blocks",
                "PASS writeback-msync",
                "PASS writeback-munmap",
                "PASS writeback-exit-pending",
                "writeback: 0 failures",
                "init: writeback exited with status 0",
                "init: done",
            ],
        )
    }, // Attacks on the servers (issue 8), each written as a hostile task would.
    // Page-fault messages forged through a task's own vm capability: all refused.
    Scenario::stops(
        "attack-faults",
        Initrd::Normal,
        "run=attack-faults",
        Stage::Hello,
        &[
            "PASS attack-fault-write-refused",
            "PASS attack-fault-not-served",
            "PASS attack-fault-zero-page-intact",
            "PASS attack-mprotect-zero-page-intact",
            "PASS attack-fault-cow-child-refused",
            "PASS attack-fault-cow-parent-intact",
            "PASS attack-mprotect-cow-parent-intact",
            "PASS attack-fault-every-label-refused",
            "init: attack-faults exited with status 0",
            "init: done",
        ],
    ),
    // A task at the power switch and the console: only capabilities open them; only the
    // session's program may ask init to power off, and init writes the page cache back first.
    Scenario {
        writes_disk: true,
        disk_files: &[DiskCheck {
            path: "POWER.DAT",
            bytes: attack_power_file,
        }],
        ..Scenario::stops(
            "attack-power",
            Initrd::Normal,
            "run=attack-power",
            Stage::Hello,
            &[
                "PASS attack-power-off-refused",
                "PASS attack-console-needs-capability",
                "attack-power: printed through descriptor 1, the console server",
                "PASS attack-shutdown-child-refused",
                "PASS attack-power-file-written",
                "init: power-off asked by pid ",
                "init: attack-power exited with status 0",
                "init: ending attack-power (pid ",
                "init: done",
            ],
        )
    },
    // A server that stops (a test hook makes shm stop at its 8th request) ends alone: init
    // reports it, its clients get errors or BUS, everything else runs on.
    Scenario::stops(
        "server-stop",
        Initrd::Normal,
        "run=server-stop shm.stop=8",
        Stage::Hello,
        &[
            "shm-server: test hook: stopping at request 8",
            "init: server shm-server (pid 5) failed (undefined instruction",
            "PASS server-stop-call-returns-error",
            "PASS server-stop-later-calls-fail",
            "PASS server-stop-mapped-page-stays",
            "PASS server-stop-untouched-page-bus",
            "PASS server-stop-anon-works",
            "PASS server-stop-fork-works",
            "PASS server-stop-files-work",
            "init: server-stop exited with status 0",
            "init: done",
        ],
    ),
    // Lost writes under eviction (issue 8): three writers of one shared file mapping of six
    // blocks under a page cache of two, each checking its own words as it goes, a reader
    // streaming big.dat meanwhile; every word checked with pread, a fresh mapping and, after
    // power-off, on the host. Then a fork child of a parent whose block was revoked and
    // handed out again must have its write seen.
    Scenario {
        writes_disk: true,
        disk_files: &[
            DiskCheck {
                path: "STRESS.DAT",
                bytes: wbstress_file,
            },
            DiskCheck {
                path: "FORKREV.DAT",
                bytes: wbstress_fork_file,
            },
        ],
        // About 10 s alone, twice that beside other scenarios.
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-wbstress",
            Initrd::Normal,
            "run=wbstress file.cache=2",
            Stage::Hello,
            &[
                "page cache of 2 blocks",
                "wbstress: the reader read a page of ",
                "PASS wbstress-readback",
                "PASS wbstress-evicted",
                "PASS wbstress-log",
                "PASS wbstress-pread",
                "PASS wbstress-mmap",
                "PASS wbstress-fork-after-revoke",
                "wbstress: 0 failures",
                "init: wbstress exited with status 0",
                "init: done",
            ],
        )
    },
    // The end of a file inside a page and a sector (issue 8): zeroes past it in every new
    // mapping, after write-back and when the file grows, the file unchanged (host-checked);
    // an O_DIRECT read up to the end returns the bytes there.
    Scenario {
        writes_disk: true,
        disk_files: &[DiskCheck {
            path: "TAIL.DAT",
            bytes: filetail_file,
        }],
        ..Scenario::stops(
            "proc-filetail",
            Initrd::Normal,
            "run=filetail",
            Stage::Hello,
            &[
                "PASS tail-zero-new-mapping",
                "PASS tail-zero-after-writeback",
                "PASS tail-file-unchanged",
                "PASS tail-zero-grow-truncate",
                "PASS tail-zero-grow-write",
                "filetail: O_DIRECT pread(1024 bytes at 0) of a 1000-byte file = Ok(1000)",
                "PASS direct-tail-read",
                "filetail: 0 failures",
                "init: filetail exited with status 0",
                "init: done",
            ],
        )
    },
    // The file server's errors stay with their cause (issue 8, defect 7): offsets that wrap,
    // second spellings of a name, unlink of long names, a writer filling the disk.
    Scenario {
        writes_disk: true,
        disk_prep: Some(fatattack_disk),
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-fatattack",
            Initrd::Normal,
            "run=fatattack file.cache=4",
            Stage::Hello,
            &[
                "page cache of 4 blocks",
                "init: running bin/fatattack on the disk",
                "PASS fat-lseek-past-4g",
                "PASS fat-pwrite-across-2-64",
                "PASS fat-spellings-one-file",
                "PASS fat-alias-same-file",
                "PASS fat-dot-dot",
                "PASS fat-unlink-alias",
                "PASS fat-unlink-long-name",
                "PASS fat-enospc-is-the-writers",
                "fatattack: 0 failures",
                "init: fatattack exited with status 0",
                "init: done",
            ],
        )
    },
    // Damaged disks (defect 9): the system boots, the file server says what is wrong,
    // programs come from the initrd, every call returns.
    Scenario {
        writes_disk: true,
        disk_prep: Some(crate::disk::prep::sectors_per_cluster_zero),
        ..Scenario::stops(
            "disk-bad-geometry",
            Initrd::Normal,
            "run=diskcheck",
            Stage::Hello,
            &[
                "file: cannot mount the disk: invalid FAT volume: sectors per cluster is not a power of two from 1 to 128; no disk (ENODEV)",
                "init: running diskcheck in the initrd",
                "PASS diskcheck-spawn",
                "diskcheck: stat(\"hello.txt\") = Err(ENODEV)",
                "PASS diskcheck-calls-return",
                "diskcheck: 0 failures",
                "init: diskcheck exited with status 0",
                "init: done",
            ],
        )
    },
    Scenario {
        writes_disk: true,
        disk_prep: Some(crate::disk::prep::bin_chained_to_itself),
        ..Scenario::stops(
            "disk-dir-loop",
            Initrd::Normal,
            "run=diskcheck",
            Stage::Hello,
            &[
                "FAT volume mounted",
                "file: damaged volume: directory cluster chain: TooLong(",
                "init: running diskcheck in the initrd",
                "PASS diskcheck-spawn",
                "diskcheck: stat(\"hello.txt\") = Ok(",
                "diskcheck: stat(\"bin/hello\") = Err(EIO)",
                "diskcheck: stat(\"bin/no-such-file\") = Err(EIO)",
                "diskcheck: reading 1 MiB of big.dat = Ok(Ok(1048576))",
                "PASS diskcheck-calls-return",
                "diskcheck: 0 failures",
                "init: diskcheck exited with status 0",
                "init: done",
            ],
        )
    },
    Scenario {
        writes_disk: true,
        disk_prep: Some(crate::disk::prep::garbage_fat),
        ..Scenario::stops(
            "disk-garbage-fat",
            Initrd::Normal,
            "run=diskcheck",
            Stage::Hello,
            &[
                "FAT volume mounted",
                "file: damaged volume: ",
                "init: running diskcheck in the initrd",
                "PASS diskcheck-spawn",
                "diskcheck: stat(\"bin/hello\") = Err(EIO)",
                "diskcheck: reading 1 MiB of big.dat = Err(EIO)",
                "PASS diskcheck-calls-return",
                "diskcheck: 0 failures",
                "init: diskcheck exited with status 0",
                "init: done",
            ],
        )
    },
    // Memory-object handles as an attacker sees them (issue 8, defects 2 and 3, and the
    // leak of a failed mmap): forged handle numbers, read-only handles mapped or made
    // writable, O_WRONLY mapped, failed mmaps, hoarded handles. The host checks afterwards
    // that no write reached the victim's file.
    Scenario {
        writes_disk: true,
        disk_files: &[DiskCheck {
            path: "HSECRET.DAT",
            bytes: attack_handles_secret,
        }],
        ..Scenario::stops(
            "attack-handles",
            Initrd::Normal,
            "run=attack-handles",
            Stage::Hello,
            &[
                "attack-handles: the victim (pid ",
                "attack-handles: Shm pager: 0 mappings of forged handles made",
                "PASS handles-forged-shm",
                "attack-handles: File pager: 0 mappings of forged handles made",
                "PASS handles-forged-file",
                "PASS handles-victim-intact",
                "PASS handles-readonly-shm",
                "PASS handles-readonly-file",
                "PASS handles-mmap-wronly",
                "PASS handles-failed-mmap-shm",
                "PASS handles-failed-mmap-file",
                "PASS handles-hoard",
                "attack-handles: 0 failures",
                "init: attack-handles exited with status 0",
                "init: done",
            ],
        )
    },
    // The server fuzzer: 100,000 random and half-valid requests to vm, file, shm and init
    // from disposable children; every server still answers and everything comes back.
    // Its volume is checked after the run like every other (`disk::fsck`): the fuzzed
    // calls once left files cut to 0 bytes that kept a cluster, a chain longer than its
    // file after a growth refused for room, and lost clusters (docs/pagers.md).
    Scenario {
        writes_disk: true,
        timeout_secs: 300,
        ..Scenario::stops(
            "srvfuzz",
            Initrd::Normal,
            "run=srvfuzz",
            Stage::Hello,
            &[
                "PASS srvfuzz-requests",
                "PASS srvfuzz-servers-answer",
                "PASS srvfuzz-descriptors-back",
                "PASS srvfuzz-pages-back",
                "PASS srvfuzz-slots-back",
                "PASS srvfuzz-still-works",
                "init: srvfuzz exited with status 0",
                "init: done",
            ],
        )
    },
    // The tour on a 128 MiB machine: the servers' budgets follow the RAM the device tree
    // reports, so that the file and shm servers start and every demo runs.
    Scenario {
        machine: Machine {
            mem: Mem::mib(128),
            ..DEFAULT_MACHINE
        },
        writes_disk: true,
        disk_files: WRITEBACK_DISK,
        timeout_secs: 240,
        ..Scenario::stops("tour-128m", Initrd::Normal, "", Stage::Hello, TOUR_LINES)
    },
    // The servers' limits tried as an attacker would (user/demos limits): 20,000 opens,
    // 100 staged O_DIRECT transfers, 5,000 shm objects and shared anonymous mappings,
    // 70,000 regions, 300 children; each ends in its errno, the server still answers, and
    // everything comes back.
    Scenario {
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-attack-limits",
            Initrd::Normal,
            "run=limits",
            Stage::Hello,
            LIMITS_LINES,
        )
    },
    // The same attack on a 128 MiB machine, whose servers have smaller heaps: the limits
    // (and the heaps' low-water marks) still answer first.
    Scenario {
        machine: Machine {
            mem: Mem::mib(128),
            ..DEFAULT_MACHINE
        },
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-attack-limits-128m",
            Initrd::Normal,
            "run=limits",
            Stage::Hello,
            LIMITS_LINES,
        )
    },
    // vm's POSIX details (user/demos vmposix): MAP_FIXED across the top of user space,
    // msync's flags, mprotect merging equal neighbours again (vmmap shows the 64 pages
    // whose protections went back and forth as one region), SEGV and BUS at the address
    // touched.
    Scenario::stops(
        "proc-vm-posix",
        Initrd::Normal,
        "run=vmposix",
        Stage::Hello,
        &[
            "PASS vm-fixed-across-top-enomem",
            "PASS vm-msync-flags",
            "  0x004000000000-0x004000040000 rw-p anon       0 pages resident",
            "PASS vm-mprotect-merges",
            " vmposix: SEGV at 0x",
            "PASS vm-segv-exact-address",
            " vmposix: BUS at 0x",
            "PASS vm-bus-exact-address",
            "vmposix: 0 failures",
            "init: vmposix exited with status 0",
            "init: done",
        ],
    ),
    // A second, hostile look (issue 8's review): running programs busy for writing,
    // empty and trailing-slash paths, program names, init's and vm's requests from a task,
    // processes outside the caller's subtree, closed descriptors, bytes past the end.
    Scenario {
        writes_disk: true,
        disk_files: &[
            DiskCheck {
                path: "RECR.DAT",
                bytes: || b"new".to_vec(),
            },
            DiskCheck {
                path: "GROWN.DAT",
                bytes: || vec![0; 10_000],
            },
        ],
        ..Scenario::stops(
            "attack-review",
            Initrd::Normal,
            "run=attack-review file.cache=4",
            Stage::Hello,
            &[
                "init: running bin/attack-review on the disk",
                "PASS review-etxtbsy",
                "PASS review-empty-path",
                "PASS review-trailing-slash",
                "PASS review-exec-names",
                "PASS review-control-from-task",
                "PASS review-procs",
                "PASS review-closed-fd",
                "PASS review-stale-file",
                "PASS review-stale-shm",
                "PASS review-servers-not-programs",
                "PASS review-truncate-error",
                "PASS review-recreate-unlinked",
                "PASS review-append",
                "PASS review-negative-offset",
                "PASS review-mapping-errors",
                "PASS review-zero-length",
                "PASS review-mmap-hint",
                "PASS review-kill-mid-request",
                "PASS review-cloexec",
                "PASS review-reuse-zeroed",
                "PASS review-grow-kept",
                "PASS review-unlinked-data",
                "PASS review-open-flags",
                "attack-review: 0 failures",
                "init: attack-review exited with status 0",
                "init: done",
            ],
        )
    },
    // The file server's disk path on a file whose clusters are scattered (user/demos
    // fragtest; the tools' `disk::prep::fragmented`): its blocks need several requests each,
    // and every byte read, written through a mapping, written and appended comes back, in
    // the guest through a 4-block cache and on the host after power-off.
    Scenario {
        writes_disk: true,
        disk_prep: Some(fragtest_disk),
        disk_files: &[DiskCheck {
            path: "FRAG.DAT",
            bytes: fragtest_file,
        }],
        ..Scenario::stops(
            "proc-fragtest",
            Initrd::Normal,
            "run=fragtest file.cache=4",
            Stage::Hello,
            &[
                "page cache of 4 blocks",
                "init: running bin/fragtest on the disk",
                "PASS frag-mmap-read",
                "PASS frag-split-requests",
                "PASS frag-write",
                "PASS frag-reread",
                "PASS frag-close",
                "PASS frag-reopen",
                "fragtest: 0 failures",
                "init: fragtest exited with status 0",
                "init: done",
            ],
        )
    },
    // A third look (after attack-review): a shm object shrunk inside a page (BUS past the
    // end), read/write/lseek on shm descriptors, O_DIRECT stages that outlive their call.
    Scenario {
        writes_disk: true,
        disk_prep: Some(attack_review2_disk),
        disk_files: &[DiskCheck {
            path: "TRUNCF.DAT",
            bytes: || truncf_bytes()[..2 * 65536 + 100].to_vec(),
        }],
        ..Scenario::stops(
            "attack-review2",
            Initrd::Normal,
            "run=attack-review2 file.cache=4",
            Stage::Hello,
            &[
                "init: running bin/attack-review2 on the disk",
                "PASS review2-shm-shrink-bus",
                "PASS review2-shm-rw",
                "PASS review2-direct-stage",
                "PASS review2-ftruncate-negative",
                "PASS review2-truncate-disk-error",
                "attack-review2: 0 failures",
                "init: attack-review2 exited with status 0",
                "init: done",
            ],
        )
    },
    // The file server stops (test hook) while a task uses files, a file mapping, shm and
    // anonymous memory; init restarts it (issue 9): old descriptors are EBADF, new opens,
    // mappings and spawns from the disk work, the old mapping is BUS, the rest unaffected.
    Scenario {
        writes_disk: true,
        ..Scenario::stops(
            "server-restart",
            Initrd::Normal,
            "run=server-restart file.stop=30",
            Stage::Hello,
            &[
                "init: running server-restart in the initrd",
                "PASS server-restart-mapping-before",
                "file: test hook: stopping at request 30",
                "init: server file (pid 4) failed (undefined instruction",
                "init: restarted server file (pid 4), restart 1 of 3; init's memory and slots as before",
                "PASS server-restart-call-returns-error",
                "PASS server-restart-old-fd-ebadf",
                "PASS server-restart-open-works",
                "PASS server-restart-new-mapping-works",
                "PASS server-restart-spawn-from-disk",
                "PASS server-restart-old-mapping-bus",
                "PASS server-restart-shm-unaffected",
                "PASS server-restart-anon-unaffected",
                "init: server-restart exited with status 0",
                "init: done",
            ],
        )
    },
    // A file server that keeps failing (every instance stops at its 5th request) is
    // restarted three times, each from the same memory, then left ended.
    Scenario::stops(
        "server-restart-limit",
        Initrd::Normal,
        "run=restart-limit file.stop=5 file.stop.all=1",
        Stage::Hello,
        &[
            "init: restarted server file (pid 4), restart 1 of 3; init's memory and slots as before",
            "init: restarted server file (pid 4), restart 2 of 3; init's memory and slots as before",
            "init: restarted server file (pid 4), restart 3 of 3; init's memory and slots as before",
            "init: server file failed 4 times; it is not restarted again",
            "PASS server-restart-limit-three-restarts",
            "PASS server-restart-limit-stays-ended",
            "PASS server-restart-limit-rest-runs",
            "init: restart-limit exited with status 0",
            "init: done",
        ],
    ),
    // The file server keeps several disk requests in flight: readers and a mapping fault
    // cold blocks of big.dat at once under a cache of 8 blocks, checking every word; the
    // server's counters show more than one request in flight (docs/pagers.md).
    Scenario::stops(
        "proc-file-async",
        Initrd::Normal,
        "run=fileasync file.cache=8",
        Stage::Hello,
        &[
            "page cache of 8 blocks",
            "init: running bin/fileasync on the disk",
            "PASS fileasync-readers",
            "fileasync: disk requests ",
            "PASS fileasync-in-flight",
            "PASS fileasync-async-reads",
            "fileasync: 0 failures",
            "init: fileasync exited with status 0",
            "init: done",
        ],
    ),
    // The same on a disk that fails the first read of AIOERR.DAT's second block once
    // (blkdebug): the asynchronous read answers EIO, the next read gets the bytes.
    Scenario {
        writes_disk: true,
        disk_prep: Some(file_async_eio_disk),
        ..Scenario::stops(
            "proc-file-async-eio",
            Initrd::Normal,
            "run=fileasync file.cache=8",
            Stage::Hello,
            &[
                "init: running bin/fileasync on the disk",
                "PASS fileasync-eio",
                "PASS fileasync-eio-retry",
                "PASS fileasync-readers",
                "PASS fileasync-in-flight",
                "PASS fileasync-async-reads",
                "fileasync: 0 failures",
                "init: fileasync exited with status 0",
                "init: done",
            ],
        )
    },
    // wbstress under a cache of 4 blocks, where misses are read asynchronously beside the
    // synchronous write-backs: it hung when a read completed behind a write under one
    // interrupt and was left in the used ring.
    Scenario {
        writes_disk: true,
        disk_files: &[
            DiskCheck {
                path: "STRESS.DAT",
                bytes: wbstress_file,
            },
            DiskCheck {
                path: "FORKREV.DAT",
                bytes: wbstress_fork_file,
            },
        ],
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-wbstress-async",
            Initrd::Normal,
            "run=wbstress file.cache=4",
            Stage::Hello,
            &[
                "page cache of 4 blocks",
                "wbstress: the reader read a page of ",
                "PASS wbstress-readback",
                "PASS wbstress-evicted",
                "PASS wbstress-log",
                "PASS wbstress-pread",
                "PASS wbstress-mmap",
                "PASS wbstress-fork-after-revoke",
                "wbstress: 0 failures",
                "init: wbstress exited with status 0",
                "init: done",
            ],
        )
    },
    // The soak (issue 9): a page cache of two blocks, then of four (read-ahead).
    SOAK,
    SOAK_AHEAD,
    // Tasks waiting on a pager that crashes (issue 9): the file server stops when vm asks
    // it for block 200; the three tasks waiting on it end with BUS at the addresses they
    // touched, a task using anonymous memory runs on, init restarts the server and files
    // work again.
    Scenario::stops(
        "pager-crash-waiters",
        Initrd::Normal,
        "run=pagerwait file.stop.block=200",
        Stage::Hello,
        &[
            "init: running pagerwait in the initrd",
            "file: test hook: stopping when asked for block 200",
            "init: server file (pid 4) failed (undefined instruction",
            "init: restarted server file (pid 4), restart 1 of 3",
            "PASS pagerwait-waiters-bus",
            "PASS pagerwait-anon-unaffected",
            "PASS pagerwait-anon-exits",
            "PASS pagerwait-open-works",
            "PASS pagerwait-new-mapping-works",
            "init: pagerwait exited with status 0",
            "init: done",
        ],
    ),
    // The same with a file server that stops answering but stays alive: vm's deadline
    // (500 ms here) ends the waiters and tells init, which ends and restarts the server.
    Scenario::stops(
        "pager-hang-waiters",
        Initrd::Normal,
        "run=pagerwait file.hang.block=200 vm.deadline=500",
        Stage::Hello,
        &[
            "init: running pagerwait in the initrd",
            "file: test hook: no more answers from block 200",
            "vm: File pager has not answered within its deadline: ending its waiters",
            "init: server file (pid 4) failed (no answer to vm within its deadline",
            "init: restarted server file (pid 4), restart 1 of 3",
            "PASS pagerwait-waiters-bus",
            "PASS pagerwait-anon-unaffected",
            "PASS pagerwait-anon-exits",
            "PASS pagerwait-open-works",
            "PASS pagerwait-new-mapping-works",
            "init: pagerwait exited with status 0",
            "init: done",
        ],
    ),
    // init never waits for the file server (issue 9): with the server alive but silent from
    // its 7th request and nothing of vm's in flight to it, tasks using anonymous memory
    // only exit, are killed and are waited for while a task's `open` and another's `spawn`
    // (init reading `bin/hello`) still wait; then
    // init's own deadline (3 s here) ends and restarts the server, the fork that waited
    // for its `TaskFork` completes, and `open` and `spawn` from the disk work again.
    Scenario::stops(
        "init-file-hang",
        Initrd::Normal,
        "run=inithang file.hang=7 init.deadline=3000",
        Stage::Hello,
        &[
            "init: running inithang in the initrd",
            "file: test hook: no more answers from request 7",
            "PASS inithang-workers-exit",
            "PASS inithang-worker-killed",
            "PASS inithang-server-still-hung",
            "init: file server has not answered within init's deadline",
            "init: server file (pid 4) failed (no answer to init within its deadline",
            "init: restarted server file (pid 4), restart 1 of 3; init's memory and slots as before",
            "PASS inithang-fork-after-restart",
            "PASS inithang-hung-caller-error",
            "PASS inithang-spawn-waited",
            "PASS inithang-open-works",
            "PASS inithang-spawn-works",
            "init: inithang exited with status 0",
            "init: done",
        ],
    ),
    // The same with the shm server silent from its 4th request (init's first `TaskExit`):
    // tasks using anonymous memory only are killed, exit and are waited for; init's
    // deadline ends the shm server (not restarted), the fork that waited completes,
    // `shm_open` is `ENODEV`, files work. The program runs from the disk.
    Scenario::stops(
        "init-shm-hang",
        Initrd::Normal,
        "run=initshmhang shm.hang=4 init.deadline=3000",
        Stage::Hello,
        &[
            "init: running bin/initshmhang on the disk",
            "shm-server: test hook: no more answers from request 4",
            "PASS initshmhang-workers-killed",
            "PASS initshmhang-worker-exits",
            "init: shm server has not answered within init's deadline",
            "init: server shm-server (pid 5) failed (no answer to init within its deadline",
            "PASS initshmhang-fork-after-end",
            "PASS initshmhang-shm-gone",
            "PASS initshmhang-files-work",
            "init: initshmhang exited with status 0",
            "init: done",
        ],
    ),
    // Directories and long names (issue 10): a long name the host wrote is read; files and
    // directories made with long names, listed over several `ReadDir` calls, renamed across
    // directories, removed; every error; a disk filled until `ENOSPC`. After power-off the
    // tools read the files back by their long names (`fatfs`).
    Scenario {
        writes_disk: true,
        disk_prep: Some(dirtest_disk),
        disk_files: &[
            DiskCheck {
                path: "Dir Test/A long file name.txt",
                bytes: dirtest_long,
            },
            DiskCheck {
                path: "Dir Test/Sub Directory/moved file.dat",
                bytes: dirtest_moved,
            },
            DiskCheck {
                path: "Dir Test/New Name Dir/inside.txt",
                bytes: dirtest_inside,
            },
            DiskCheck {
                path: "Dir Test/entry number 39.dat",
                bytes: dirtest_entry_39,
            },
            DiskCheck {
                path: "Dir Test/Sub Directory/renamed open.txt",
                bytes: dirtest_renamed_open,
            },
            DiskCheck {
                path: DIRTEST_DEEP_FILE,
                bytes: dirtest_deep,
            },
        ],
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-dirtest",
            Initrd::Normal,
            "run=dirtest file.cache=4",
            Stage::Hello,
            &[
                "init: running bin/dirtest on the disk",
                "PASS dir-mkdir",
                "PASS dir-host-long-name",
                "PASS dir-long-create",
                "PASS dir-mkdir-nested",
                "PASS dir-readdir",
                "PASS dir-rename-file",
                "PASS dir-rename-dir",
                "PASS dir-rmdir",
                "PASS dir-unlink-long",
                "PASS dir-errors",
                "PASS dir-rename-open",
                "PASS dir-whole-clusters",
                "dirtest: 32 new files with long names: ",
                "PASS dir-metadata-runs",
                "PASS dir-long-paths",
                "PASS dir-enospc",
                "dirtest: 0 failures",
                "init: dirtest exited with status 0",
                "init: done",
            ],
        )
    },
    // The same program on the shared, read-only disk: every change is `EROFS`.
    Scenario::stops(
        "proc-dirtest-ro",
        Initrd::Normal,
        "run=dirtest",
        Stage::Hello,
        &[
            "init: running bin/dirtest on the disk",
            "PASS dir-erofs",
            "dirtest: 0 failures",
            "init: dirtest exited with status 0",
            "init: done",
        ],
    ),
    // The bulk data path (issue 10): read/write copy through a window of the page cache's
    // frames; coherence with other descriptors, tasks and shared mappings, a position
    // shared with a fork child, O_APPEND from two tasks, O_DIRECT, shm, stdio, errors.
    Scenario {
        writes_disk: true,
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-fastio",
            Initrd::Normal,
            "run=fastio",
            Stage::Hello,
            &[
                "PASS fastio-read-after-write",
                "PASS fastio-grown-by-other",
                "fastio: read(4096) at 900 of a 1000-byte file = Ok(100), then Ok(0)",
                "PASS fastio-short-read-eof",
                "PASS fastio-pread-pwrite",
                "PASS fastio-mapping-sees-write",
                "PASS fastio-read-sees-mapping",
                "fastio: after the child read 10 and wrote 5: position Ok(25)",
                "PASS fastio-fork-shares-offset",
                "fastio: 200 parent and 200 child records, each whole",
                "PASS fastio-append-two-tasks",
                "PASS fastio-odirect",
                "PASS fastio-shm-read-write",
                "PASS fastio-stdio-roundtrip",
                "PASS fastio-scan-copy",
                "PASS fastio-errors",
                "PASS fastio-no-data-messages",
                "fastio: 0 failures",
                "init: fastio exited with status 0",
                "init: done",
            ],
        )
    }, // Arguments and environment (issue 11): `run=argtest,one,two` gives the program argv;
    // spawn and exec carry argv and the environment to the new program's `main`, fork keeps
    // them, E2BIG at the limits, and forged argument areas are refused by init.
    Scenario::stops(
        "proc-argv",
        Initrd::Normal,
        "run=argtest,one,two",
        Stage::Hello,
        &[
            "argtest: my argv: [\"argtest\", \"one\", \"two\"]",
            "PASS argv-boot",
            "PASS argv-accessors",
            "PASS argv-spawn",
            "PASS argv-spawn-env-inherited",
            "PASS argv-exec",
            "PASS argv-exec-keeps-env",
            "PASS argv-fork-keeps",
            "PASS argv-exec-failure-keeps",
            "PASS argv-arg-max",
            "PASS argv-max-args",
            "PASS argv-bad-strings",
            "PASS argv-forged-areas",
            "PASS argv-area-unmapped",
            "PASS argv-init-serves-on",
            "argtest: 0 failures",
            "init: argtest exited with status 0",
            "init: done",
        ],
    ), // The lecture demos with arguments a student would try (issue 11): `anon 128` maps 128
    // pages (65 resident at vmmap), `mmap-file hello.txt` maps a text file, `tour anon
    // fork-cow` runs two stops; bad arguments end with a usage line and status 2. With the
    // arguments of before (none), the lines and statuses below do not appear.
    Scenario::stops(
        "proc-demo-args",
        Initrd::Normal,
        "run=demoargs",
        Stage::Hello,
        &[
            "demoargs: anon 128",
            "anon: step 1: mmap(NULL, 512 KiB, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)",
            "PASS anon-write-allocates",
            "65 pages resident",
            "PASS demo-args-anon-128",
            "anon: \"lots\": not a number in the range",
            "usage: anon [pages]",
            "PASS demo-args-anon-not-a-number",
            "PASS demo-args-anon-too-small",
            "anon: too many arguments",
            "PASS demo-args-anon-too-many",
            "mmap-file:   int fd = open(\"hello.txt\", O_RDONLY);",
            "PASS mmap-file-first-bytes",
            "PASS demo-args-mmap-file-hello-txt",
            "mmap-file: cannot open nonesuch.txt: ENOENT",
            "usage: mmap-file [file]",
            "PASS demo-args-mmap-file-missing",
            "mmap-file: bin is a directory",
            "PASS demo-args-mmap-file-directory",
            "==== 1/2: slide \"File vs. Anonymous Mapping\" (anon)",
            "==== 2/2: slide \"Copy-on-Write during fork()\" (fork-cow)",
            "tour: 2 demos, 0 failed",
            "PASS demo-args-tour-part",
            "tour: \"nope\" is no stop of the tour",
            "PASS demo-args-tour-unknown",
            "demoargs: 0 failures",
            "init: demoargs exited with status 0",
            "init: done",
        ],
    ),
    // The file server stops (test hook) in the middle of a stream of directory and FAT
    // changes (issue 10): every file whose close answered before is there after the
    // restart, the restarted server goes on, and after power-off the volume needs no repair
    // (`disk::fsck`, as after every run that writes the disk) and holds what was written.
    Scenario {
        writes_disk: true,
        disk_files: &[
            DiskCheck {
                path: "Crash/long name file 000.dat",
                bytes: fatcrash_0,
            },
            DiskCheck {
                path: "Crash/after/renamed after.dat",
                bytes: fatcrash_200,
            },
        ],
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-fatcrash",
            Initrd::Normal,
            "run=fatcrash file.stop=150",
            Stage::Hello,
            &[
                "init: running fatcrash in the initrd",
                "file: test hook: stopping at request 150",
                "init: restarted server file (pid 4), restart 1 of 3",
                "fatcrash: the file server stopped in step ",
                "PASS fatcrash-stopped",
                "PASS fatcrash-restarted",
                "PASS fatcrash-answered-kept",
                "PASS fatcrash-after-restart",
                "fatcrash: 0 failures",
                "init: fatcrash exited with status 0",
                "init: done",
            ],
        )
    },
    // The same on a FAT32 volume (512-byte clusters) whose info sector gives the number of
    // free clusters: the server keeps that count right (issue 10), so the check after
    // power-off (`disk::fsck`, `fsck.fat -n`) finds it equal to the FAT's; the crate alone
    // left it at what it was before the run.
    Scenario {
        writes_disk: true,
        disk_prep: Some(crate::disk::prep::fat32),
        disk_files: &[
            DiskCheck {
                path: "Crash/long name file 000.dat",
                bytes: fatcrash_0,
            },
            DiskCheck {
                path: "Crash/after/renamed after.dat",
                bytes: fatcrash_200,
            },
        ],
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-fatcrash32",
            Initrd::Normal,
            "run=fatcrash file.stop=150",
            Stage::Hello,
            &[
                "init: running fatcrash in the initrd",
                "file: test hook: stopping at request 150",
                "init: restarted server file (pid 4), restart 1 of 3",
                "fatcrash: the file server stopped in step ",
                "PASS fatcrash-stopped",
                "PASS fatcrash-restarted",
                "PASS fatcrash-answered-kept",
                "PASS fatcrash-after-restart",
                "fatcrash: 0 failures",
                "init: fatcrash exited with status 0",
                "init: done",
            ],
        )
    },
    // O_DIRECT through a buffer shared with the file server (issue 10, second session):
    // coherence with the cache and mappings both ways, growth, alignment, fork, more
    // descriptors than buffers, and no data in messages.
    Scenario {
        writes_disk: true,
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-directio",
            Initrd::Normal,
            "run=directio",
            Stage::Hello,
            &[
                "PASS direct-sees-cache-and-mapping",
                "PASS direct-write-seen",
                "PASS direct-grow",
                "PASS direct-alignment-eof",
                "PASS direct-fork",
                "PASS direct-many-descriptors",
                "PASS direct-no-data-messages",
                "directio: 0 failures",
                "init: directio exited with status 0",
                "init: done",
            ],
        )
    },
    // Growing writes under growth reservations (issue 10, second session): sizes right for
    // other descriptors, tasks, O_APPEND, ftruncate and mappings; the files on the disk
    // exact (closed, and left open by an exiting writer); few server calls.
    Scenario {
        writes_disk: true,
        timeout_secs: 120,
        disk_files: &[
            DiskCheck {
                path: "GROWA.DAT",
                bytes: growio_a,
            },
            DiskCheck {
                path: "GROWB.DAT",
                bytes: growio_b,
            },
        ],
        ..Scenario::stops(
            "proc-growio",
            Initrd::Normal,
            "run=growio",
            Stage::Hello,
            &[
                "PASS grow-seen-by-other-descriptor",
                "PASS grow-seen-by-other-task",
                "PASS grow-append-beside",
                "PASS grow-ftruncate-beside",
                "PASS grow-mapping-sees",
                "PASS grow-few-calls",
                "PASS grow-closed-file-exact",
                "PASS grow-exit-without-close",
                "growio: 0 failures",
                "init: growio exited with status 0",
                "init: done",
            ],
        )
    },
    // The console server (pagers/console): the line discipline driven by typed input,
    // Ctrl-C, bad descriptors, a killed reader, a bounded unfinished line, and a line
    // printed without a newline right before exit (out before power-off).
    Scenario {
        input: CONREAD_INPUT,
        ..Scenario::stops(
            "console-read",
            Initrd::Normal,
            "run=conread",
            Stage::Hello,
            &[
                "conread: read Ok([97, 98, 100, 10])",
                "PASS console-backspace",
                "PASS console-ctrl-u",
                "PASS console-ctrl-d-partial",
                "PASS console-eof",
                "conread: long line read as Ok(464) + Ok(48) bytes",
                "PASS console-long-line",
                "PASS console-ebadf",
                "PASS console-session-foreground",
                "PASS console-foreground-eperm",
                "^C",
                "conread: the looping task: Ok(",
                "PASS console-ctrl-c",
                "console: Ctrl-C could not end task 2: EPERM",
                "PASS console-read-eintr",
                "PASS console-forged",
                "conread: readers while the child waited 1, after its end 0",
                "PASS console-dead-reader",
                "conread: 16 readers waiting, one more: Err(EAGAIN), after their end 0",
                "PASS console-readers-bounded",
                "conread: wrote Ok(2000) bytes without a newline, the server held Ok(464)",
                "PASS console-bounded-line",
                "conread: 0 failures",
                "init: conread exited with status 0",
                "conread: last words",
                "init: done",
            ],
        )
    },
    // The console server stops (test hook) at its third request, a task's line: it ends
    // alone, the task's prints are dropped (`ENODEV`), the task exits, and init still
    // reports and powers off (nothing waits for the dead server: its `TaskExit` and
    // `SyncAll` are answered "gone").
    Scenario::stops(
        "console-stop",
        Initrd::Normal,
        "run=hello console.stop=3 init.deadline=100000",
        Stage::Hello,
        &[
            "hello: hello from task 10",
            "console: test hook: stopping at request 3",
            "init: server console (pid 6) failed (undefined instruction",
            "init: hello exited with status 3",
            "init: done",
        ],
    ),
    // Two tasks print lines in pieces at once; the judge checks that every line is whole.
    Scenario {
        console_check: Some(conlines_whole),
        ..Scenario::stops(
            "console-lines",
            Initrd::Normal,
            "run=conlines",
            Stage::Hello,
            &[
                "PASS conlines-both-printed",
                "conlines: 0 failures",
                "init: conlines exited with status 0",
                "init: done",
            ],
        )
    },
    // The calls that left `srvfuzz`'s volume needing repair, each once, their files left for
    // the volume check after power-off (issue 10, fsck): files cut to nothing by O_TRUNC and
    // ftruncate, growths 3 GiB past the end refused for room at the close.
    Scenario {
        writes_disk: true,
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-fatcut",
            Initrd::Normal,
            "run=fatcut",
            Stage::Hello,
            &[
                "PASS fatcut-o-trunc",
                "PASS fatcut-ftruncate",
                "PASS fatcut-far-write",
                "PASS fatcut-far-ftruncate",
                "PASS fatcut-room-kept",
                "fatcut: 0 failures",
                "init: fatcut exited with status 0",
                "init: done",
            ],
        )
    }, // C programs (issue 12, docs/c.md): a C program compiled against picolibc and the C
    // layer (user/crt) runs from the disk's bin/ with its arguments, prints through stdio
    // and exits with main's result.
    Scenario::stops(
        "c-hello",
        Initrd::Normal,
        "run=c-hello,one,two",
        Stage::Hello,
        &[
            "hello from C: pid ",
            "3 argument(s): c-hello one two",
            "init: c-hello exited with status 0",
            "init: done",
        ],
    ), // The lecture's C programs (issue 12, user/c): the memory-mapped file example as the
    // slide prints it (its path the disk's: it maps bin/hello, an ELF file) prints the ELF
    // magic; the shared-memory example, run by c-shm-check (fork, execv, waitpid), leaves
    // 0..1023 in /shm1 for the checker to read back; the four file I/O styles read big.dat;
    // fork's copy-on-write keeps parent and child apart.
    Scenario::stops(
        "c-mmap",
        Initrd::Normal,
        "run=c-mmap",
        Stage::Hello,
        &[
            "init: running bin/c-mmap on the disk",
            "0x7f 0x45 0x4c 0x46",
            "init: c-mmap exited with status 0",
            "init: done",
        ],
    ),
    Scenario::stops(
        "c-shm",
        Initrd::Normal,
        "run=c-shm-check",
        Stage::Hello,
        &[
            "PASS c-shm-ran",
            "PASS c-shm-size",
            "PASS c-shm-contents",
            "PASS c-shm-exists",
            "PASS c-shm-unlink",
            "PASS c-shm-mapping-outlives-name",
            "PASS c-shm-gone",
            "c-shm-check: 0 failures",
            "init: c-shm-check exited with status 0",
            "init: done",
        ],
    ),
    Scenario::stops(
        "c-fileio",
        Initrd::Normal,
        "run=c-fileio",
        Stage::Hello,
        &[
            "c-fileio: read() 1 KiB at a time: 16777216 bytes in 16384 calls",
            "PASS c-fileio-read",
            "c-fileio: read() with O_DIRECT, 4 KiB at a time: 16777216 bytes in 4096 calls",
            "PASS c-fileio-direct",
            "PASS c-fileio-fgets",
            "PASS c-fileio-mmap",
            "c-fileio: 0 failures",
            "init: c-fileio exited with status 0",
            "init: done",
        ],
    ),
    Scenario::stops(
        "c-fork",
        Initrd::Normal,
        "run=c-fork",
        Stage::Hello,
        &[
            "child:  pid ",
            ", counter 2, heap[0] 'c', local 20",
            "parent: pid ",
            ", counter 1, heap[0] 'p', local 10",
            "PASS c-fork-child-sees-its-writes",
            "PASS c-fork-parent-unchanged",
            "c-fork: 0 failures",
            "init: c-fork exited with status 0",
            "init: done",
        ],
    ), // The C library's conformance test (user/c/c-test.c): each header's calls with their
    // error cases (EBADF, EACCES, EINVAL, ENOMEM, ENOENT, EEXIST, ECHILD, mmap's MAP_FAILED
    // with errno) and wait's statuses (exit, SIGSEGV, SIGBUS, SIGKILL).
    Scenario {
        // It creates and removes files.
        writes_disk: true,
        timeout_secs: 120,
        ..Scenario::stops(
            "c-test",
            Initrd::Normal,
            "run=c-test",
            Stage::Hello,
            &[
                "PASS c-stdio-fopen-write",
                "PASS c-stdio-fgets-fread",
                "PASS c-stdio-fgets-last-line",
                "PASS c-stdio-fread-big",
                "PASS c-stdio-fopen-enoent",
                "PASS c-stdio-snprintf",
                "PASS c-stdlib-malloc",
                "PASS c-stdlib-malloc-enomem",
                "PASS c-string",
                "PASS c-stdlib-atoi",
                "PASS c-open-creat",
                "PASS c-write",
                "PASS c-lseek",
                "PASS c-read",
                "PASS c-read-eof",
                "PASS c-lseek-einval",
                "PASS c-ftruncate",
                "PASS c-ftruncate-zeros",
                "PASS c-ftruncate-shrink",
                "PASS c-ftruncate-einval",
                "PASS c-close",
                "PASS c-ebadf-closed",
                "PASS c-ebadf-forged",
                "PASS c-write-rdonly-ebadf",
                "PASS c-open-eexist",
                "PASS c-open-enoent",
                "PASS c-open-einval",
                "PASS c-open-efault",
                "PASS c-open-trunc",
                "PASS c-open-direct",
                "PASS c-direct-einval",
                "PASS c-unlink",
                "PASS c-unlink-enoent",
                "PASS c-unlink-stdio-file",
                "PASS c-mmap-anon",
                "PASS c-mprotect",
                "PASS c-wait-sigsegv",
                "PASS c-munmap",
                "PASS c-munmap-sigsegv",
                "PASS c-mmap-einval",
                "PASS c-mmap-ebadf",
                "PASS c-mmap-enomem",
                "PASS c-mmap-negative-offset",
                "PASS c-mmap-shared-file",
                "PASS c-msync-einval",
                "PASS c-msync-enomem",
                "PASS c-wait-sigbus",
                "PASS c-mmap-eacces",
                "PASS c-shm-open",
                "PASS c-shm-eexist",
                "PASS c-shm-einval",
                "PASS c-shm-unlink-enoent",
                "PASS c-shm-eacces",
                "PASS c-getpid",
                "PASS c-fork-waitpid",
                "PASS c-waitpid-echild",
                "PASS c-waitpid-einval",
                "PASS c-waitpid-wnohang",
                "PASS c-kill-sigkill",
                "PASS c-execv",
                "PASS c-execv-enoent",
                "PASS c-exit-flushes-fopen",
                "PASS c-pipe",
                "PASS c-fstat-fifo",
                "PASS c-dup2-stdout",
                "c-test: 0 failures",
                "init: c-test exited with status 0",
                "init: done",
            ],
        )
    },
    // Pipes, dup/dup2 and descriptors 0..2 redirected (issue 11): `pipetest`'s checks, among
    // them programs run with 0 or 1 on a pipe or a file (`pipeout.txt`, removed again).
    Scenario {
        writes_disk: true,
        timeout_secs: 120,
        ..Scenario::stops(
            "proc-pipe",
            Initrd::Normal,
            "run=pipetest",
            Stage::Hello,
            &[
                "PASS pipe-big-transfer",
                "PASS pipe-eof-after-writer-exit",
                "PASS pipe-epipe-reader-closed",
                "PASS pipe-epipe-reader-exited",
                "PASS pipe-killed-writer-eof",
                "PASS pipe-dup2-exec-println",
                "PASS pipe-dup2-exec-println-file",
                "pipetest: spawned, on the console",
                "PASS pipe-spawn-has-the-console",
                "pipetest: through a copy of the console",
                "pipetest: back on the console",
                "PASS pipe-dup2-back-to-the-console",
                "PASS pipe-cat-stdin-from-file",
                "PASS pipe-atomic-writes",
                "PASS pipe-dup-shares-position",
                "PASS pipe-many-waiting-readers",
                "PASS pipe-bad-descriptors",
                "PASS pipe-limits",
                "PASS pipe-stalled-atomic-writer",
                "PASS pipe-dup2-failed-keeps-position",
                "PASS pipe-close-then-dup-takes-1",
                "PASS pipe-nothing-left",
                "pipetest: 0 failures",
                "init: pipetest exited with status 0",
                "init: done",
            ],
        )
    },
    // The shell (user/sh) driven by typed lines: `>` into a file read back with `cat`,
    // bad input (an unknown command, a missing file, a line longer than the shell's
    // buffer), Ctrl-C at the prompt and of a looping task (`$?` 130), a background task in
    // `ps` and its `vmmap`, `kill`, `cd`/`pwd` (a program started in `/bin` resolves
    // relative names there), `poweroff`. `shcheck` (user/demos), run from the shell, judges
    // each: one PASS line per check.
    Scenario {
        input: SHELL_INPUT,
        writes_disk: true,
        timeout_secs: 120,
        ..Scenario::stops(
            "shell",
            Initrd::Normal,
            "run=sh",
            Stage::Hello,
            &[
                "sh: type help for the commands",
                "sh:/$ echo hello shell > OUT.TXT",
                "sh:/$ cat OUT.TXT",
                "hello shell",
                "PASS shell-redirect",
                "sh: nosuchcmd: not found",
                "PASS shell-not-found",
                "cat: NOFILE.TXT: ENOENT",
                "PASS shell-missing-file",
                "sh: line too long (300 bytes, at most 255 taken)",
                "PASS shell-long-line",
                "sh:/$ echo still here",
                "still here",
                "loop: running (pid ",
                "PASS shell-ctrl-c",
                "] loop",
                "PASS shell-ps",
                "PASS shell-vmmap",
                "PASS shell-vmmap-regions",
                "] done: loop (killed)",
                "PASS shell-kill",
                "PASS shell-pipe",
                "PASS shell-pipe-redirect",
                "PASS shell-redirect-in",
                "PASS shell-append",
                "PASS shell-append-kept",
                "loop: running (pid ",
                "PASS shell-pipe-ctrl-c",
                "sh: nosuchcmd: not found",
                "PASS shell-pipe-not-found",
                "sh: NOFILE.TXT: ENOENT",
                "PASS shell-redirect-missing",
                "PASS shell-script-status",
                "PASS shell-script",
                "PASS shell-cd",
                "Hello from the disk!",
                "PASS shell-cd-relative",
                "init: power-off asked by pid ",
                "init: sh exited with status 0",
                "init: done",
            ],
        )
    },
    // The lecture from the shell: `tour` (every slide's demo), demos with arguments and in a
    // pipeline, and the built-ins a student uses between them (`stats`, `free`, `time`,
    // `help`, `ls`, `rm`), quoting, a syntax error, `sh -c` and `exit`; Ctrl-D ends the
    // shell (and the session). `shcheck` judges each.
    Scenario {
        input: SHELL_DEMOS_INPUT,
        writes_disk: true,
        disk_files: WRITEBACK_DISK,
        timeout_secs: 240,
        ..Scenario::stops(
            "shell-demos",
            Initrd::Normal,
            "run=sh",
            Stage::Hello,
            &[
                "sh:/$ tour",
                "slide \"Virtual Memory Area\" (vaspace)",
                "==== vaspace: all its checks passed",
                "==== anon: all its checks passed",
                "==== mapping-kinds: all its checks passed",
                "==== mmap-file: all its checks passed",
                "==== writeback: all its checks passed",
                "==== fileio: all its checks passed",
                "==== shm: all its checks passed",
                "==== fork-cow: all its checks passed",
                "tour: 8 demos, 0 failed",
                "PASS shell-tour",
                "65 pages resident",
                "PASS shell-demo-anon",
                "PASS mmap-file-first-bytes",
                "PASS shell-demo-mmap-file",
                "PASS shell-demo-pipe",
                "PASS shell-stats",
                "PASS shell-stats-file",
                "PASS shell-free",
                "time: ",
                " kernel entries",
                "PASS shell-time",
                "PASS shell-help",
                "PASS shell-ls",
                "PASS shell-rm",
                "PASS shell-quotes",
                "sh: syntax error near `|`",
                "PASS shell-syntax",
                "PASS shell-sh-c",
                "init: sh exited with status 0",
                "init: done",
            ],
        )
    },
];

/// What scenario `shell-demos` types, prompt by prompt.
const SHELL_DEMOS_INPUT: &[Input] = &[
    Input {
        after: SH_PROMPT,
        bytes: b"tour\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck eq shell-tour 0 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"anon 128; shcheck eq shell-demo-anon 0 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"mmap-file hello.txt; shcheck eq shell-demo-mmap-file 0 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"fork-cow | shcheck stdin shell-demo-pipe PASS fork-cow-child-checks\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"stats > ST.TXT; shcheck file shell-stats ST.TXT vm: faults, zero-filled,\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck file shell-stats-file ST.TXT cache: hits,\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"free > FR.TXT; shcheck file shell-free FR.TXT ram 524288\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"time loop 3 > T.TXT; shcheck file shell-time T.TXT loop: line 2\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"help | shcheck stdin shell-help vmmap\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"ls /bin > LS.TXT; shcheck file shell-ls LS.TXT sh\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"echo x > RM.TXT; rm RM.TXT; cat RM.TXT; shcheck eq shell-rm 1 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"echo 'a|b' \"c;d\" \\# > Q.TXT; shcheck file shell-quotes Q.TXT 'a|b' 'c;d' '#'\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"echo a | | wc\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck eq shell-syntax 2 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"sh -c 'echo inner; exit 7'; shcheck eq shell-sh-c 7 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"\x04",
    },
];

/// The shell's prompt at the root.
const SH_PROMPT: &str = "sh:/$ ";

/// What scenario `shell` types, prompt by prompt.
const SHELL_INPUT: &[Input] = &[
    Input {
        after: SH_PROMPT,
        bytes: b"echo hello shell > OUT.TXT\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"cat OUT.TXT\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck file shell-redirect OUT.TXT hello shell\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"nosuchcmd\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck eq shell-not-found 127 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"cat NOFILE.TXT\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck eq shell-missing-file 1 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: &SHELL_LONG_LINE,
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck eq shell-long-line 2 $?\r",
    },
    // Ctrl-C at the prompt: a new prompt, the shell goes on.
    Input {
        after: SH_PROMPT,
        bytes: b"\x03",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"echo still here\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"loop\r",
    },
    Input {
        after: "loop: running",
        bytes: b"\x03",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck eq shell-ctrl-c 130 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"loop &\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"ps > PS.TXT\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck file shell-ps PS.TXT $! $$ running loop\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"vmmap $! > VM.TXT\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck file shell-vmmap VM.TXT vmmap $! loop:\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck file shell-vmmap-regions VM.TXT r-xp file\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"kill $!\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck eq shell-kill 0 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"echo one two three | wc | shcheck stdin shell-pipe 1 3 14\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"loop 3 | wc > WC.TXT\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck file shell-pipe-redirect WC.TXT 3 9 39\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"wc < hello.txt > HW.TXT; shcheck file shell-redirect-in HW.TXT 4 40 238\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"echo more >> OUT.TXT; shcheck file shell-append OUT.TXT more\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck file shell-append-kept OUT.TXT hello shell\r",
    },
    // Ctrl-C ends a whole pipeline: `loop` (the foreground task) and `wc` after it.
    Input {
        after: SH_PROMPT,
        bytes: b"loop | wc\r",
    },
    Input {
        after: "loop: running",
        bytes: b"\x03",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck eq shell-pipe-ctrl-c 130 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"echo x | nosuchcmd; shcheck eq shell-pipe-not-found 127 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"wc < NOFILE.TXT; shcheck eq shell-redirect-missing 1 $?\r",
    },
    // A script: `sh` reads lines from a file (no prompt), each pipeline in turn.
    Input {
        after: SH_PROMPT,
        bytes: b"echo 'echo one; echo two' > S.TXT; echo 'loop 2 | wc' >> S.TXT\r",
    },
    Input {
        after: SH_PROMPT,
        bytes:
            b"echo 'exit 3' >> S.TXT; sh < S.TXT > SO.TXT; shcheck eq shell-script-status 3 $?\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"shcheck file shell-script SO.TXT 2 6 26\r",
    },
    Input {
        after: SH_PROMPT,
        bytes: b"cd bin\r",
    },
    Input {
        after: "sh:/bin$ ",
        bytes: b"pwd > PWD.TXT\r",
    },
    Input {
        after: "sh:/bin$ ",
        bytes: b"shcheck file shell-cd PWD.TXT /bin\r",
    },
    Input {
        after: "sh:/bin$ ",
        bytes: b"cat ../hello.txt\r",
    },
    Input {
        after: "sh:/bin$ ",
        bytes: b"shcheck file shell-cd-relative ../hello.txt Hello from the disk!\r",
    },
    Input {
        after: "sh:/bin$ ",
        bytes: b"poweroff\r",
    },
];

/// 300 `x` and Enter: longer than the shell takes (`sh::shell::LINE_MAX`, 256 bytes with
/// the newline), shorter than the console's line.
const SHELL_LONG_LINE: [u8; 301] = {
    let mut line = [b'x'; 301];
    line[300] = b'\r';
    line
};

/// What scenario `console-read` types, prompt by prompt (`user/demos conread`).
const CONREAD_INPUT: &[Input] = &[
    Input {
        after: "conread: type abx, backspace, d, Enter",
        bytes: b"abx\x7fd\r",
    },
    Input {
        after: "conread: type junk, Ctrl-U, ok, Enter",
        bytes: b"junk\x15ok\r",
    },
    Input {
        after: "conread: type abc, Ctrl-D",
        bytes: b"abc\x04",
    },
    Input {
        after: "conread: type Ctrl-D on an empty line",
        bytes: b"\x04",
    },
    Input {
        after: "conread: type a line of 600 x",
        bytes: &LONG_LINE,
    },
    Input {
        after: "conread: type Ctrl-C to end the looping task",
        bytes: b"\x03",
    },
    Input {
        after: "conread: type Ctrl-C during the child's read (1 waiting)",
        bytes: b"\x03",
    },
    Input {
        after: "conread: type still, Enter",
        bytes: b"still\r",
    },
];

/// 600 `x` and Enter: longer than the console keeps of a line (`proto::console::LINE_MAX`).
const LONG_LINE: [u8; 601] = {
    let mut line = [b'x'; 601];
    line[600] = b'\r';
    line
};

/// `console-lines`: every line of `conlines`' two tasks is whole (`conlines: task T line
/// NNN` and 40 times `T`), and each task's lines are all there, in order.
fn conlines_whole(lines: &[&str]) -> Check {
    const LINES: usize = 150;
    let mut next = [0usize; 2];
    for line in lines.iter().filter(|l| l.contains("conlines: task")) {
        let parsed = line
            .strip_prefix("conlines: task ")
            .and_then(|rest| rest.split_once(" line "))
            .and_then(|(tag, rest)| Some((tag, rest.split_once(' ')?)));
        let Some((tag, (n, fill))) = parsed else {
            return Check::fail(format!("console-lines: a mixed line: {line:?}"));
        };
        let i = match tag {
            "A" => 0,
            "B" => 1,
            _ => return Check::fail(format!("console-lines: a mixed line: {line:?}")),
        };
        if n.parse::<usize>().ok() != Some(next[i]) || *fill != tag.repeat(40) {
            return Check::fail(format!("console-lines: a mixed or missing line: {line:?}"));
        }
        next[i] += 1;
    }
    if next == [LINES; 2] {
        Check::ok(format!(
            "console-lines: {} lines of two tasks, each whole",
            2 * LINES
        ))
    } else {
        Check::fail(format!("console-lines: lines of each task found: {next:?}"))
    }
}

/// `fatcrash`'s file `i` (as `fatcrash::bytes_of` makes it).
fn fatcrash_bytes(i: usize) -> Vec<u8> {
    (0..3 * 4096 + 100 + i)
        .map(|j| (j * 31 + i * 7) as u8 ^ (j >> 8) as u8)
        .collect()
}

fn fatcrash_0() -> Vec<u8> {
    fatcrash_bytes(0)
}

fn fatcrash_200() -> Vec<u8> {
    fatcrash_bytes(200)
}

/// `growio`'s pattern (`demos::growio::byte`): `pieces` KiB and `tail` bytes of `seed`.
fn growio_bytes(seed: u8, pieces: usize, tail: usize) -> Vec<u8> {
    (0..pieces * 1024 + tail)
        .map(|i| ((i as u64).wrapping_mul(0x9e37_79b9) >> 7) as u8 ^ seed)
        .collect()
}

/// `growio`'s `GROWA.DAT` (closed) and `GROWB.DAT` (left open by its exiting writer).
fn growio_a() -> Vec<u8> {
    growio_bytes(0x5a, 100, 300)
}
fn growio_b() -> Vec<u8> {
    growio_bytes(0xb3, 70, 17)
}

/// `proc-dirtest`'s disk: a long name written by `fatfs`, and 1 MiB left free.
fn dirtest_disk(image: &std::path::Path) -> std::io::Result<()> {
    crate::disk::prep::add_and_fill(
        image,
        &[(
            "Host wrote this long name.txt",
            b"written on the host by fatfs\n",
        )],
        1 << 20,
    )
}

/// What `dirtest` leaves (as `demos::dirtest` has it).
fn dirtest_long() -> Vec<u8> {
    b"a file with a long name, written by the system\n".to_vec()
}

fn dirtest_moved() -> Vec<u8> {
    (0..700usize).map(|i| (i * 7 % 253) as u8).collect()
}

fn dirtest_inside() -> Vec<u8> {
    b"inside a renamed directory\n".to_vec()
}

fn dirtest_entry_39() -> Vec<u8> {
    vec![b'e'; 39]
}

fn dirtest_renamed_open() -> Vec<u8> {
    b"before after".to_vec()
}

/// `demos::dirtest::DEEP_FILE`: a path of 255 bytes.
const DIRTEST_DEEP_FILE: &str = "Dir Test/Deep directory ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/a file with a long name fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff.txt";

fn dirtest_deep() -> Vec<u8> {
    b"a file at the end of a path of 255 bytes\n".to_vec()
}

/// `proc-file-async-eio`'s disk: `AIOERR.DAT` (three 64 KiB blocks, byte `i` = `i * 7 %
/// 253`, as `fileasync` checks), the first read of its second block failing once.
fn file_async_eio_disk(image: &std::path::Path) -> std::io::Result<()> {
    let bytes: Vec<u8> = (0..3 * 65536u64).map(|i| (i * 7 % 253) as u8).collect();
    crate::disk::prep::add_with_read_error(image, "AIOERR.DAT", &bytes, 65536)
}

/// `soak`'s and `soak-long`'s `SOAK.DAT` after `rounds` rounds: every word `w` its owner's
/// last value, as `demos::soak::final_word` makes it (4 workers, 4 blocks, 4 writes of each
/// word a round).
fn soak_file(rounds: u64) -> Vec<u8> {
    const WORKERS: u64 = 4;
    const PASSES: u64 = 4;
    let word = |w: u64| (0x50ac << 48) | ((w % WORKERS) << 44) | ((rounds * PASSES) << 24) | w;
    (0..4 * 65536 / 8u64)
        .flat_map(|w| word(w).to_le_bytes())
        .collect()
}

/// `demos::soak::ROUNDS` and `LONG_ROUNDS`.
const SOAK_ROUNDS: u64 = 40;
const SOAK_LONG_ROUNDS: u64 = 10 * SOAK_ROUNDS;

/// A program as the build made it (`target/aarch64-unknown-none/release/<name>`): what its
/// file on the disk must still hold after the soak (nothing if it cannot be read, which
/// fails the check).
fn built_program(name: &str) -> Vec<u8> {
    std::fs::read(crate::images::Paths::discover().user_elf(name)).unwrap_or_default()
}

fn soak_exec_program() -> Vec<u8> {
    built_program("soak-exec")
}

fn soak_program() -> Vec<u8> {
    built_program("soak")
}

fn soak_long_program() -> Vec<u8> {
    built_program("soak-long")
}

/// `big.dat`, which the soak maps privately and writes: unchanged.
fn big_file() -> Vec<u8> {
    crate::disk::big_file_bytes(crate::disk::BIG_FILE_BYTES)
}

fn soak_short_file() -> Vec<u8> {
    soak_file(SOAK_ROUNDS)
}

fn soak_long_file() -> Vec<u8> {
    soak_file(SOAK_LONG_ROUNDS)
}

/// What the soak program `$prog` prints when every check holds, with a page cache of
/// `$cache` blocks: the same lines, in order, for `soak`, `soak-ahead` and `soak-long`.
macro_rules! soak_lines {
    ($cache:literal, $prog:literal) => {
        &[
            concat!("page cache of ", $cache, " blocks"),
            concat!($prog, ": 4 workers, "),
            "PASS soak-w0-exec",
            "PASS soak-w0-private-read",
            "PASS soak-w0-shared-read",
            "PASS soak-w0-private-write",
            "PASS soak-w0-cow",
            "PASS soak-w0-shared-write",
            "PASS soak-w0-file-churn",
            "PASS soak-w1-exec",
            "PASS soak-w1-private-read",
            "PASS soak-w1-shared-read",
            "PASS soak-w1-private-write",
            "PASS soak-w1-cow",
            "PASS soak-w1-shared-write",
            "PASS soak-w1-file-churn",
            "PASS soak-w2-exec",
            "PASS soak-w2-private-read",
            "PASS soak-w2-shared-read",
            "PASS soak-w2-private-write",
            "PASS soak-w2-cow",
            "PASS soak-w2-shared-write",
            "PASS soak-w2-file-churn",
            "PASS soak-w3-exec",
            "PASS soak-w3-private-read",
            "PASS soak-w3-shared-read",
            "PASS soak-w3-private-write",
            "PASS soak-w3-cow",
            "PASS soak-w3-shared-write",
            "PASS soak-w3-file-churn",
            "PASS soak-final-pread",
            "PASS soak-final-mmap",
            concat!($prog, ": file server: "),
            "PASS soak-evicted",
            "PASS soak-vm-copied",
            concat!($prog, ": 0 failures"),
            concat!("init: ", $prog, " exited with status 0"),
            "init: done",
        ]
    };
}

const SOAK_LINES: &[&str] = soak_lines!(2, "soak");
const SOAK_AHEAD_LINES: &[&str] = soak_lines!(4, "soak");
const SOAK_LONG_LINES: &[&str] = soak_lines!(2, "soak-long");

/// The soak (issue 9): four workers exec programs from the disk, fork, and map `big.dat`
/// and a file they all write privately and shared, through a page cache of two blocks,
/// checking every byte they read (`user/demos/src/soak.rs`). `SOAK.DAT`, `big.dat` and the
/// program files host-checked.
const SOAK: Scenario = Scenario {
    writes_disk: true,
    disk_files: &[
        DiskCheck {
            path: "SOAK.DAT",
            bytes: soak_short_file,
        },
        DiskCheck {
            path: "big.dat",
            bytes: big_file,
        },
        DiskCheck {
            path: "bin/soak-exec",
            bytes: soak_exec_program,
        },
        DiskCheck {
            path: "bin/soak",
            bytes: soak_program,
        },
    ],
    timeout_secs: 240,
    ..Scenario::stops(
        "soak",
        Initrd::Normal,
        "run=soak file.cache=2",
        Stage::Hello,
        SOAK_LINES,
    )
};

/// `soak` with a page cache of four blocks: the file server reads ahead (it does not below
/// four), so read-ahead blocks are filled and evicted under the workers too.
const SOAK_AHEAD: Scenario = Scenario {
    name: "soak-ahead",
    bootargs: "run=soak file.cache=4",
    ends: Ends::Stops {
        after: Stage::Hello,
        lines: SOAK_AHEAD_LINES,
    },
    ..SOAK
};

/// `soak` with ten times the rounds: not part of `make test` (`make test TEST=soak-long`).
const SOAK_LONG: Scenario = Scenario {
    writes_disk: true,
    disk_files: &[
        DiskCheck {
            path: "SOAK.DAT",
            bytes: soak_long_file,
        },
        DiskCheck {
            path: "big.dat",
            bytes: big_file,
        },
        DiskCheck {
            path: "bin/soak-exec",
            bytes: soak_exec_program,
        },
        DiskCheck {
            path: "bin/soak-long",
            bytes: soak_long_program,
        },
    ],
    timeout_secs: 3600,
    ..Scenario::stops(
        "soak-long",
        Initrd::Normal,
        "run=soak-long file.cache=2",
        Stage::Hello,
        SOAK_LONG_LINES,
    )
};

/// Scenarios run only when asked for by name (`TEST=<name>`): too long for every `make test`.
pub const OPT_IN_SCENARIOS: &[Scenario] = &[SOAK_LONG];

/// `fragtest`'s `FRAG.DAT` as the tools put it on the disk: `demos::fragtest::orig`'s bytes,
/// the clusters scattered.
fn fragtest_disk(image: &std::path::Path) -> std::io::Result<()> {
    let bytes: Vec<u8> = (0..5 * 65536 + 1000u64)
        .map(|i| ((i * 13) ^ (i >> 9) ^ 0x6b) as u8)
        .collect();
    crate::disk::prep::fragmented(image, "FRAG.DAT", &bytes)
}

/// `FRAG.DAT` after `fragtest`: the same bytes as `demos::fragtest::after` makes.
fn fragtest_file() -> Vec<u8> {
    const ORIG: u64 = 5 * 65536 + 1000;
    let written = |i: u64| ((i * 3) ^ (i >> 7) ^ 0x1e) as u8;
    (0..8 * 65536 + 3000u64)
        .map(|i| {
            if i >= ORIG || (65536 - 100..65536 - 100 + 5000).contains(&i) {
                written(i)
            } else if (100..116).contains(&(i % 4096)) {
                ((i * 5) ^ 0xc3) as u8
            } else {
                ((i * 13) ^ (i >> 9) ^ 0x6b) as u8
            }
        })
        .collect()
}

/// `proc-fatattack`'s disk: a second long-named file, and a filler that leaves 128 KiB free.
fn fatattack_disk(image: &std::path::Path) -> std::io::Result<()> {
    crate::disk::prep::add_and_fill(
        image,
        &[("second-long-name.txt", &[0x42; 10_000])],
        128 << 10,
    )
}

/// `attack-review2`'s `TRUNCF.DAT`: four 64 KiB blocks, byte `i` = `i * 13 % 251`.
fn truncf_bytes() -> Vec<u8> {
    (0..4 * 65536u64).map(|i| (i * 13 % 251) as u8).collect()
}

/// `attack-review2`'s disk: `TRUNCF.DAT`, and the read of its second block failing once.
fn attack_review2_disk(image: &std::path::Path) -> std::io::Result<()> {
    crate::disk::prep::add_with_read_error(image, "TRUNCF.DAT", &truncf_bytes(), 65536)
}

/// `attack-handles`' `HSECRET.DAT`: one page of words `0x5ec2_e7f1_0000_0000 + i`, which
/// no attack may change.
fn attack_handles_secret() -> Vec<u8> {
    (0..4096 / 8u64)
        .flat_map(|i| (0x5ec2_e7f1_0000_0000u64 + i).to_le_bytes())
        .collect()
}

/// The scenario `name`, of [`SCENARIOS`] or [`OPT_IN_SCENARIOS`].
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS
        .iter()
        .chain(OPT_IN_SCENARIOS)
        .find(|scenario| scenario.name == name)
}

/// A benchmark: a boot under the deterministic QEMU command whose init prints `BENCH` lines.
#[derive(Debug, Clone, Copy)]
pub struct Bench {
    pub name: &'static str,
    pub bootargs: &'static str,
    pub timeout_secs: u64,
}

/// The machine every benchmark runs on (docs/design.md §7; the Linux reference figures used it).
pub const BENCH_MACHINE: Machine = Machine {
    cpu: CORTEX_A72,
    mem: Mem::gib(1),
    smp: 1,
    gic: Gic::V2,
    el2: false,
};

/// Every benchmark, run in this order.
pub const BENCHES: &[Bench] = &[
    Bench {
        name: "boot",
        bootargs: "bench=boot",
        timeout_secs: 120,
    },
    Bench {
        name: "kernel",
        bootargs: "bench=kernel",
        timeout_secs: 120,
    },
    // The paging benchmarks: user/demos vmbench under init's process server.
    Bench {
        name: "pagers",
        bootargs: "run=vmbench",
        timeout_secs: 300,
    },
    // The file and shm benchmarks: user/demos filebench (a page cache of 512 blocks, so that
    // all of big.dat stays cached whatever else the system reads).
    Bench {
        name: "files",
        bootargs: "run=filebench file.cache=512",
        timeout_secs: 600,
    },
    // Anonymous fault latency alone and beside a task streaming big.dat cold through a page
    // cache of 4 blocks: user/demos latbench (issue 9).
    Bench {
        name: "latency",
        bootargs: "run=latbench file.cache=4",
        timeout_secs: 300,
    },
    // vm at scale: mmap, fault and munmap as the region count grows to 32,000, and fork's
    // cost per region: user/demos regionbench (issue 13).
    Bench {
        name: "regions",
        bootargs: "run=regionbench",
        timeout_secs: 900,
    }, // The fileio comparison as a C program (issue 12, docs/c.md): user/c/c-filebench, the
    // `files` figures' read and write ways through picolibc and the C layer.
    Bench {
        name: "cfiles",
        bootargs: "run=c-filebench file.cache=512",
        timeout_secs: 600,
    },
];

pub fn find_bench(name: &str) -> Option<&'static Bench> {
    BENCHES.iter().find(|bench| bench.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique() {
        let all = || SCENARIOS.iter().chain(OPT_IN_SCENARIOS);
        let names: HashSet<&str> = all().map(|s| s.name).collect();
        assert_eq!(names.len(), all().count());
        let benches: HashSet<&str> = BENCHES.iter().map(|b| b.name).collect();
        assert_eq!(benches.len(), BENCHES.len());
    }

    #[test]
    fn follow_ups_share_a_writable_disk() {
        for scenario in SCENARIOS.iter().chain(OPT_IN_SCENARIOS) {
            if let Some(next) = scenario.then {
                assert!(
                    scenario.writes_disk && next.writes_disk,
                    "{}",
                    scenario.name
                );
                assert!(find(next.name).is_none(), "{}", next.name);
            }
            if !scenario.disk_files.is_empty() || scenario.disk_prep.is_some() {
                assert!(scenario.writes_disk, "{}", scenario.name);
            }
        }
        assert!(find("proc-writeback").unwrap().then.is_some());
    }

    #[test]
    fn normal_boot_expects_the_whole_banner() {
        let boot = find("boot").unwrap().expectation(Some(1234));
        assert_eq!(
            boot.lines,
            [
                concat!("microkernel ", env!("CARGO_PKG_VERSION"), " booting"),
                "cpu: Cortex-A53 (MIDR 0x",
                "entered at EL1",
                "cpus: 1 in device tree",
                "ram: 512 MiB in ",
                "initrd: 1234 bytes at 0x",
                "gic: v2",
                "bootargs: \"test=boot\"",
                "ktest: hello from user space",
                "ktest: done",
                "system off",
            ]
        );
        assert_eq!(boot.min_pass, 3);
        // A scenario under init says init's name.
        let hello = find("proc-hello").unwrap().expectation(Some(1234));
        assert!(
            hello
                .lines
                .iter()
                .any(|l| l == "init: hello from user space")
        );
    }

    #[test]
    fn expectations_follow_the_machine() {
        let has = |name: &str, line: &str| {
            find(name)
                .unwrap()
                .expectation(Some(1))
                .lines
                .iter()
                .any(|l| l == line)
        };
        assert!(has("cpu-max", "cpu: QEMU max (MIDR 0x"));
        assert!(has("mem-2g", "ram: 2048 MiB in "));
        assert!(has("mem-128m", "ram: 128 MiB in "));
        assert!(has("el2", "entered at EL2, dropped to EL1"));
        assert!(has("gicv3", "gic: v3"));
        assert!(has("smp4", "cpus: 4 in device tree"));
        assert!(has("el2-gicv3", "gic: v3") && has("el2-gicv3", "entered at EL2, dropped to EL1"));
    }

    #[test]
    fn fatal_scenarios_stop_early() {
        let missing = find("initrd-missing").unwrap().expectation(None);
        assert_eq!(missing.min_pass, 0);
        assert_eq!(
            &missing.lines[missing.lines.len() - 3..],
            ["ram: 512 MiB in ", "FATAL: no initrd", "system off"]
        );
        let fault = find("kernel-fault").unwrap().expectation(Some(1));
        assert!(!fault.lines.iter().any(|l| l.starts_with("init:")));
        assert!(
            fault
                .lines
                .contains(&"bootargs: \"kernel.selftest=data-abort\"".to_string())
        );
    }
}
