//! What the demos and test programs share: word access to mapped memory, anonymous mappings,
//! vm's counters and their differences, and the `PASS <id>` / `FAIL <id>: <why>` lines.
#![no_std]

use core::ptr::{read_volatile, write_volatile};
use rt::{Errno, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, NO_FD, VmStats, println};

pub mod soak;

pub const PAGE: u64 = 4096;

/// Reads the word at `addr`. A page fault here goes to vm like any other: an address
/// outside the task's regions ends the task with `SEGV` (which some checks want).
pub fn peek(addr: u64) -> u64 {
    // SAFETY: a volatile load of plain memory: either `addr` is in a readable mapping of
    // this task, which no Rust reference covers, or the load faults and vm ends the task
    // before the value is used.
    unsafe { read_volatile(addr as *const u64) }
}

/// Writes the word at `addr` (a fault ends the task, as for [`peek`]).
pub fn poke(addr: u64, value: u64) {
    // SAFETY: as for `peek`: `addr` is in a writable mapping no Rust reference covers, or
    // the store faults and the task ends.
    unsafe { write_volatile(addr as *mut u64, value) }
}

/// `mmap(NULL, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)`.
pub fn anon(pages: u64, prot: u64) -> Result<u64, Errno> {
    rt::mmap(0, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, NO_FD, 0)
}

/// `mmap(NULL, pages * PAGE, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0)`.
pub fn shared_anon(pages: u64, prot: u64) -> Result<u64, Errno> {
    rt::mmap(0, pages * PAGE, prot, MAP_SHARED | MAP_ANONYMOUS, NO_FD, 0)
}

/// `hello.txt` opened, read into a 5-byte buffer and closed: the bytes read and the buffer
/// (the file server answers normal requests).
pub fn read_hello() -> (Result<usize, Errno>, [u8; 5]) {
    let mut buf = [0u8; 5];
    let read = rt::open("hello.txt", rt::O_RDONLY).and_then(|fd| {
        let n = rt::read(fd, &mut buf)?;
        rt::close(fd)?;
        Ok(n)
    });
    (read, buf)
}

/// One round of anonymous work: 16 fresh pages written, read back and unmapped; whether all
/// went well.
pub fn anon_round() -> bool {
    anon(16, rt::PROT_READ | rt::PROT_WRITE).is_ok_and(|a| {
        (0..16).for_each(|i| poke(a + i * PAGE, i));
        let sum: u64 = (0..16).map(|i| peek(a + i * PAGE)).sum();
        rt::munmap(a, 16 * PAGE).is_ok() && sum == 120
    })
}

/// What `read` answers once the servers caught up with the tasks that ended before: after
/// `rt::sync()` (init's notices to the servers are done), asks until the answer is `want`,
/// at most 10,000 times with a yield between (vm's releases of an ended task's mappings,
/// and disk reads a killed task's requests were waiting for, finish on their own). No time
/// is measured: a count that never comes back is still a failure.
pub fn settled<T: PartialEq>(want: &T, mut read: impl FnMut() -> T) -> T {
    let _ = rt::sync();
    let mut got = read();
    for _ in 0..10_000 {
        if got == *want {
            break;
        }
        rt::sched_yield();
        got = read();
    }
    got
}

/// vm's counters; all zero if vm does not answer (the checks that use them then fail).
pub fn stats() -> VmStats {
    rt::vm_stats().unwrap_or_default()
}

/// Touches `bytes` of stack below the caller, so that later calls at most this deep find
/// their stack pages resident and do not disturb a measurement of vm's counters.
#[inline(never)]
pub fn prefault_stack(depth: usize) {
    let mut buf = [0u8; 4096];
    for i in (0..buf.len()).step_by(512) {
        // SAFETY: `buf` is a live local array and `i` is in bounds.
        unsafe { write_volatile(buf.as_mut_ptr().add(i), 1) };
    }
    if depth > 0 {
        prefault_stack(depth - 1);
    }
    core::hint::black_box(&buf);
}

unsafe extern "C" {
    /// The end of the program's image (`user/rt/link.ld` defines it: the end of `.bss`).
    static __image_end: u8;
}

/// Reads one word of every page of the program's image (text, read-only data, data), so
/// that code run later does not fault its pages in during a measurement of vm's counters.
pub fn prefault_image() {
    let end = core::ptr::addr_of!(__image_end) as u64;
    let mut at = rt::proto::USER_MIN;
    while at < end {
        peek(at);
        at += PAGE;
    }
}

/// Makes the stack and the image resident: see [`prefault_stack`] and [`prefault_image`].
pub fn prefault() {
    prefault_stack(16);
    prefault_image();
}

/// The difference of two counter snapshots, printed as `faults +3, pages in use +2, ...`.
pub struct Delta {
    pub faults: i64,
    pub pages_in_use: i64,
    pub pages_zero_filled: i64,
    pub pages_copied: i64,
    pub zero_page_maps: i64,
    pub chunks: i64,
}

impl Delta {
    pub fn between(before: &VmStats, after: &VmStats) -> Self {
        let d = |a: u64, b: u64| b.wrapping_sub(a) as i64;
        Self {
            faults: d(before.faults, after.faults),
            pages_in_use: d(before.pages_in_use, after.pages_in_use),
            pages_zero_filled: d(before.pages_zero_filled, after.pages_zero_filled),
            pages_copied: d(before.pages_copied, after.pages_copied),
            zero_page_maps: d(before.zero_page_maps, after.zero_page_maps),
            chunks: d(before.chunks, after.chunks),
        }
    }
}

impl core::fmt::Display for Delta {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "faults {:+}, pages in use {:+}, zero-filled {:+}, copied {:+}, zero-page maps {:+}, chunks {:+}",
            self.faults,
            self.pages_in_use,
            self.pages_zero_filled,
            self.pages_copied,
            self.zero_page_maps,
            self.chunks
        )
    }
}

/// An `mmap` result as a C programmer reads it: the address in hex, or the errno's name.
pub struct Mapped(pub Result<u64, Errno>);

impl core::fmt::Display for Mapped {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Ok(a) => write!(f, "{a:#x}"),
            Err(e) => write!(f, "-1 ({e})"),
        }
    }
}

/// Prints vm's counters on one line after `label`.
pub fn show(label: &str, s: &VmStats) {
    println!(
        "{label}: faults {}, pages in use {}, zero-filled {}, copied {}, zero-page maps {}, chunks {}",
        s.faults, s.pages_in_use, s.pages_zero_filled, s.pages_copied, s.zero_page_maps, s.chunks
    );
}

/// The demos' command lines: `<program> [arguments]`, each optional with a default (what
/// the tour runs). A bad one prints the usage and the program exits with status 2.
pub mod cmdline {
    use rt::println;

    /// The exit status of a program given bad arguments (as a shell's utilities use it).
    pub const USAGE_STATUS: i32 = 2;

    /// Prints `why` and `usage: <usage>`; the status to exit with.
    pub fn usage(why: &str, usage: &str) -> i32 {
        println!("{why}");
        println!("usage: {usage}");
        USAGE_STATUS
    }

    /// Argument `i` as a number in `range`, `default` when it is not given; `Err` with a
    /// reason when it is not a number in the range.
    pub fn number(
        args: &[&str],
        i: usize,
        default: u64,
        range: core::ops::RangeInclusive<u64>,
    ) -> Result<u64, &'static str> {
        match args.get(i) {
            None => Ok(default),
            Some(a) => a
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or("not a number in the range"),
        }
    }
}

/// Counts failed checks and prints one line per check.
#[derive(Default)]
pub struct Checks {
    pub failures: i32,
}

impl Checks {
    /// `PASS id` if `ok`, else `FAIL id: why`; returns `ok`.
    pub fn check(&mut self, id: &str, ok: bool, why: &str) -> bool {
        if ok {
            println!("PASS {id}");
        } else {
            println!("FAIL {id}: {why}");
            self.failures += 1;
        }
        ok
    }

    /// Runs `check` and reports its result under `id`.
    pub fn run(&mut self, id: &str, check: impl FnOnce() -> Result<(), &'static str>) {
        match check() {
            Ok(()) => {
                self.check(id, true, "");
            }
            Err(why) => {
                self.check(id, false, why);
            }
        }
    }
}

/// What the `shm` demo and its unrelated peer `shmpeer` agree on.
pub mod shm_demo {
    /// Where both map `/same` (the "same address" option of the slide).
    pub const SAME_ADDR: u64 = 0x0000_0010_0000_0000;
    /// Where `shm` maps `/list`, and where `shmpeer` does (the "different address" option).
    pub const LIST_ADDR_WRITER: u64 = 0x0000_0011_0000_0000;
    pub const LIST_ADDR_READER: u64 = 0x0000_0012_0000_0000;
    /// The list: `NODES` nodes of `NODE_BYTES` from the start of the object, each a value
    /// (10, 20, ...) and the address of the next node (0 at the end).
    pub const NODES: u64 = 4;
    pub const NODE_BYTES: u64 = 16;
}

/// What `filetest` leaves on the disk for the host to check after power-off (the tools'
/// scenario `proc-filetest` computes the same bytes: `tools/src/scenarios.rs`).
pub mod filetest {
    /// The file, and its length (not a whole number of blocks or sectors).
    pub const KEEP_FILE: &str = "keep.dat";
    pub const KEEP_BYTES: usize = 300_001;

    /// Byte `i` of the file.
    pub const fn keep_byte(i: usize) -> u8 {
        ((i * 31) ^ (i >> 9)) as u8
    }
}

/// What `mapping-kinds` and its unrelated peer `kinds-peer` agree on.
pub mod mapping_kinds {
    /// The file both map (an 8.3 name: the file server creates only those).
    pub const FILE: &str = "KINDS.DAT";
    /// Word 0 of the mapping: what a forked child writes there.
    pub const CHILD_MARK: u64 = 0xc41d;
    /// Word 1 of the mapping: what the task that mapped it writes there.
    pub const WRITER_MARK: u64 = 0x5e1f;
    /// `kinds-peer`'s exit status: these bits for the marks it found in the file.
    pub const PEER_SAW_CHILD: i32 = 1;
    pub const PEER_SAW_WRITER: i32 = 2;
}

/// What `writeback` leaves on the disk, `writeback-check` reads back on the next boot, and
/// the tools compare after power-off (`tools/src/scenarios.rs` computes the same bytes).
pub mod writeback {
    /// The file (an 8.3 name) and its length: 17 blocks of 64 KiB and a piece of a page, so
    /// that the last page is partly past the end of the file.
    pub const FILE: &str = "WB.DAT";
    pub const BYTES: u64 = 17 * 65536 + 1000;

    /// Byte `i` of the file.
    pub const fn byte(i: u64) -> u8 {
        ((i * 7) ^ (i >> 12) ^ 0x5a) as u8
    }
}

/// What `exectest` leaves on the disk through shared mappings it never syncs, and the tools
/// compare after power-off (`tools/src/scenarios.rs` computes the same bytes).
pub mod exectest {
    /// Written by a child that exits (vm syncs at exit, the file server closes at exit).
    pub const EXIT_FILE: &str = "EXIT.DAT";
    /// Written by a child still running at power-off (init's `SyncAll`).
    pub const SYNC_FILE: &str = "SYNC.DAT";

    /// Each file's length: three pages and a piece of one.
    pub const fn file_len() -> u64 {
        3 * 4096 + 100
    }

    /// Byte `i` of each file.
    pub const fn file_byte(i: u64) -> u8 {
        ((i * 13) ^ (i >> 10) ^ 0x3c) as u8
    }
}

/// `n / d` printed with three decimals (benchmark figures per page or per MiB).
pub struct Ratio(pub u64, pub u64);

impl core::fmt::Display for Ratio {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Ratio(n, d) = *self;
        let milli = (n * 1000 + d / 2) / d.max(1);
        if milli % 1000 == 0 {
            write!(f, "{}", milli / 1000)
        } else {
            write!(f, "{}.{:03}", milli / 1000, milli % 1000)
        }
    }
}

/// The sample whose `key` is the median (samples are sorted by it).
pub fn median_by<T: Copy>(samples: &mut [T], key: impl Fn(&T) -> u64) -> T {
    samples.sort_unstable_by_key(|s| key(s));
    samples[samples.len() / 2]
}

/// What `wbstress` writes and checks, and the tools compare after power-off
/// (`tools/src/scenarios.rs` computes the same bytes): [`WRITERS`](wbstress::WRITERS) tasks
/// write their own words of one shared file mapping, round after round.
pub mod wbstress {
    /// The shared file (an 8.3 name): six 64 KiB blocks, three times the scenario's cache.
    pub const FILE: &str = "STRESS.DAT";
    pub const BLOCKS: u64 = 6;
    pub const BYTES: u64 = BLOCKS * 65536;
    pub const PAGES: u64 = BYTES / 4096;
    /// Writer tasks, and the words each owns in every page (its slots).
    pub const WRITERS: u64 = 3;
    pub const SLOTS: u64 = 8;
    /// Rounds each writer makes over the blocks, and passes over its words of a block at
    /// each visit: each pass writes every one of them anew.
    pub const ROUNDS: u64 = 8;
    pub const PASSES: u64 = 64;

    /// The byte offset of writer `k`'s slot `j` in page `p`.
    pub const fn offset(k: u64, p: u64, j: u64) -> u64 {
        p * 4096 + j * 512 + k * 8
    }

    /// What writer `k` writes into its slot `j` of page `p` the `n`-th time (from 0).
    pub const fn value(k: u64, p: u64, j: u64, n: u64) -> u64 {
        ((k + 1) << 56) | (n << 32) | (p << 16) | j
    }

    /// The word at byte offset `at` (a multiple of 8) once every writer has made every
    /// round: its writer's last value, 0 where no writer writes.
    pub const fn final_word(at: u64) -> u64 {
        let (p, q) = (at / 4096, at % 4096);
        let (j, k) = (q / 512, (q % 512) / 8);
        if k >= WRITERS {
            return 0;
        }
        value(k, p, j, ROUNDS * PASSES - 1)
    }
}

/// What `filetail` leaves on the disk, and the tools compare after power-off
/// (`tools/src/scenarios.rs` computes the same bytes).
pub mod filetail {
    /// The file (an 8.3 name) and its length: inside a page and inside a sector.
    pub const TAIL_FILE: &str = "TAIL.DAT";
    pub const TAIL_BYTES: u64 = 5000;

    /// Byte `i` of the file.
    pub const fn byte(i: u64) -> u8 {
        ((i * 11 + 3) ^ (i >> 8)) as u8
    }
}

/// What `attack-power` leaves on the disk at power-off (the tools check the same words).
pub mod attack_power {
    /// Word `i` (little-endian) of `POWER.DAT` (one page).
    pub const fn word(i: u64) -> u64 {
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x0ff0
    }
}

/// What `fragtest` finds on its disk (a file whose clusters are scattered, made by the tools'
/// `disk::prep::fragmented`), what it changes, and what the tools compare after power-off
/// (`tools/src/scenarios.rs` computes the same bytes).
pub mod fragtest {
    pub const FILE: &str = "FRAG.DAT";
    /// Its length on the disk: five blocks and a piece of a page.
    pub const ORIG: u64 = 5 * 65536 + 1000;
    /// Its length after `fragtest` appended to it.
    pub const FINAL: u64 = 8 * 65536 + 3000;
    /// Written through a shared mapping: bytes `MAPPED_AT .. MAPPED_AT + MAPPED_LEN` of every
    /// page of the original file.
    pub const MAPPED_AT: u64 = 100;
    pub const MAPPED_LEN: u64 = 16;
    /// Written with `pwrite`, across the first block boundary, after the mapping's writes.
    pub const WRITTEN_AT: u64 = 65536 - 100;
    pub const WRITTEN_LEN: u64 = 5000;

    /// Byte `i` of the file as the tools put it on the disk.
    pub const fn orig(i: u64) -> u8 {
        ((i * 13) ^ (i >> 9) ^ 0x6b) as u8
    }

    /// Byte `i` as the mapping writes it.
    pub const fn mapped(i: u64) -> u8 {
        ((i * 5) ^ 0xc3) as u8
    }

    /// Byte `i` as `pwrite` writes it (also what is appended).
    pub const fn written(i: u64) -> u8 {
        ((i * 3) ^ (i >> 7) ^ 0x1e) as u8
    }

    /// Byte `i` of the file when `fragtest` is done.
    pub const fn after(i: u64) -> u8 {
        if i >= ORIG || (i >= WRITTEN_AT && i < WRITTEN_AT + WRITTEN_LEN) {
            written(i)
        } else if i % 4096 >= MAPPED_AT && i % 4096 < MAPPED_AT + MAPPED_LEN {
            mapped(i)
        } else {
            orig(i)
        }
    }
}

/// What `dirtest` leaves on the disk (the tools read the same files back by their long
/// names after power-off).
pub mod dirtest {
    /// The host writes it (a long name made by `fatfs`) before the boot.
    pub const HOST_FILE: &str = "Host wrote this long name.txt";
    pub const HOST_BYTES: &[u8] = b"written on the host by fatfs\n";
    /// Files the demo writes, by long name, and their bytes.
    pub const LONG_FILE: &str = "Dir Test/A long file name.txt";
    pub const LONG_BYTES: &[u8] = b"a file with a long name, written by the system\n";
    pub const MOVED_FILE: &str = "Dir Test/Sub Directory/moved file.dat";
    pub const INSIDE_FILE: &str = "Dir Test/New Name Dir/inside.txt";
    pub const INSIDE_BYTES: &[u8] = b"inside a renamed directory\n";
    /// The entries `dirtest` makes in `Dir Test` to list (`entry number NN.dat`, NN bytes).
    pub const ENTRIES: usize = 40;
    /// A directory of a 120-byte name in `Dir Test`, and a file of a 125-byte name in it:
    /// a path of 255 bytes, `PATH_MAX` without its NUL.
    pub const DEEP_DIR: &str = "Dir Test/Deep directory ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    pub const DEEP_FILE: &str = "Dir Test/Deep directory ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/a file with a long name fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff.txt";
    pub const DEEP_BYTES: &[u8] = b"a file at the end of a path of 255 bytes\n";

    /// `MOVED_FILE`'s bytes: `entry number 00.dat` grown to 700 bytes.
    pub fn moved_bytes() -> [u8; 700] {
        let mut b = [0u8; 700];
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i * 7 % 253) as u8;
        }
        b
    }
}

/// `growio`'s files left on the disk (scenario `proc-growio` reads them back after
/// power-off: `tools/src/scenarios.rs` makes the same bytes).
pub mod growio {
    /// Byte `i` of pattern `seed`.
    pub fn byte(seed: u8, i: usize) -> u8 {
        ((i as u64).wrapping_mul(0x9e37_79b9) >> 7) as u8 ^ seed
    }
    /// `GROWA.DAT` (closed): 100 pieces of 1 KiB, then 300 bytes.
    pub const SEED_A: u8 = 0x5a;
    pub const PIECES_A: usize = 100;
    pub const TAIL_A: usize = 300;
    pub fn len_a() -> u64 {
        (PIECES_A * 1024 + TAIL_A) as u64
    }
    /// `GROWB.DAT` (its writer exits without closing it): 70 pieces, then 17 bytes.
    pub const SEED_B: u8 = 0xb3;
    pub const PIECES_B: usize = 70;
    pub const TAIL_B: usize = 17;
    pub fn len_b() -> u64 {
        (PIECES_B * 1024 + TAIL_B) as u64
    }
}
