//! Demo: the lecture's slide "File I/O Comparisons": the same 16 MiB file (`big.dat`, each
//! 8-byte word holds its own offset) read five ways: `read` with a 1 KiB and a 4 KiB buffer,
//! `O_DIRECT` with 4 KiB, stdio's `fgets` with a 1 KiB buffer, and `mmap` reading every
//! word; then a 4 MiB file written three ways: `write` of 1 KiB and 4 KiB, and a shared
//! mapping written word by word (skipped on a read-only disk). Each way checks every byte
//! it got, and the demo prints a table of what each cost per MiB (the
//! PMU's count, kernel entries, calls) and what the servers counted over it: vm's page
//! faults, the file server's `ObjectPage` answers (its faults from vm), and the blocks and
//! sectors it read from the disk (`rt::file_stats`). One `PASS`/`FAIL` line per way, and
//! checks of those counters: a warm `read` or `fgets` pass reads no block from the disk,
//! `O_DIRECT` reads the whole file from the disk, and `mmap` costs one `ObjectPage` per block
//! touched and no disk read. Exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use demos::{Checks, Delta, peek, poke, prefault, stats};
use rt::{
    Errno, FileStats, MAP_SHARED, O_CREAT, O_DIRECT, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ,
    PROT_WRITE, println,
};

rt::entry!(main);

const FILE: &str = "big.dat";
const BIG_BYTES: u64 = 16 << 20;
const MIB: u64 = BIG_BYTES >> 20;
const BLOCK: u64 = rt::proto::object::BLOCK_SIZE;
const BLOCKS: u64 = BIG_BYTES / BLOCK;
const SECTOR: u64 = rt::file::SECTOR_SIZE;

/// One way of reading or writing: does it all, checks it, and adds what it cost; the MiB it
/// moved (0: skipped, the disk is read-only).
type Way = fn(&mut Cost) -> Result<u64, &'static str>;

/// The file the write ways create (and remove), and its size.
const WRITE_FILE: &str = "fileio.out";
const WRITE_BYTES: u64 = 4 << 20;

/// What one way of reading cost.
struct Cost {
    name: &'static str,
    /// Calls that moved data: `read`, `fgets`, or page faults for `mmap`.
    calls: u64,
    /// MiB moved (0: skipped).
    mib: u64,
    /// PMU event "instructions retired" (counts only under QEMU -icount).
    instructions: u64,
    /// PMU cycle counter (guest instructions under -icount, idle time included).
    cycles: u64,
    kernel_entries: u64,
    faults: i64,
    /// What the file server counted during the way.
    file: FileDelta,
}

/// The file server's counters; all zero if it does not answer (the checks that use them
/// then fail).
fn file_stats() -> FileStats {
    rt::file_stats().unwrap_or_default()
}

/// The difference of two snapshots of the file server's counters (the ones that move).
#[derive(Clone, Copy, Default)]
struct FileDelta {
    object_requests: u64,
    object_pages: u64,
    blocks_read: u64,
    sectors_read: u64,
    hits: u64,
    misses: u64,
    disk_requests: u64,
}

impl FileDelta {
    fn between(a: &FileStats, b: &FileStats) -> Self {
        Self {
            object_requests: b.object_requests.wrapping_sub(a.object_requests),
            object_pages: b.object_pages.wrapping_sub(a.object_pages),
            blocks_read: b.blocks_read.wrapping_sub(a.blocks_read),
            sectors_read: b.sectors_read.wrapping_sub(a.sectors_read),
            hits: b.hits.wrapping_sub(a.hits),
            misses: b.misses.wrapping_sub(a.misses),
            disk_requests: b.disk_requests.wrapping_sub(a.disk_requests),
        }
    }
}

impl core::fmt::Display for FileDelta {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "ObjectPage {} ({} pages), cache hits {}, misses {}, blocks read {}, sectors read {}, disk requests {}",
            self.object_requests,
            self.object_pages,
            self.hits,
            self.misses,
            self.blocks_read,
            self.sectors_read,
            self.disk_requests
        )
    }
}

/// The PMU's counts and the kernel's entry count, read together.
#[derive(Clone, Copy)]
struct Meter {
    instructions: u64,
    cycles: u64,
    entries: u64,
}

impl Meter {
    fn now() -> Self {
        let entries = libmk::debug_counters().0;
        Self {
            instructions: libmk::instructions_retired(),
            cycles: libmk::cycle_counter(),
            entries,
        }
    }

    /// Adds what passed since `self` to `cost`.
    fn add_to(self, cost: &mut Cost) {
        let now = Self::now();
        cost.instructions += libmk::instructions_between(self.instructions, now.instructions);
        cost.cycles += now.cycles.wrapping_sub(self.cycles);
        cost.kernel_entries += now.entries.wrapping_sub(self.entries);
    }
}

impl Cost {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            calls: 0,
            mib: 0,
            instructions: 0,
            cycles: 0,
            kernel_entries: 0,
            faults: 0,
            file: FileDelta::default(),
        }
    }
}

/// Checks bytes read at file offset `at` (any alignment): byte `o` of the file is byte
/// `o % 8` (little-endian) of the word `o & !7`.
fn check_bytes(bytes: &[u8], at: u64) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| {
        let o = at + i as u64;
        b == ((o & !7) >> (8 * (o & 7))) as u8
    })
}

/// Checks whole words read at `at` (a multiple of 8): faster than [`check_bytes`].
fn check_words(bytes: &[u8], at: u64) -> bool {
    bytes.chunks_exact(8).enumerate().all(|(i, w)| {
        u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == at + 8 * i as u64
    }) && bytes.len().is_multiple_of(8)
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("fileio: the slide \"File I/O Comparisons\": {FILE} ({MIB} MiB) read four ways");
    println!("fileio: every way checks every byte it got (each 8-byte word = its offset).");
    println!(
        "fileio: the count is the PMU's \"instructions retired\" event (PMEVCNTR0_EL0), which QEMU"
    );
    println!(
        "fileio: implements under -icount only (make bench); where it stays at 0 the table shows"
    );
    println!(
        "fileio: the PMU cycle counter (PMCCNTR_EL0) instead, which then follows QEMU's clock."
    );
    println!("fileio: for read/O_DIRECT/fgets it is read around the calls only (not the checks);");
    println!("fileio: for mmap around the loop that loads (and compares) every word.");
    prefault();

    println!();
    println!("fileio: step 0: warm the page cache: map {FILE} and touch one word per 64 KiB block");
    println!("fileio:   (each touch is one fault; the file server reads the block from the disk),");
    println!("fileio:   so that the ways below compare copying, not waiting for the disk.");
    let (warm, f, budget) = warm_up();
    c.check("fileio-warm", warm, "mapping or touching big.dat failed");
    // big.dat was written in one go: its clusters are consecutive, so each block is one
    // request (a few more read the FAT's 4 KiB extents).
    println!("fileio:   one disk request per block read (and a few for the FAT)");
    c.check(
        "fileio-one-request-per-block",
        f.disk_requests <= f.blocks_read + 8,
        "more than one disk request per 64 KiB block of a file whose clusters are consecutive",
    );
    // Touched in order: every block after the first was read ahead (a cache of 4 blocks or
    // more reads ahead), so only the first touch missed the cache (and one after each run
    // of blocks some earlier program left cached, in the tour); without read-ahead every
    // block read is a miss.
    println!(
        "fileio:   read ahead: the blocks after the first were read before they were asked for"
    );
    c.check(
        "fileio-read-ahead",
        budget < 4 || f.misses * 2 <= f.blocks_read + 1,
        "a sequential pass over the file did not read ahead",
    );

    let mut costs = alloc::vec::Vec::new();
    let ways: [(&str, &str, Way); 8] = [
        (
            "fileio-read-1k",
            "read(fd, buf, 1024) until the end",
            read_1k,
        ),
        (
            "fileio-read-4k",
            "read(fd, buf, 4096) until the end",
            read_4k,
        ),
        (
            "fileio-direct-4k",
            "open(..., O_DIRECT); read(fd, buf, 4096): the disk, bypassing the cache",
            direct_4k,
        ),
        (
            "fileio-fgets-1k",
            "fgets(buf, 1024, fp): stdio's 4 KiB buffer, handed out a line at a time",
            fgets_1k,
        ),
        (
            "fileio-mmap",
            "p = mmap(0, 16 MiB, PROT_READ, MAP_SHARED, fd, 0); load every word",
            mmap_words,
        ),
        (
            "fileio-write-1k",
            "write(fd, buf, 1024) over a 4 MiB file (written once before: cached)",
            write_1k,
        ),
        (
            "fileio-write-4k",
            "write(fd, buf, 4096) over the same file",
            write_4k,
        ),
        (
            "fileio-mmap-write",
            "ftruncate a new 4 MiB file; mmap it MAP_SHARED; store every word",
            mmap_write,
        ),
    ];
    for (i, (id, what, way)) in ways.iter().enumerate() {
        println!();
        println!("fileio: way {}: {what}", i + 1);
        let mut cost = Cost::new(&id["fileio-".len()..]);
        let (s0, f0) = (stats(), file_stats());
        let r = way(&mut cost);
        cost.file = FileDelta::between(&f0, &file_stats());
        cost.faults = Delta::between(&s0, &stats()).faults;
        match r {
            Ok(0) => {
                println!("fileio:   skipped: the disk is read-only (EROFS)");
                continue;
            }
            Ok(mib) => {
                cost.mib = mib;
                println!(
                    "fileio:   {} calls, {} instructions, {} cycles, {} kernel entries, {} page faults",
                    cost.calls, cost.instructions, cost.cycles, cost.kernel_entries, cost.faults
                );
                println!("fileio:   file server: {}", cost.file);
                c.check(id, true, "");
            }
            Err(why) => {
                c.check(id, false, why);
            }
        }
        costs.push(cost);
    }

    let costs: alloc::vec::Vec<Cost> = costs.into_iter().filter(|c| c.mib > 0).collect();
    let instructions_counted = costs.iter().all(|cost| cost.instructions > 0);
    let (unit, count): (&str, fn(&Cost) -> u64) = if instructions_counted {
        ("instructions", |cost| cost.instructions)
    } else {
        ("cycles", |cost| cost.cycles)
    };
    println!();
    println!("fileio: per MiB moved ({unit} from the PMU; entries: kernel entries), and what");
    println!("fileio: the servers counted over the whole way: vm's page faults, the file server's");
    println!("fileio: ObjectPage answers to vm, blocks it read from the disk into its page cache,");
    println!("fileio: and disk sectors (512 bytes) it read, for the cache or for O_DIRECT:");
    println!(
        "fileio:   {:<10}| {:>12} | {:>11} | {:>9} || {:>9} | {:>10} | {:>11} | {:>12}",
        "way",
        if instructions_counted {
            "instr/MiB"
        } else {
            "cycles/MiB"
        },
        "entries/MiB",
        "calls/MiB",
        "vm faults",
        "ObjectPage",
        "blocks read",
        "sectors read"
    );
    for cost in &costs {
        println!(
            "fileio:   {:<10}| {:>12} | {:>11} | {:>9} || {:>9} | {:>10} | {:>11} | {:>12}",
            cost.name,
            count(cost) / cost.mib,
            cost.kernel_entries / cost.mib,
            cost.calls / cost.mib,
            cost.faults,
            cost.file.object_requests,
            cost.file.blocks_read,
            cost.file.sectors_read
        );
    }
    println!("fileio: where each way's instructions go:");
    println!("fileio:   read: no message carries data. The first read maps a window of the");
    println!("fileio:   file (the page cache's own frames, shared); each read is one poll (did");
    println!("fileio:   the file server restart?) and one memcpy from the window, 64 bytes a");
    println!("fileio:   step; once per four blocks it asks the server (Span, no bytes) to bring");
    println!("fileio:   them into its cache, and at the size it knows whether the file grew.");
    println!("fileio:   The rest is the window's faults: one per 64 KiB block (vm asks the file");
    println!("fileio:   server for the block through its proxy: about 18 kernel entries).");
    println!("fileio:   O_DIRECT: one call per 4 KiB (DirectRead, no bytes in it): the file");
    println!("fileio:   server reads the disk straight into the descriptor's buffer, a frame");
    println!("fileio:   both map, and the runtime copies out. The virtio request, its interrupt");
    println!("fileio:   and the server's wait for it are most of it; no cache block is used.");
    println!("fileio:   fgets: stdio refills its 4 KiB buffer with one read (as above), then");
    println!("fileio:   searches and copies in one pass, 64 bytes a step (NEON compares; a");
    println!("fileio:   step without a newline is stored from the registers it was loaded to).");
    println!("fileio:   mmap: one fault per 64 KiB block maps the cache's frames, then plain");
    println!("fileio:   loads: no copy, no call.");
    println!("fileio:   write: one memcpy into the window (the first store to a block faults");
    println!("fileio:   and vm marks it dirty), a Span per four blocks as for read; a write");
    println!("fileio:   past the end asks the server once (Grow): it grows the file and");
    println!("fileio:   reserves the blocks after, and the writes that follow inside them");
    println!("fileio:   only store their new end in the task's size page (no call).");
    println!("fileio:   mmap-write: a fault per block (a new block is zeroed by the file server,");
    println!("fileio:   64 bytes a step) and the stores; the write-back at close is not counted.");

    println!();
    println!("fileio: the counters say where the bytes came from ({BLOCKS} blocks of 64 KiB):");
    let by_name = |name: &str| costs.iter().find(|cost| cost.name == name).map(|c| c.file);
    let (read, fgets) = (
        by_name("read-1k").unwrap_or_default(),
        by_name("fgets-1k").unwrap_or_default(),
    );
    let (direct, mapped) = (
        by_name("direct-4k").unwrap_or_default(),
        by_name("mmap").unwrap_or_default(),
    );
    println!("fileio:   read and fgets: every block a cache hit, no block read from the disk");
    c.check(
        "fileio-read-warm",
        read.hits > 0
            && fgets.hits > 0
            && read.misses + fgets.misses == 0
            && read.blocks_read + fgets.blocks_read == 0,
        "a warm read()/fgets pass missed the cache or read blocks from the disk",
    );
    println!(
        "fileio:   O_DIRECT: at least the file's {} sectors from the disk, no cache block",
        BIG_BYTES / SECTOR
    );
    c.check(
        "fileio-direct-disk",
        direct.sectors_read >= BIG_BYTES / SECTOR && direct.blocks_read == 0,
        "O_DIRECT did not read the file from the disk, or went through the cache",
    );
    // vm keeps the capabilities of blocks no mapping names any more (idle, a bounded
    // number): the warm-up's blocks come back without asking the file server.
    println!(
        "fileio:   mmap: {} ObjectPage requests for {BLOCKS} blocks ({} pages; vm kept the \
         warm-up's blocks), no disk read",
        mapped.object_requests,
        BIG_BYTES / demos::PAGE
    );
    c.check(
        "fileio-mmap-object-pages",
        mapped.object_requests <= BLOCKS
            && mapped.object_pages <= BIG_BYTES / demos::PAGE
            && mapped.blocks_read == 0,
        "the mmap pass cost more than one ObjectPage per block, or read blocks from the disk",
    );
    println!("fileio: {} failures", c.failures);
    c.failures
}

/// Maps the file and touches one word per block, so that every block is in the cache:
/// whether it went well, what the file server counted, and its cache's budget.
fn warm_up() -> (bool, FileDelta, u64) {
    let failed = (false, FileDelta::default(), 0);
    let Ok(fd) = rt::open(FILE, O_RDONLY) else {
        return failed;
    };
    let Ok(a) = rt::mmap(0, BIG_BYTES, PROT_READ, MAP_SHARED, fd, 0) else {
        return failed;
    };
    let (s0, f0) = (stats(), file_stats());
    let ok = (0..BLOCKS).all(|b| peek(a + b * BLOCK) == b * BLOCK);
    let (s1, f1) = (stats(), file_stats());
    println!(
        "fileio:   {BLOCKS} blocks touched: vm: {}",
        Delta::between(&s0, &s1)
    );
    let delta = FileDelta::between(&f0, &f1);
    println!("fileio:   file server: {delta}");
    println!(
        "fileio:   page cache: {} of {} blocks in use, {} evicted and {} written back since boot",
        f1.cached, f1.budget, f1.evicted, f1.written_back
    );
    let ok = ok && rt::munmap(a, BIG_BYTES).is_ok() && rt::close(fd).is_ok();
    (ok, delta, f1.budget)
}

fn read_1k(cost: &mut Cost) -> Result<u64, &'static str> {
    let fd = rt::open(FILE, O_RDONLY).map_err(|_| "open failed")?;
    read_all(cost, fd, &mut [0u8; 1024])
}

fn read_4k(cost: &mut Cost) -> Result<u64, &'static str> {
    let fd = rt::open(FILE, O_RDONLY).map_err(|_| "open failed")?;
    read_all(cost, fd, &mut [0u8; 4096])
}

fn direct_4k(cost: &mut Cost) -> Result<u64, &'static str> {
    let fd = rt::open(FILE, O_RDONLY | O_DIRECT).map_err(|_| "open O_DIRECT failed")?;
    read_all(cost, fd, &mut [0u8; 4096])
}

/// Creates [`WRITE_FILE`] and writes it once (so that its blocks are cached); `None` on a
/// read-only disk.
fn write_file_once() -> Result<Option<()>, &'static str> {
    let fd = match rt::open(WRITE_FILE, O_CREAT | O_RDWR | O_TRUNC) {
        Ok(fd) => fd,
        Err(Errno::EROFS) => return Ok(None),
        Err(_) => return Err("create failed"),
    };
    let buf = [0u8; 4096];
    for _ in 0..WRITE_BYTES / 4096 {
        if rt::write(fd, &buf) != Ok(4096) {
            return Err("write failed");
        }
    }
    rt::close(fd).map_err(|_| "close failed")?;
    Ok(Some(()))
}

/// `write()` of the cached [`WRITE_FILE`] from its start, `buf.len()` bytes a call, each
/// chunk's words holding their offsets; read back and checked, then removed.
fn write_over(cost: &mut Cost, buf: &mut [u8]) -> Result<u64, &'static str> {
    if write_file_once()?.is_none() {
        return Ok(0);
    }
    let fd = rt::open(WRITE_FILE, O_RDWR).map_err(|_| "open failed")?;
    let mut at = 0;
    while at < WRITE_BYTES {
        for (i, w) in buf.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&(at + 8 * i as u64).to_le_bytes());
        }
        let m = Meter::now();
        let n = rt::write(fd, buf).map_err(|_| "write failed")?;
        m.add_to(cost);
        cost.calls += 1;
        if n != buf.len() {
            return Err("a short write");
        }
        at += n as u64;
    }
    let ok = read_back(fd);
    rt::close(fd).map_err(|_| "close failed")?;
    let _ = rt::unlink(WRITE_FILE);
    finish_write(ok)
}

fn write_1k(cost: &mut Cost) -> Result<u64, &'static str> {
    write_over(cost, &mut [0u8; 1024])
}

fn write_4k(cost: &mut Cost) -> Result<u64, &'static str> {
    write_over(cost, &mut [0u8; 4096])
}

/// A new file, `ftruncate`d to [`WRITE_BYTES`], mapped shared, every word stored (its
/// offset), faults included; read back with `pread` and checked, then removed.
fn mmap_write(cost: &mut Cost) -> Result<u64, &'static str> {
    let fd = match rt::open(WRITE_FILE, O_CREAT | O_RDWR | O_TRUNC) {
        Ok(fd) => fd,
        Err(Errno::EROFS) => return Ok(0),
        Err(_) => return Err("create failed"),
    };
    rt::ftruncate(fd, WRITE_BYTES).map_err(|_| "ftruncate failed")?;
    let a = rt::mmap(0, WRITE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        .map_err(|_| "mmap failed")?;
    let s0 = stats();
    let m = Meter::now();
    let mut off = 0;
    while off < WRITE_BYTES {
        poke(a + off, off);
        off += 8;
    }
    m.add_to(cost);
    cost.calls = Delta::between(&s0, &stats()).faults as u64;
    rt::munmap(a, WRITE_BYTES).map_err(|_| "munmap failed")?;
    let ok = read_back(fd);
    rt::close(fd).map_err(|_| "close failed")?;
    let _ = rt::unlink(WRITE_FILE);
    println!("fileio:   (calls = page faults)");
    finish_write(ok)
}

/// Whether the written file reads back as its pattern, 64 KiB at a time.
fn read_back(fd: u64) -> bool {
    let mut back = alloc::vec![0u8; 65536];
    let mut ok = true;
    let mut off = 0;
    while off < WRITE_BYTES {
        ok &= rt::pread(fd, &mut back, off) == Ok(back.len()) && check_words(&back, off);
        off += back.len() as u64;
    }
    ok
}

fn finish_write(ok: bool) -> Result<u64, &'static str> {
    println!("fileio:   {WRITE_BYTES} bytes written, read back as expected: {ok}");
    if ok {
        Ok(WRITE_BYTES >> 20)
    } else {
        Err("the file does not hold what was written")
    }
}

/// `read()` of `fd` to its end into `buf`, each call metered; checks every word and closes.
fn read_all(cost: &mut Cost, fd: u64, buf: &mut [u8]) -> Result<u64, &'static str> {
    let mut at = 0;
    let mut ok = true;
    loop {
        let m = Meter::now();
        let n = rt::read(fd, buf).map_err(|_| "read failed")?;
        m.add_to(cost);
        cost.calls += 1;
        if n == 0 {
            break;
        }
        ok &= check_words(&buf[..n], at);
        at += n as u64;
    }
    rt::close(fd).map_err(|_| "close failed")?;
    finish(ok, at)
}

fn fgets_1k(cost: &mut Cost) -> Result<u64, &'static str> {
    let mut fp = rt::stdio::File::open(FILE).map_err(|_| "fopen failed")?;
    let mut buf = [0u8; 1024];
    let (mut at, mut lines) = (0u64, 0u64);
    let mut ok = true;
    loop {
        let m = Meter::now();
        let n = fp.read_line(&mut buf).map_err(|_| "fgets failed")?;
        m.add_to(cost);
        cost.calls += 1;
        if n == 0 {
            break;
        }
        if buf[n - 1] == b'\n' {
            lines += 1;
        }
        ok &= check_bytes(&buf[..n], at);
        at += n as u64;
    }
    fp.close().map_err(|_| "fclose failed")?;
    println!(
        "fileio:   {FILE} is binary: its bytes hold {lines} newlines (0x0a, in the offsets), so"
    );
    println!("fileio:   fgets returned up to each newline, or 1024 bytes when none came first;");
    println!("fileio:   the checks follow the file offset across those pieces.");
    finish(ok, at)
}

fn mmap_words(cost: &mut Cost) -> Result<u64, &'static str> {
    let fd = rt::open(FILE, O_RDONLY).map_err(|_| "open failed")?;
    let a = rt::mmap(0, BIG_BYTES, PROT_READ, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
    let s0 = stats();
    let m = Meter::now();
    let mut bad = 0u64;
    let mut off = 0;
    while off < BIG_BYTES {
        bad += u64::from(peek(a + off) != off);
        off += 8;
    }
    m.add_to(cost);
    cost.calls = Delta::between(&s0, &stats()).faults as u64;
    rt::munmap(a, BIG_BYTES).map_err(|_| "munmap failed")?;
    rt::close(fd).map_err(|_| "close failed")?;
    println!("fileio:   (calls = page faults: the only time the task left its own code)");
    finish(bad == 0, off)
}

fn finish(ok: bool, bytes: u64) -> Result<u64, &'static str> {
    println!("fileio:   {bytes} bytes, every byte as expected: {ok}");
    if bytes != BIG_BYTES {
        Err("did not read the whole file")
    } else if !ok {
        Err("a byte does not match its offset")
    } else {
        Ok(MIB)
    }
}
