//! The soak test (boot scenarios `soak` and `soak-long`, issue 9): nothing is lost or
//! corrupted while tasks page from the disk through a page cache that evicts all the time.
//!
//! [`WORKERS`] fork children of the program, which itself runs from the disk, go through
//! the same steps for a number of rounds, each checking every byte it reads against what
//! the file it came from holds:
//! - **exec**: start [`EXEC_PROGRAM`] from the disk, by `spawn` in even rounds and by
//!   `fork` + `exec` in odd ones; it checks its own table and every byte of its read-only
//!   segments against its file, and exits with [`EXEC_STATUS`] when all hold. Any other end
//!   (a kill by `SEGV` at an instruction that was not what the file holds, for one) fails.
//! - **private-read**: map [`MAP_BLOCKS`] blocks of `big.dat` (word `i` holds `8 * i`)
//!   `MAP_PRIVATE`, read every word.
//! - **shared-read**: the same with another range, `MAP_SHARED`, read-only.
//! - **private-write**: write every word of half the pages of the private mapping; those
//!   read back as written, the others as the file, and `pread` shows the file unchanged.
//! - **cow**: fork a child while an anonymous buffer and the private mapping hold the
//!   worker's data: the child sees it, writes its own over it and reads that back; the
//!   worker then still sees its own.
//! - **shared-write**: every worker owns the words `w` of [`FILE`] with `w % WORKERS == k`
//!   (so all of them write every page), mapped `MAP_SHARED`: [`PASSES`] times a round it
//!   checks that its words hold its last value, writes new ones and reads them back,
//!   `msync`ing the file after every second pass (while the others write the same blocks);
//!   then it checks that every other word is 0 or a value its owner writes there
//!   ([`is_valid`]), reads its words with `pread` and, every fourth round, through a fresh
//!   mapping, and maps the file anew.
//! - **file-churn**: its own file `SOAKW<k>.DAT` made anew, written with `write` and read
//!   back with `pread` (clusters freed and allocated while programs are paged in from the
//!   disk), unlinked every third round.
//!
//! The page cache holds two blocks (`file.cache=2`; four in scenario `soak-ahead`, enough
//! for the file server to read ahead): the workers' own text, the program they exec,
//! `big.dat` and [`FILE`] all go through it, so blocks are evicted and read again, and
//! mappings revoked under running tasks, all the time.
//!
//! A worker prints what went wrong (`soak: w<k> round <r> (<step>): ...`, the first few
//! only) and exits with [`STATUS_BASE`] plus a bit per failed step. The program then prints
//! one `PASS`/`FAIL soak-w<k>-<step>` line per worker and step, in order (a worker killed
//! fails every step, with how it ended), checks that every word of [`FILE`] holds its
//! owner's last value (`pread` and a fresh mapping; the tools compare the disk copy after
//! power-off too), and that the file server evicted and re-read blocks and vm copied pages
//! meanwhile (its counters), so that the run proves the cache was under pressure.

extern crate alloc;

use crate::{PAGE, peek, poke};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Arguments;
use rt::proto::WaitStatus;
use rt::{
    MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, NO_FD, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ,
    PROT_WRITE, println,
};

/// Worker tasks.
pub const WORKERS: u64 = 4;
/// Rounds of `soak` (scenario `soak`, part of `make test`), and of `soak-long`.
pub const ROUNDS: u64 = 40;
pub const LONG_ROUNDS: u64 = 10 * ROUNDS;

/// The most blocks the page cache may have for the run to count (`file.cache=2` in
/// scenario `soak`, 4 in `soak-ahead`, where the file server reads ahead).
pub const SMALL_CACHE: u64 = 4;

/// The file the workers write, an 8.3 name: four blocks (twice the cache), all zero first.
pub const FILE: &str = "SOAK.DAT";
pub const FILE_BYTES: u64 = 4 * BLOCK;
pub const FILE_WORDS: u64 = FILE_BYTES / 8;

/// The file of known content the workers map: word `i` holds `8 * i` (`tools/src/disk.rs`).
pub const BIG: &str = "big.dat";
/// The blocks of it the workers visit (few, so that they meet in them), and how many one
/// mapping covers.
pub const BIG_SPAN: u64 = 12;
pub const MAP_BLOCKS: u64 = 2;

/// The program the workers start from the disk, and the status it exits with when every
/// check of its own holds.
pub const EXEC_PROGRAM: &str = "soak-exec";
pub const EXEC_STATUS: i32 = 42;
/// Words (`u32`) of its read-only table: 128 KiB, two blocks of the cache.
pub const EXEC_TABLE_WORDS: usize = 32768;

/// A worker's exit status: this plus a bit per failed step (anything else is a failure of
/// every step: a panic exits with 101).
pub const STATUS_BASE: i32 = 0x5000;

/// The steps of a round, by bit of the worker's status.
pub const STEPS: [&str; 7] = [
    "exec",
    "private-read",
    "shared-read",
    "private-write",
    "cow",
    "shared-write",
    "file-churn",
];
/// The bits of a worker's status that name failed steps.
const STEP_BITS: i32 = (1 << STEPS.len()) - 1;
const EXEC: usize = 0;
const PRIVATE_READ: usize = 1;
const SHARED_READ: usize = 2;
const PRIVATE_WRITE: usize = 3;
const COW: usize = 4;
const SHARED_WRITE: usize = 5;
const FILE_CHURN: usize = 6;

const BLOCK: u64 = rt::proto::object::BLOCK_SIZE;
/// Problems a worker describes on the console (the rest only set its status bits).
const SHOWN: u32 = 4;
/// Bytes a worker writes into its own file each round (not a whole number of blocks, pages
/// or sectors).
const CHURN_BYTES: u64 = BLOCK + BLOCK / 2 + 100;
/// Pages of the anonymous buffer of the copy-on-write step.
const ANON_PAGES: u64 = 8;
/// The log in shared anonymous memory: per worker, rounds done, then the words it checked.
const LOG_WORDS_PER_WORKER: u64 = 2;

/// Word `i` of [`EXEC_PROGRAM`]'s table.
pub const fn exec_word(i: u64) -> u32 {
    ((i as u32).wrapping_mul(0x9e37_79b1) ^ 0xa5a5_0000) ^ (i >> 3) as u32
}

/// Times a worker writes each of its words of [`FILE`] in a round (each write a new value),
/// with an `msync` after every second pass.
pub const PASSES: u64 = 4;

/// What word `w` of [`FILE`] holds after its owner's `n`-th write (from 0; `PASSES` a
/// round): a tag, the owner, `n` plus one (so that no value is 0) and the word's own index.
pub const fn value(n: u64, w: u64) -> u64 {
    (0x50ac << 48) | ((w % WORKERS) << 44) | ((n + 1) << 24) | w
}

/// Whether `v` may be in word `w` of [`FILE`] while the workers run: 0 (not written yet)
/// or a value of its owner for that word, of any round.
pub const fn is_valid(v: u64, w: u64) -> bool {
    v == 0 || (v >> 48 == 0x50ac && (v >> 44) & 0xf == w % WORKERS && v & 0xff_ffff == w)
}

/// Word `w` of [`FILE`] once every worker made `rounds` rounds.
pub const fn final_word(w: u64, rounds: u64) -> u64 {
    value(rounds * PASSES - 1, w)
}

/// The word at byte offset `at` of a private mapping of `big.dat` at file offset `off` after
/// worker `k` wrote its page in round `r`.
const fn private_mark(k: u64, r: u64, at: u64) -> u64 {
    at ^ (0xdead << 48) ^ (k << 40) ^ (r << 24)
}

/// What worker `k` keeps in word `i` of its anonymous buffer in round `r`, and what its
/// copy-on-write child writes over it.
const fn anon_word(k: u64, r: u64, i: u64) -> u64 {
    (0xa10 << 52) | (k << 40) | (r << 20) | i
}
const fn child_word(k: u64, r: u64, i: u64) -> u64 {
    !anon_word(k, r, i)
}

/// Byte `i` of worker `k`'s own file in round `r`.
const fn churn_byte(k: u64, r: u64, i: u64) -> u8 {
    ((i * 7) ^ (i >> 11) ^ (k << 5) ^ r) as u8
}

/// One worker's state.
struct Worker {
    k: u64,
    /// Bits of the steps that failed.
    failed: u32,
    shown: u32,
    big: u64,
    file: u64,
    /// Its `MAP_SHARED` read-write mapping of [`FILE`].
    shared: u64,
    anon: u64,
    log: u64,
    page: Vec<u8>,
}

impl Worker {
    /// Step `step` failed in round `r`: why (the first few are printed).
    fn note(&mut self, step: usize, r: u64, why: Arguments<'_>) {
        self.failed |= 1 << step;
        if self.shown < SHOWN {
            self.shown += 1;
            println!("soak: w{} round {r} ({}): {why}", self.k, STEPS[step]);
        }
    }

    fn count_words(&self, n: u64) {
        let at = self.log + 8 * (self.k * LOG_WORDS_PER_WORKER + 1);
        poke(at, peek(at) + n);
    }

    fn round(&mut self, r: u64) {
        self.exec(r);
        let off = ((r * 5 + self.k * 3) % BIG_SPAN) * BLOCK;
        let len = MAP_BLOCKS * BLOCK;
        match rt::mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, self.big, off) {
            Ok(a) => {
                self.private_read(r, a, off);
                self.private_write(r, a, off);
                self.cow(r, a, off);
                if rt::munmap(a, len).is_err() {
                    self.note(PRIVATE_WRITE, r, format_args!("munmap failed"));
                }
            }
            Err(e) => self.note(PRIVATE_READ, r, format_args!("mmap failed: {e}")),
        }
        self.shared_read(r);
        self.shared_write(r);
        self.file_churn(r);
        let at = self.log + 8 * self.k * LOG_WORDS_PER_WORKER;
        poke(at, r + 1);
    }

    /// Starts [`EXEC_PROGRAM`] from the disk and waits for it.
    fn exec(&mut self, r: u64) {
        let spawned = r.is_multiple_of(2);
        let how = if spawned { "spawn" } else { "fork + exec" };
        let child = if spawned {
            rt::spawn(EXEC_PROGRAM)
        } else {
            match rt::fork() {
                Ok(0) => {
                    let _ = rt::exec(EXEC_PROGRAM);
                    rt::exit(77)
                }
                other => other,
            }
        };
        let pid = match child {
            Ok(pid) => pid,
            Err(e) => return self.note(EXEC, r, format_args!("{how} failed: {e}")),
        };
        match rt::wait(pid) {
            Ok((_, WaitStatus::Exited, s)) if s as i32 == EXEC_STATUS => {}
            Ok((_, how_ended, v)) => self.note(
                EXEC,
                r,
                format_args!("{EXEC_PROGRAM} ({how}) ended: {how_ended:?} {v:#x}"),
            ),
            Err(e) => self.note(EXEC, r, format_args!("wait failed: {e}")),
        }
    }

    /// Every word of the private mapping at `a` (file offset `off`) is the file's.
    fn private_read(&mut self, r: u64, a: u64, off: u64) {
        let len = MAP_BLOCKS * BLOCK;
        for i in (0..len).step_by(8) {
            let v = peek(a + i);
            if v != off + i {
                return self.note(
                    PRIVATE_READ,
                    r,
                    format_args!("word at file offset {:#x} reads {v:#x}", off + i),
                );
            }
        }
        self.count_words(len / 8);
    }

    /// Pages of the private mapping written in round `r`: every other one.
    fn written(r: u64, page: u64) -> bool {
        page % 2 == r % 2
    }

    /// Whether the private mapping at `a` holds the worker's round-`r` data: its marks in
    /// the pages it wrote, the file elsewhere; the first difference.
    fn private_holds(&self, r: u64, a: u64, off: u64) -> Result<(), (u64, u64, u64)> {
        for i in (0..MAP_BLOCKS * BLOCK).step_by(8) {
            let want = if Self::written(r, i / PAGE) {
                private_mark(self.k, r, off + i)
            } else {
                off + i
            };
            let v = peek(a + i);
            if v != want {
                return Err((off + i, v, want));
            }
        }
        Ok(())
    }

    /// Writes half the pages of the private mapping; they read back, the rest still reads
    /// as the file, and the file itself is unchanged.
    fn private_write(&mut self, r: u64, a: u64, off: u64) {
        let len = MAP_BLOCKS * BLOCK;
        for i in (0..len).step_by(8) {
            if Self::written(r, i / PAGE) {
                poke(a + i, private_mark(self.k, r, off + i));
            }
        }
        if let Err((at, v, want)) = self.private_holds(r, a, off) {
            return self.note(
                PRIVATE_WRITE,
                r,
                format_args!("private word at file offset {at:#x} reads {v:#x}, want {want:#x}"),
            );
        }
        // The file did not change: read the written pages with pread.
        for p in (0..len / PAGE).filter(|&p| Self::written(r, p)) {
            let at = off + p * PAGE;
            if rt::pread(self.big, &mut self.page, at) != Ok(PAGE as usize) {
                return self.note(PRIVATE_WRITE, r, format_args!("pread at {at:#x} failed"));
            }
            if let Some(j) = (0..PAGE / 8).find(|&j| word_of(&self.page, j) != at + 8 * j) {
                return self.note(
                    PRIVATE_WRITE,
                    r,
                    format_args!(
                        "big.dat changed by a private write: word at {:#x} reads {:#x}",
                        at + 8 * j,
                        word_of(&self.page, j)
                    ),
                );
            }
        }
        self.count_words(2 * len / 8);
    }

    /// A fork child sees the anonymous buffer and the private mapping as the worker left
    /// them, writes over both and reads its writes back; the worker's data stays.
    fn cow(&mut self, r: u64, a: u64, off: u64) {
        let (k, anon) = (self.k, self.anon);
        let bytes = ANON_PAGES * PAGE;
        for i in (0..bytes).step_by(8) {
            poke(anon + i, anon_word(k, r, i));
        }
        let child = match rt::fork() {
            Ok(0) => rt::exit(self.cow_child(r, a, off)),
            Ok(pid) => pid,
            Err(e) => return self.note(COW, r, format_args!("fork failed: {e}")),
        };
        match rt::wait(child) {
            Ok((_, WaitStatus::Exited, 0)) => {}
            other => self.note(COW, r, format_args!("the child ended with {other:?}")),
        }
        if let Some(i) = (0..bytes)
            .step_by(8)
            .find(|&i| peek(anon + i) != anon_word(k, r, i))
        {
            self.note(
                COW,
                r,
                format_args!(
                    "after the child, anonymous word {i:#x} is {:#x}",
                    peek(anon + i)
                ),
            );
        }
        if let Err((at, v, want)) = self.private_holds(r, a, off) {
            self.note(
                COW,
                r,
                format_args!("after the child, private word at {at:#x} is {v:#x}, want {want:#x}"),
            );
        }
    }

    /// The copy-on-write child: 0 when everything held.
    fn cow_child(&mut self, r: u64, a: u64, off: u64) -> i32 {
        let (k, anon) = (self.k, self.anon);
        let bytes = ANON_PAGES * PAGE;
        let mut bad = 0;
        if (0..bytes)
            .step_by(8)
            .any(|i| peek(anon + i) != anon_word(k, r, i))
        {
            println!("soak: w{k} round {r} (cow): the child sees another anonymous buffer");
            bad |= 1;
        }
        if let Err((at, v, want)) = self.private_holds(r, a, off) {
            println!(
                "soak: w{k} round {r} (cow): the child reads {v:#x} at {at:#x}, want {want:#x}"
            );
            bad |= 2;
        }
        for i in (0..bytes).step_by(8) {
            poke(anon + i, child_word(k, r, i));
        }
        // Its own copies of two pages of the private mapping, one of them the worker's copy.
        for i in (0..2 * PAGE).step_by(8) {
            poke(a + i, child_word(k, r, off + i));
        }
        if (0..bytes)
            .step_by(8)
            .any(|i| peek(anon + i) != child_word(k, r, i))
            || (0..2 * PAGE)
                .step_by(8)
                .any(|i| peek(a + i) != child_word(k, r, off + i))
        {
            println!("soak: w{k} round {r} (cow): the child does not read back its writes");
            bad |= 4;
        }
        bad
    }

    /// Every word of a `MAP_SHARED` read-only mapping of another range of `big.dat`.
    fn shared_read(&mut self, r: u64) {
        let off = ((r * 7 + self.k * 5 + 1) % BIG_SPAN) * BLOCK;
        let len = MAP_BLOCKS * BLOCK;
        let a = match rt::mmap(0, len, PROT_READ, MAP_SHARED, self.big, off) {
            Ok(a) => a,
            Err(e) => return self.note(SHARED_READ, r, format_args!("mmap failed: {e}")),
        };
        if let Some(i) = (0..len).step_by(8).find(|&i| peek(a + i) != off + i) {
            self.note(
                SHARED_READ,
                r,
                format_args!(
                    "word at file offset {:#x} reads {:#x}",
                    off + i,
                    peek(a + i)
                ),
            );
        }
        if rt::munmap(a, len).is_err() {
            self.note(SHARED_READ, r, format_args!("munmap failed"));
        }
        self.count_words(len / 8);
    }

    /// The worker's words of [`FILE`] through its shared mapping, `pread` and (every fourth
    /// round) a fresh mapping; everyone else's words valid.
    fn shared_write(&mut self, r: u64) {
        let (k, a) = (self.k, self.shared);
        for pass in 0..PASSES {
            let n = r * PASSES + pass;
            for w in (k..FILE_WORDS).step_by(WORKERS as usize) {
                let at = a + 8 * w;
                let last = if n == 0 { 0 } else { value(n - 1, w) };
                let before = peek(at);
                if before != last {
                    self.note(
                        SHARED_WRITE,
                        r,
                        format_args!(
                            "own word {w:#x} is {before:#x} before write {n}, want {last:#x}"
                        ),
                    );
                }
                poke(at, value(n, w));
                let after = peek(at);
                if after != value(n, w) {
                    self.note(
                        SHARED_WRITE,
                        r,
                        format_args!("own word {w:#x} reads {after:#x} right after write {n}"),
                    );
                }
            }
            // Written back while the others write their words of the same blocks.
            if pass % 2 == 1 && rt::msync(a, FILE_BYTES).is_err() {
                self.note(SHARED_WRITE, r, format_args!("msync failed"));
            }
        }
        self.check_words(r, "the mapping", |w| peek(a + 8 * w));
        // pread, a page at a time.
        let mut page = core::mem::take(&mut self.page);
        let mut held = u64::MAX;
        let (file, mut failed_at) = (self.file, None);
        self.check_words(r, "pread", |w| {
            let base = (8 * w) / PAGE * PAGE;
            if held != base {
                held = base;
                if rt::pread(file, &mut page, base) != Ok(PAGE as usize) {
                    failed_at.get_or_insert(base);
                    page.fill(0xff);
                }
            }
            word_of(&page, (8 * w - base) / 8)
        });
        self.page = page;
        if let Some(at) = failed_at {
            self.note(SHARED_WRITE, r, format_args!("pread at {at:#x} failed"));
        }
        if r % 4 == 3 {
            match rt::mmap(0, FILE_BYTES, PROT_READ, MAP_SHARED, file, 0) {
                Ok(m) => {
                    self.check_words(r, "a fresh mapping", |w| peek(m + 8 * w));
                    if rt::munmap(m, FILE_BYTES).is_err() {
                        self.note(SHARED_WRITE, r, format_args!("munmap failed"));
                    }
                }
                Err(e) => self.note(SHARED_WRITE, r, format_args!("mmap failed: {e}")),
            }
            // And the worker's own mapping anew.
            let _ = rt::munmap(a, FILE_BYTES);
            match rt::mmap(0, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0) {
                Ok(m) => self.shared = m,
                Err(e) => self.note(SHARED_WRITE, r, format_args!("mmap failed: {e}")),
            }
        }
        self.count_words(3 * FILE_WORDS);
    }

    /// The worker's own file, `SOAKW<k>.DAT`, made anew (`O_TRUNC`: its clusters freed)
    /// and written with `write` (clusters allocated when its blocks are written back),
    /// then read back with `pread`; unlinked every third round. The disk's allocation
    /// changes all the time while programs are paged in from it.
    fn file_churn(&mut self, r: u64) {
        let (k, name) = (self.k, alloc::format!("SOAKW{}.DAT", self.k));
        let fd = match rt::open(&name, O_RDWR | O_CREAT | O_TRUNC) {
            Ok(fd) => fd,
            Err(e) => return self.note(FILE_CHURN, r, format_args!("open {name} failed: {e}")),
        };
        let mut at = 0;
        while at < CHURN_BYTES {
            let n = (CHURN_BYTES - at).min(PAGE) as usize;
            for (i, b) in self.page[..n].iter_mut().enumerate() {
                *b = churn_byte(k, r, at + i as u64);
            }
            if rt::write(fd, &self.page[..n]) != Ok(n) {
                self.note(FILE_CHURN, r, format_args!("write at {at:#x} failed"));
                break;
            }
            at += n as u64;
        }
        at = 0;
        while at < CHURN_BYTES {
            let n = (CHURN_BYTES - at).min(PAGE) as usize;
            if rt::pread(fd, &mut self.page[..n], at) != Ok(n) {
                self.note(FILE_CHURN, r, format_args!("pread at {at:#x} failed"));
                break;
            }
            if let Some(i) = (0..n).find(|&i| self.page[i] != churn_byte(k, r, at + i as u64)) {
                let saw = self.page[i];
                self.note(
                    FILE_CHURN,
                    r,
                    format_args!("{name}: byte {:#x} reads {saw:#x}", at + i as u64),
                );
                break;
            }
            at += n as u64;
        }
        if rt::close(fd).is_err() {
            self.note(FILE_CHURN, r, format_args!("close failed"));
        }
        if r % 3 == 2 && rt::unlink(&name).is_err() {
            self.note(FILE_CHURN, r, format_args!("unlink {name} failed"));
        }
    }

    /// Every word of [`FILE`] as `read` shows it: the worker's own hold round `r`'s value,
    /// the others are valid.
    fn check_words(&mut self, r: u64, what: &str, mut read: impl FnMut(u64) -> u64) {
        for w in 0..FILE_WORDS {
            let v = read(w);
            let own = w % WORKERS == self.k;
            if (own && v != value(r * PASSES + PASSES - 1, w)) || (!own && !is_valid(v, w)) {
                return self.note(
                    SHARED_WRITE,
                    r,
                    format_args!("{what}: word {w:#x} (worker {}'s) is {v:#x}", w % WORKERS),
                );
            }
        }
    }
}

/// Word `j` of a page read into `page`.
fn word_of(page: &[u8], j: u64) -> u64 {
    let i = 8 * j as usize;
    page.get(i..i + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(u64::MAX, u64::from_le_bytes)
}

/// Worker `k`: `rounds` rounds; its exit status.
fn worker(k: u64, rounds: u64, log: u64) -> i32 {
    let big = rt::open(BIG, O_RDONLY);
    let file = rt::open(FILE, O_RDWR);
    let anon = rt::mmap(
        0,
        ANON_PAGES * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
        NO_FD,
        0,
    );
    let shared =
        file.and_then(|fd| rt::mmap(0, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    let (Ok(big), Ok(file), Ok(anon), Ok(shared)) = (big, file, anon, shared) else {
        println!("soak: w{k}: open or mmap failed");
        return STATUS_BASE | STEP_BITS;
    };
    let mut w = Worker {
        k,
        failed: 0,
        shown: 0,
        big,
        file,
        shared,
        anon,
        log,
        page: vec![0; PAGE as usize],
    };
    for r in 0..rounds {
        w.round(r);
    }
    let _ = rt::unlink(&alloc::format!("SOAKW{k}.DAT"));
    STATUS_BASE | w.failed as i32
}

/// The soak: [`WORKERS`] workers, `rounds` rounds each; the number of failed checks.
pub fn run(name: &str, rounds: u64) -> i32 {
    let mut c = crate::Checks::default();
    println!(
        "{name}: {WORKERS} workers, {rounds} rounds each: exec {EXEC_PROGRAM} from the disk, fork, private and shared mappings of big.dat and {FILE}"
    );
    let _ = rt::unlink(FILE);
    let made = rt::open(FILE, O_RDWR | O_CREAT | O_TRUNC)
        .and_then(|fd| rt::ftruncate(fd, FILE_BYTES).and_then(|()| rt::close(fd)));
    let log = crate::shared_anon(1, PROT_READ | PROT_WRITE);
    let (Ok(()), Ok(log)) = (made, log) else {
        c.check("soak-setup", false, "creating the file or the log failed");
        return c.failures;
    };
    let (vm_before, file_before) = (crate::stats(), rt::file_stats().unwrap_or_default());

    let mut pids = [0u64; WORKERS as usize];
    for (k, pid) in pids.iter_mut().enumerate() {
        match rt::fork() {
            Ok(0) => rt::exit(worker(k as u64, rounds, log)),
            Ok(child) => *pid = child,
            Err(_) => {
                c.check("soak-setup", false, "fork failed");
                return c.failures;
            }
        }
    }
    let mut words = 0;
    for (k, &pid) in pids.iter().enumerate() {
        let ended = rt::wait(pid);
        let done = peek(log + 8 * k as u64 * LOG_WORDS_PER_WORKER);
        words += peek(log + 8 * (k as u64 * LOG_WORDS_PER_WORKER + 1));
        let failed = match ended {
            Ok((_, WaitStatus::Exited, s)) if s as i32 & !STEP_BITS == STATUS_BASE => {
                Ok(s as i32 & STEP_BITS)
            }
            other => Err(other),
        };
        for (bit, step) in STEPS.iter().enumerate() {
            let id = alloc::format!("soak-w{k}-{step}");
            match failed {
                Ok(mask) => {
                    c.check(&id, mask & (1 << bit) == 0, "see the lines above");
                }
                Err(how) => {
                    c.check(
                        &id,
                        false,
                        &alloc::format!("the worker ended with {how:?} after {done} rounds"),
                    );
                }
            }
        }
    }
    let (vm_after, file_after) = (crate::stats(), rt::file_stats().unwrap_or_default());
    println!("{name}: the workers checked {words} words");

    let mut page = vec![0u8; PAGE as usize];
    let fd = rt::open(FILE, O_RDONLY);
    let by_pread = fd.is_ok_and(|fd| {
        (0..FILE_BYTES / PAGE).all(|p| {
            rt::pread(fd, &mut page, p * PAGE) == Ok(PAGE as usize)
                && (0..PAGE / 8).all(|j| {
                    let w = p * PAGE / 8 + j;
                    let ok = word_of(&page, j) == final_word(w, rounds);
                    if !ok {
                        println!(
                            "{name}: pread: word {w:#x} is {:#x}, want {:#x}",
                            word_of(&page, j),
                            final_word(w, rounds)
                        );
                    }
                    ok
                })
        })
    });
    c.check(
        "soak-final-pread",
        by_pread,
        "a word of the file is not its owner's last value",
    );
    let by_mmap = fd
        .and_then(|fd| rt::mmap(0, FILE_BYTES, PROT_READ, MAP_SHARED, fd, 0))
        .is_ok_and(|m| {
            let ok = (0..FILE_WORDS).all(|w| peek(m + 8 * w) == final_word(w, rounds));
            rt::munmap(m, FILE_BYTES).is_ok() && ok
        });
    c.check(
        "soak-final-mmap",
        by_mmap,
        "a fresh mapping shows a word that is not its owner's last value",
    );
    if let Ok(fd) = fd {
        let _ = rt::close(fd);
    }

    let d = |a: u64, b: u64| b.wrapping_sub(a);
    let evicted = d(file_before.evicted, file_after.evicted);
    let read = d(file_before.blocks_read, file_after.blocks_read);
    let written = d(file_before.written_back, file_after.written_back);
    // Blocks read ahead are read without a miss (a miss past the disk's data reads nothing:
    // this is at least how many were read ahead).
    let ahead = read.saturating_sub(d(file_before.misses, file_after.misses));
    println!(
        "{name}: file server: {read} blocks read (at least {ahead} ahead), {evicted} evicted, {written} written back, {} ObjectPage answers; cache {} of {} blocks",
        d(file_before.object_requests, file_after.object_requests),
        file_after.cached,
        file_after.budget
    );
    println!(
        "{name}: vm: {} faults, {} pages copied",
        d(vm_before.faults, vm_after.faults),
        d(vm_before.pages_copied, vm_after.pages_copied)
    );
    // Every round reads more blocks than the cache holds, so each one must evict: at least
    // one eviction and one block read again per round of every worker.
    let pressure = WORKERS * rounds;
    c.check(
        "soak-evicted",
        file_after.budget <= SMALL_CACHE && evicted >= pressure && read >= pressure && written > 0,
        "the page cache was not under pressure (more than 4 blocks, or too few evictions, reads or write-backs)",
    );
    c.check(
        "soak-vm-copied",
        d(vm_before.pages_copied, vm_after.pages_copied) >= pressure,
        "vm copied fewer pages than the rounds' private writes and fork children need",
    );
    println!("{name}: {} failures", c.failures);
    c.failures
}
