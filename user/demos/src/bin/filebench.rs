//! The file and shared-memory benchmarks (`bench=files` boots `run=filebench`): faults on a
//! private mapping of `big.dat` (16 MiB on the disk, every 8-byte word holding its own
//! offset) the first time (blocks read from the disk) and with the page cache warm, first
//! touches of a 16 MiB shm object, and reading the whole of `big.dat` four ways: `read()`
//! with a 1 KiB buffer, `O_DIRECT` 4 KiB at a time, a stdio-style `fgets` reader, and `mmap`
//! reading every word.
//!
//! One line per figure, `BENCH <name> <value> instructions kernel_entries=E
//! address_space_switches=S cycles=C ...`. The value counts **instructions retired** (PMU
//! event counter 0, `libmk::instructions_retired`), not the cycle counter: under QEMU
//! `-icount` the cycle counter follows the virtual clock, which jumps to the next timer tick
//! (about 10 M) whenever every CPU idles waiting for the disk. For CPU-only work the two are
//! equal (`cycles=` shows the cycle counter's figure for comparison). Kernel entries and
//! address-space switches are `DebugCounters` deltas over the same window; a round trip to a
//! server costs two of each (the fault or `Call`, and the server's reply), so
//! `address_space_switches / 2` is the number of round trips. `vm_faults` counts the faults
//! vm served (one per 64 KiB block when a block is mapped at once), `calls` the library calls
//! (`read`, `fgets`) per unit. Per-page figures divide one 16 MiB pass by its 4,096 pages,
//! per-MiB figures one pass over the file by 16.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use core::fmt;
use core::ptr::{read_volatile, write_volatile};
use rt::{
    MAP_PRIVATE, MAP_SHARED, O_CREAT, O_DIRECT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ,
    PROT_WRITE, VmStats, println,
};

use demos::Ratio;

rt::entry!(main);

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;
/// `big.dat`'s size.
const FILE_BYTES: u64 = 16 * MIB;
const FILE: &str = "big.dat";
/// Warm passes of the fault benchmarks (the median is reported).
const REPS: usize = 5;

/// One measured window.
#[derive(Clone, Copy, Default)]
struct Sample {
    instructions: u64,
    cycles: u64,
    entries: u64,
    switches: u64,
    faults: u64,
}

/// Counters at the start of a window.
struct Start {
    instructions: u64,
    cycles: u64,
    entries: u64,
    switches: u64,
}

#[inline(always)]
fn start() -> Start {
    let (entries, switches) = libmk::debug_counters();
    Start {
        cycles: libmk::cycle_counter(),
        instructions: libmk::instructions_retired(),
        entries,
        switches,
    }
}

#[inline(always)]
fn stop(s: &Start) -> Sample {
    let instructions = libmk::instructions_retired();
    let cycles = libmk::cycle_counter();
    let (entries, switches) = libmk::debug_counters();
    Sample {
        instructions: libmk::instructions_between(s.instructions, instructions),
        cycles: cycles - s.cycles,
        // The second `DebugCounters` call is one of the entries counted.
        entries: entries - s.entries - 1,
        switches: switches - s.switches,
        faults: 0,
    }
}

fn vm_faults() -> u64 {
    rt::vm_stats().map_or(0, |s: VmStats| s.faults)
}

/// Runs `op`, with vm's fault counter read around the window `op` measures.
fn with_faults(op: impl FnOnce() -> Sample) -> Sample {
    let before = vm_faults();
    let mut s = op();
    s.faults = vm_faults() - before;
    s
}

/// The sample with the median instruction count.
fn median(samples: &mut [Sample]) -> Sample {
    demos::median_by(samples, |s| s.instructions)
}

/// Prints one figure: sample `m` divided by `per` operations.
fn report(name: &str, m: Sample, per: u64, extra: fmt::Arguments<'_>) {
    println!(
        "BENCH {name} {} instructions kernel_entries={} address_space_switches={} cycles={} vm_faults={}{}",
        Ratio(m.instructions, per),
        Ratio(m.entries, per),
        Ratio(m.switches, per),
        Ratio(m.cycles, per),
        Ratio(m.faults, per),
        extra
    );
}

fn fail(what: &str) -> ! {
    println!("FAIL filebench: {what}");
    rt::exit(1)
}

/// Reads one byte of every page of [`base`, `base + len`).
#[inline(always)]
fn touch_read(base: u64, len: u64) -> u8 {
    let mut a = base;
    let mut x = 0;
    while a < base + len {
        // SAFETY: [base, base + len) is a readable mapping of this task that no Rust
        // reference covers.
        x ^= unsafe { read_volatile(a as *const u8) };
        a += PAGE;
    }
    x
}

/// Writes one byte to every page of [`base`, `base + len`).
#[inline(always)]
fn touch_write(base: u64, len: u64) {
    let mut a = base;
    while a < base + len {
        // SAFETY: [base, base + len) is a read-write mapping of this task that no Rust
        // reference covers.
        unsafe { write_volatile(a as *mut u8, 1) };
        a += PAGE;
    }
}

/// The byte `big.dat` holds at `offset`.
fn big_byte(offset: u64) -> u8 {
    ((offset & !7) >> (8 * (offset & 7))) as u8
}

fn open(flags: u64) -> u64 {
    match rt::open_sized(FILE, flags) {
        Ok((fd, FILE_BYTES)) => fd,
        Ok(_) => fail("big.dat is not 16 MiB"),
        Err(e) => fail(&alloc::format!("open big.dat: {e:?}")),
    }
}

/// A private read-only mapping of the whole of `big.dat`.
fn map_file(fd: u64) -> u64 {
    rt::mmap(0, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0)
        .unwrap_or_else(|e| fail(&alloc::format!("mmap big.dat: {e:?}")))
}

/// Set at build time (`FILEBENCH_ONLY=fileio_read cargo xtask build`) to run one benchmark
/// alone, twice (the first run fills the cache), e.g. for a profile: the whole-file reads
/// then stop after [`READ_BYTES`].
const ONLY: Option<&str> = option_env!("FILEBENCH_ONLY");
/// How much of the file the `fileio_*` figures read.
const READ_BYTES: u64 = if ONLY.is_some() { MIB } else { FILE_BYTES };
fn main() -> i32 {
    // First, while nothing of big.dat is cached: every block comes from the disk.
    if ONLY.is_none() || ONLY == Some("cold") {
        file_fault_cold();
    }
    if ONLY == Some("cold") {
        return 0;
    }
    // The writes last: their new files take page-cache blocks big.dat's reads use.
    let benches: [(&str, fn()); 11] = [
        ("file_fault", file_fault),
        ("shm_first_touch", shm_first_touch),
        ("fileio_read", fileio_read),
        ("fileio_read4k", fileio_read4k),
        ("fileio_direct", fileio_direct),
        ("fileio_fgets", fileio_fgets),
        ("fileio_mmap", fileio_mmap),
        ("fileio_write", fileio_write),
        ("fileio_write4k", fileio_write4k),
        ("fileio_mmap_write", fileio_mmap_write),
        ("fileio_direct_write", fileio_direct_write),
    ];
    for (name, bench) in benches {
        match ONLY {
            None => bench(),
            // Twice: the first run brings what it reads into the cache.
            Some(only) if only == name => {
                bench();
                bench();
            }
            Some(_) => {}
        }
    }
    0
}

/// One byte per page of a private read-only mapping of `big.dat`, the first time the
/// system reads it: every 64 KiB block is read from the disk (one request per block, the
/// next block read ahead). Also `disk_requests_per_64k_block`: the file server's virtio
/// requests over the pass per block it read (`FileStats`), with the blocks read and those
/// read ahead (read without a miss asking for them).
fn file_fault_cold() {
    let fd = open(O_RDONLY);
    let a = map_file(fd);
    let before = rt::file_stats().unwrap_or_default();
    let s = with_faults(|| {
        let w = start();
        let x = touch_read(a, FILE_BYTES);
        let s = stop(&w);
        core::hint::black_box(x);
        s
    });
    let after = rt::file_stats().unwrap_or_default();
    check_mapping(a);
    let _ = rt::munmap(a, FILE_BYTES);
    let _ = rt::close(fd);
    let blocks = after.blocks_read - before.blocks_read;
    // Every miss of the pass reads its block (all of them hold file data): the other blocks
    // read were read ahead.
    let ahead = blocks.saturating_sub(after.misses - before.misses);
    report(
        "file_fault_cold_per_page",
        s,
        FILE_BYTES / PAGE,
        format_args!(" counter=instructions_retired read_ahead_blocks={ahead}"),
    );
    if blocks == 0 {
        fail("the cold pass read no block from the disk");
    }
    println!(
        "BENCH disk_requests_per_64k_block {} requests blocks_read={blocks} read_ahead={ahead}",
        Ratio(after.disk_requests - before.disk_requests, blocks)
    );
}

/// A few words of a mapping of `big.dat` against the pattern.
fn check_mapping(a: u64) {
    for off in [0, 8, 4096, 65536 + 8, FILE_BYTES / 2, FILE_BYTES - 8] {
        // SAFETY: [a, a + FILE_BYTES) is a readable mapping of this task.
        let w = unsafe { read_volatile((a + off) as *const u64) };
        if w != off {
            fail("big.dat through mmap does not hold its pattern");
        }
    }
}

/// One byte per page of a fresh private read-only mapping of `big.dat`, the page cache
/// warm, `REPS` times.
fn file_fault() {
    let fd = open(O_RDONLY);
    let mut samples = [Sample::default(); REPS];
    for s in &mut samples {
        let a = map_file(fd);
        *s = with_faults(|| {
            let w = start();
            let x = touch_read(a, FILE_BYTES);
            let s = stop(&w);
            core::hint::black_box(x);
            s
        });
        check_mapping(a);
        let _ = rt::munmap(a, FILE_BYTES);
    }
    let _ = rt::close(fd);
    report(
        "file_fault_per_page",
        median(&mut samples),
        FILE_BYTES / PAGE,
        format_args!(""),
    );
}

/// `shm_open`, `ftruncate` to 16 MiB, `mmap(MAP_SHARED)`, one byte written per page (the
/// window), then `munmap`, `close`, `shm_unlink`; `REPS` times. The figure is the first
/// pass, whose block frames are new (the kernel zeroes each at retype, inside the window);
/// later passes get frames the server cleared when the previous object went (outside the
/// window): `reused=` reports their median.
fn shm_first_touch() {
    let mut samples = [Sample::default(); REPS];
    for s in &mut samples {
        let fd = rt::shm_open("/bench", O_CREAT | O_EXCL | O_RDWR, 0o600)
            .unwrap_or_else(|e| fail(&alloc::format!("shm_open: {e:?}")));
        if let Err(e) = rt::ftruncate(fd, FILE_BYTES) {
            fail(&alloc::format!("ftruncate: {e:?}"));
        }
        let a = rt::mmap(0, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            .unwrap_or_else(|e| fail(&alloc::format!("mmap shm: {e:?}")));
        *s = with_faults(|| {
            let w = start();
            touch_write(a, FILE_BYTES);
            stop(&w)
        });
        let _ = rt::munmap(a, FILE_BYTES);
        let _ = rt::close(fd);
        let _ = rt::shm_unlink("/bench");
    }
    let first = samples[0];
    let reused = median(&mut samples[1..]);
    report(
        "shm_first_touch_per_page",
        first,
        FILE_BYTES / PAGE,
        format_args!(
            " reused={} reused_kernel_entries={}",
            Ratio(reused.instructions, FILE_BYTES / PAGE),
            Ratio(reused.entries, FILE_BYTES / PAGE)
        ),
    );
}

/// Reports a whole-file read: `calls` library calls over the window.
fn report_read(name: &str, s: Sample, bytes: u64, calls: u64, extra: fmt::Arguments<'_>) {
    if bytes != READ_BYTES {
        fail(&alloc::format!(
            "{name}: read {bytes} bytes, not {READ_BYTES}"
        ));
    }
    report(
        name,
        s,
        READ_BYTES / MIB,
        format_args!(" calls={}{extra}", Ratio(calls, READ_BYTES / MIB)),
    );
}

/// Calls `next` (one library call; the bytes it read) until the file ends or `READ_BYTES`
/// are read, inside one measured window: the sample, the bytes and the calls.
fn measure_reads(mut next: impl FnMut() -> usize) -> (Sample, u64, u64) {
    let (mut bytes, mut calls) = (0u64, 0u64);
    let s = with_faults(|| {
        let w = start();
        loop {
            let n = next();
            calls += 1;
            bytes += n as u64;
            if n == 0 || bytes >= READ_BYTES {
                break;
            }
        }
        stop(&w)
    });
    (s, bytes, calls)
}

/// `read()` of the whole file into a 1 KiB buffer, the page cache warm.
fn fileio_read() {
    let fd = open(O_RDONLY);
    let mut buf = [0u8; 1024];
    let (s, bytes, calls) =
        measure_reads(|| rt::read(fd, &mut buf).unwrap_or_else(|_| fail("read")));
    let _ = rt::close(fd);
    if buf[8] != big_byte(READ_BYTES - 1024 + 8) {
        fail("read: wrong bytes");
    }
    report_read(
        "fileio_read_per_mib",
        s,
        bytes,
        calls,
        format_args!(" buffer=1024"),
    );
}

/// `read()` of the whole file into a 4 KiB buffer, the page cache warm.
fn fileio_read4k() {
    let fd = open(O_RDONLY);
    let mut buf = vec![0u8; 4096];
    let (s, bytes, calls) =
        measure_reads(|| rt::read(fd, &mut buf).unwrap_or_else(|_| fail("read")));
    // A second pass on the same descriptor: its window is mapped by now (no fault).
    if rt::lseek(fd, 0, rt::file::Whence::Set) != Ok(0) {
        fail("lseek");
    }
    let (again, _, _) = measure_reads(|| rt::read(fd, &mut buf).unwrap_or_else(|_| fail("read")));
    let _ = rt::close(fd);
    if buf[8] != big_byte(READ_BYTES - 4096 + 8) {
        fail("read 4k: wrong bytes");
    }
    report_read(
        "fileio_read4k_per_mib",
        s,
        bytes,
        calls,
        format_args!(
            " buffer=4096 second_pass={}",
            Ratio(again.instructions, READ_BYTES / MIB)
        ),
    );
}

/// How much the `write()` figures write: a new file of 4 MiB (its blocks stay in the
/// cache beside big.dat's, so no write-back falls inside the window).
const WRITE_BYTES: u64 = 4 * MIB;
/// The file the write figures create (and remove afterwards).
const WRITE_FILE: &str = "wbench.dat";

/// `write()` of `WRITE_BYTES`, `chunk` bytes a call, into a file whose blocks are cached
/// (the cache warm, as for the reads): one unmeasured pass creates the file, the measured
/// pass writes it again from the start on a new descriptor. A second figure, `grow=`, is
/// the first pass: a new file growing a call at a time (each call asks the file server to
/// grow it: `Span`). The file is checked, closed (its write-back outside the windows) and
/// removed.
fn write_pass(name: &str, chunk: usize) {
    let mut buf = vec![0u8; chunk];
    let mut pass = |flags: u64, seed: u8| -> (Sample, u64) {
        let fd = rt::open(WRITE_FILE, O_RDWR | flags)
            .unwrap_or_else(|e| fail(&alloc::format!("open {WRITE_FILE}: {e:?}")));
        let mut calls = 0;
        let s = with_faults(|| {
            let w = start();
            let mut at = 0;
            while at < WRITE_BYTES {
                // One byte differs per call, so that every call writes its own bytes.
                buf[0] = ((at / chunk as u64) as u8).wrapping_add(seed);
                if rt::write(fd, &buf) != Ok(chunk) {
                    fail("write");
                }
                calls += 1;
                at += chunk as u64;
            }
            stop(&w)
        });
        let mut back = [0u8; 1];
        let last = WRITE_BYTES - chunk as u64;
        if rt::fstat(fd).map(|st| st.size) != Ok(WRITE_BYTES)
            || rt::pread(fd, &mut back, last) != Ok(1)
            || back[0] != ((last / chunk as u64) as u8).wrapping_add(seed)
        {
            fail("write: the file does not hold what was written");
        }
        let _ = rt::close(fd);
        (s, calls)
    };
    let (grow, _) = pass(O_CREAT | O_TRUNC, 0);
    let (s, calls) = pass(0, 1);
    let _ = rt::unlink(WRITE_FILE);
    report(
        name,
        s,
        WRITE_BYTES / MIB,
        format_args!(
            " calls={} buffer={chunk} grow={} grow_kernel_entries={}",
            Ratio(calls, WRITE_BYTES / MIB),
            Ratio(grow.instructions, WRITE_BYTES / MIB),
            Ratio(grow.entries, WRITE_BYTES / MIB)
        ),
    );
}

/// `write()`, 1 KiB a call.
fn fileio_write() {
    write_pass("fileio_write_per_mib", 1024);
}

/// `write()`, 4 KiB a call.
fn fileio_write4k() {
    write_pass("fileio_write4k_per_mib", 4096);
}

/// A new 16 MiB file (`ftruncate`), mapped shared and writable, every byte written (each
/// word its offset, 16-byte stores: [`fill_words`]), faults included; the `munmap` and the write-back at `close` are outside the
/// window (Linux's file is on tmpfs).
fn fileio_mmap_write() {
    let fd = rt::open(WRITE_FILE, O_CREAT | O_RDWR | O_TRUNC)
        .unwrap_or_else(|e| fail(&alloc::format!("create {WRITE_FILE}: {e:?}")));
    if let Err(e) = rt::ftruncate(fd, FILE_BYTES) {
        fail(&alloc::format!("ftruncate: {e:?}"));
    }
    let a = rt::mmap(0, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        .unwrap_or_else(|e| fail(&alloc::format!("mmap {WRITE_FILE}: {e:?}")));
    let s = with_faults(|| {
        let w = start();
        fill_words(a, FILE_BYTES);
        stop(&w)
    });
    // SAFETY: as above, a read of a word written just now.
    let back = unsafe { read_volatile((a + FILE_BYTES - 8) as *const u64) };
    let _ = rt::munmap(a, FILE_BYTES);
    let mut word = [0u8; 8];
    if back != FILE_BYTES - 8
        || rt::pread(fd, &mut word, 4096) != Ok(8)
        || u64::from_le_bytes(word) != 4096
    {
        fail("mmap write: the file does not hold what was written");
    }
    let _ = rt::close(fd);
    let _ = rt::unlink(WRITE_FILE);
    report(
        "fileio_mmap_write_per_mib",
        s,
        FILE_BYTES / MIB,
        format_args!(""),
    );
}

/// `O_DIRECT` writes of 4 KiB to a new file (each to the disk before it returns:
/// instructions retired, the waits not counted).
fn fileio_direct_write() {
    let fd = rt::open(WRITE_FILE, O_CREAT | O_RDWR | O_TRUNC | O_DIRECT)
        .unwrap_or_else(|e| fail(&alloc::format!("create {WRITE_FILE}: {e:?}")));
    let buf = vec![7u8; 4096];
    let bytes = MIB;
    let s = with_faults(|| {
        let w = start();
        let mut at = 0;
        while at < bytes {
            if rt::write(fd, &buf) != Ok(4096) {
                fail("O_DIRECT write");
            }
            at += 4096;
        }
        stop(&w)
    });
    let _ = rt::close(fd);
    let _ = rt::unlink(WRITE_FILE);
    report(
        "fileio_direct_write_per_mib",
        s,
        bytes / MIB,
        format_args!(" buffer=4096 counter=instructions_retired"),
    );
}

/// `O_DIRECT` reads of 4 KiB (the disk, not the cache: instructions retired).
fn fileio_direct() {
    let fd = open(O_RDONLY | O_DIRECT);
    let mut buf = vec![0u8; 4096];
    let (s, bytes, calls) =
        measure_reads(|| rt::read(fd, &mut buf).unwrap_or_else(|_| fail("O_DIRECT read")));
    let _ = rt::close(fd);
    if buf[16] != big_byte(READ_BYTES - 4096 + 16) {
        fail("O_DIRECT read: wrong bytes");
    }
    report_read(
        "fileio_direct_per_mib",
        s,
        bytes,
        calls,
        format_args!(" buffer=4096 counter=instructions_retired"),
    );
}

/// stdio's `fgets` into a 1 KiB line buffer (the stream refills its 4 KiB buffer with
/// `read()`), the page cache warm.
fn fileio_fgets() {
    let fd = open(O_RDONLY);
    let mut f = rt::stdio::File::from_fd(fd);
    let mut line = [0u8; 1024];
    let (s, bytes, calls) =
        measure_reads(|| f.read_line(&mut line).unwrap_or_else(|_| fail("fgets")));
    let _ = f.close();
    report_read(
        "fileio_fgets_per_mib",
        s,
        bytes,
        calls,
        format_args!(" line_buffer=1024"),
    );
}

/// `mmap` of the whole file (private, read-only), every 8-byte word read (summed), `munmap`:
/// all inside the window, the page cache warm.
fn fileio_mmap() {
    let fd = open(O_RDONLY);
    let mut sum = 0u64;
    let s = with_faults(|| {
        let w = start();
        let a = rt::mmap(0, READ_BYTES, PROT_READ, MAP_PRIVATE, fd, 0)
            .unwrap_or_else(|e| fail(&alloc::format!("mmap big.dat: {e:?}")));
        // SAFETY: [a, a + READ_BYTES) is a private read-only mapping of this task, nothing
        // writes it while the slice lives.
        let words =
            unsafe { core::slice::from_raw_parts(a as *const u64, (READ_BYTES / 8) as usize) };
        sum = sum_words(words);
        let _ = rt::munmap(a, READ_BYTES);
        stop(&w)
    });
    let _ = rt::close(fd);
    // The words hold 0, 8, 16, ...: their sum is 8 * n * (n - 1) / 2.
    let n = READ_BYTES / 8;
    if sum != 4 * n * (n - 1) {
        fail("mmap: the words' sum is wrong");
    }
    report_read("fileio_mmap_per_mib", s, READ_BYTES, 1, format_args!(""));
}

/// Stores into every word of [`a`, `a + len`) its own offset from `a` (`len` a multiple of
/// 64): 64 bytes an iteration as two pairs of 128-bit stores (`stp q`) of vectors of two
/// words, each advanced by 64 with a vector add, 8 instructions for 8 words (the mirror of
/// [`sum_words`]).
fn fill_words(a: u64, len: u64) {
    let steps = len / 64;
    if steps == 0 {
        return;
    }
    let first: [u64; 8] = [0, 8, 16, 24, 32, 40, 48, 56];
    // SAFETY: writes `steps * 64` bytes from `a`, a read-write mapping of this task of at
    // least `len` bytes that no Rust reference covers; reads the 64 bytes of `first` (a
    // local); FP/SIMD is enabled for EL0 and the vector registers used are clobbers.
    unsafe {
        core::arch::asm!(
            "ldp q0, q1, [{f}]",
            "ldp q2, q3, [{f}, #32]",
            "mov {t}, #64",
            "dup v8.2d, {t}",
            "2:",
            "stp q0, q1, [{p}], #32",
            "stp q2, q3, [{p}], #32",
            "add v0.2d, v0.2d, v8.2d",
            "add v1.2d, v1.2d, v8.2d",
            "add v2.2d, v2.2d, v8.2d",
            "add v3.2d, v3.2d, v8.2d",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            f = in(reg) first.as_ptr(),
            p = inout(reg) a => _,
            n = inout(reg) steps => _,
            t = out(reg) _,
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v8") _,
            options(nostack),
        );
    }
}

/// The sum of `words` (wrapping): 8 words an iteration, loaded as two pairs of 128-bit
/// registers (`ldp q`) and added as vectors of two words, 5 instructions for 8 words. (The
/// plain loop, which LLVM vectorizes itself on this strict-alignment target, goes through
/// the stack at 27; NEON load intrinsics compile to byte loads.)
fn sum_words(words: &[u64]) -> u64 {
    let chunks = words.len() / 8;
    let mut sum: u64 = 0;
    if chunks > 0 {
        // SAFETY: reads the first `chunks * 8` words of `words` (16-byte loads of 8-byte
        // aligned words, which AArch64 allows with alignment checking off at EL0 for normal
        // memory); FP/SIMD is enabled for EL0 and the vector registers used are clobbers.
        unsafe {
            core::arch::asm!(
                "movi v0.2d, #0",
                "movi v1.2d, #0",
                "movi v2.2d, #0",
                "movi v3.2d, #0",
                "2:",
                "ldp q4, q5, [{p}], #32",
                "ldp q6, q7, [{p}], #32",
                "add v0.2d, v0.2d, v4.2d",
                "add v1.2d, v1.2d, v5.2d",
                "add v2.2d, v2.2d, v6.2d",
                "add v3.2d, v3.2d, v7.2d",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                "add v0.2d, v0.2d, v1.2d",
                "add v2.2d, v2.2d, v3.2d",
                "add v0.2d, v0.2d, v2.2d",
                "addp d0, v0.2d",
                "fmov {s}, d0",
                p = inout(reg) words.as_ptr() => _,
                n = inout(reg) chunks => _,
                s = out(reg) sum,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                out("v4") _, out("v5") _, out("v6") _, out("v7") _,
                options(nostack, readonly),
            );
        }
    }
    words[chunks * 8..]
        .iter()
        .fold(sum, |a, &w| a.wrapping_add(w))
}
