//! Demo: the lecture's slides "Memory-Mapped File: Example" and "Memory-Mapped File". The
//! slide's program (`open("/bin/ls")`, `mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0)`, print
//! the first four bytes) on a program of our disk, then what the implementation slide says:
//! the pages of a mapping are invalid until touched, and the first touch makes the pager
//! (the file server) bring them in. Here a fault brings in a whole 64 KiB block (16 pages:
//! fault-around), which vm's counters show on the 16 MiB `big.dat`. One `PASS`/`FAIL` line
//! per check; exits with the number of failures.
//!
//! `mmap-file [file]`: step 1 maps `file` instead of `bin/hello` (its first four bytes are
//! then checked against `pread` instead of the ELF magic); a file that cannot be opened, a
//! directory or an empty file is a usage error (status 2).
#![no_std]
#![no_main]

extern crate alloc;

use demos::cmdline::usage;
use demos::{Checks, Delta, PAGE, peek, prefault, stats};
use rt::{MAP_SHARED, O_RDONLY, PROT_READ, println};

rt::entry!(main);

/// The program the slide's example maps (the slide maps `/bin/ls`).
const PROGRAM: &str = "bin/hello";
const USAGE: &str = "mmap-file [file]   (the file step 1 maps; default bin/hello)";
const BIG_BYTES: u64 = 16 << 20;
/// The file server's unit: one fault brings in this much (`proto::object::BLOCK_SIZE`).
const BLOCK: u64 = rt::proto::object::BLOCK_SIZE;
const PAGES_PER_BLOCK: u64 = BLOCK / PAGE;
/// How much of `big.dat` step 3 touches, page by page.
const TOUCHED: u64 = 1 << 20;

fn byte(addr: u64) -> u8 {
    // SAFETY: callers pass an address inside a readable mapping vm made.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

fn main(args: &[&str]) -> i32 {
    if args.len() > 2 {
        return usage("mmap-file: too many arguments", USAGE);
    }
    let file = args.get(1).copied().unwrap_or(PROGRAM);
    if file != PROGRAM {
        match rt::stat(file) {
            Ok(st) if st.is_dir => {
                return usage(&alloc::format!("mmap-file: {file} is a directory"), USAGE);
            }
            Ok(st) if st.size == 0 => {
                return usage(
                    &alloc::format!("mmap-file: {file} is empty: no byte to map"),
                    USAGE,
                );
            }
            Ok(_) => {}
            Err(e) => return usage(&alloc::format!("mmap-file: cannot open {file}: {e}"), USAGE),
        }
    }
    run(file)
}

fn run(file: &str) -> i32 {
    let mut c = Checks::default();
    println!("mmap-file: the lecture's memory-mapped file: file I/O with loads instead of read()");
    println!("mmap-file: vm (the address-space server) keeps the region; the file server, a");
    println!("mmap-file: user-space pager, supplies the pages from its page cache on demand.");
    // Only the mapping's pages must move vm's counters below.
    prefault();

    println!();
    println!("mmap-file: step 1: the slide's program, with {file} for /bin/ls");
    println!("mmap-file:   int fd = open(\"{file}\", O_RDONLY);");
    let fd = match rt::open(file, O_RDONLY) {
        Ok(fd) => fd,
        Err(e) => {
            println!("mmap-file:   -> -1 ({e})");
            c.check("mmap-file-open", false, "open failed");
            return c.failures;
        }
    };
    println!("mmap-file:   -> {fd}");
    // What read() gives (bytes past the end read as 0), for a file other than the slide's:
    // read before vm's counters are taken (read() maps a window of the page cache too).
    let mut head = [0u8; 4];
    let head_read = file != PROGRAM && rt::pread(fd, &mut head, 0).is_ok();
    let s0 = stats();
    println!("mmap-file:   char *p = (char *) mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0);");
    let p = rt::mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0);
    println!("mmap-file:   -> {}", demos::Mapped(p));
    let Ok(p) = p else {
        c.check("mmap-file-mmap", false, "mmap failed");
        return c.failures;
    };
    let s1 = stats();
    let d = Delta::between(&s0, &s1);
    println!("mmap-file:   vm: {d}");
    println!("mmap-file:   mmap only recorded a region (file, offset 0, 1 page): the page is");
    println!("mmap-file:   invalid, nothing was read.");
    c.check(
        "mmap-file-lazy",
        d.faults == 0,
        "mmap faulted a page in before it was touched",
    );

    println!(
        "mmap-file:   printf(\"0x%02x 0x%02x 0x%02x 0x%02x\\n\", *p, *(p+1), *(p+2), *(p+3));"
    );
    let magic = [byte(p), byte(p + 1), byte(p + 2), byte(p + 3)];
    println!(
        "mmap-file:   {:#04x} {:#04x} {:#04x} {:#04x}",
        magic[0], magic[1], magic[2], magic[3]
    );
    let s2 = stats();
    let d = Delta::between(&s1, &s2);
    println!("mmap-file:   vm: {d}");
    println!("mmap-file:   the first load faulted once: vm asked the file server for the block,");
    if file == PROGRAM {
        println!(
            "mmap-file:   mapped its frame and restarted the load. 0x7f 'E' 'L' 'F' is the ELF"
        );
        println!("mmap-file:   magic every program file starts with. pages in use did not move:");
        println!("mmap-file:   the frame is the file server's page cache, not a copy of vm's.");
        c.check(
            "mmap-file-elf-magic",
            magic == [0x7f, b'E', b'L', b'F'],
            "the first four bytes are not 0x7f 0x45 0x4c 0x46",
        );
    } else {
        println!(
            "mmap-file:   mapped its frame and restarted the load. pages in use did not move:"
        );
        println!("mmap-file:   the frame is the file server's page cache, not a copy of vm's.");
        c.check(
            "mmap-file-first-bytes",
            head_read && magic == head,
            "the mapping's first four bytes differ from what pread reads",
        );
    }
    c.check(
        "mmap-file-first-touch-faults",
        d.faults == 1 && d.pages_in_use == 0,
        "the first touch did not fault exactly once, or used vm's memory",
    );
    println!("mmap-file:   close(fd);  // the mapping stays valid after close");
    let closed = rt::close(fd).is_ok();
    let more = (4..64).fold(0u8, |x, i| x ^ byte(p + i));
    core::hint::black_box(more);
    let s3 = stats();
    c.check(
        "mmap-file-close-keeps-mapping",
        closed && Delta::between(&s2, &s3).faults == 0,
        "close failed, or the page had to be brought in again",
    );
    c.check(
        "mmap-file-munmap",
        rt::munmap(p, PAGE).is_ok(),
        "munmap failed",
    );

    println!();
    println!("mmap-file: step 2: a bigger file: big.dat (16 MiB; each 8-byte word = its offset)");
    let big = rt::open("big.dat", O_RDONLY)
        .and_then(|fd| rt::mmap(0, BIG_BYTES, PROT_READ, MAP_SHARED, fd, 0).map(|a| (fd, a)));
    let Ok((bfd, a)) = big else {
        c.check(
            "mmap-file-big-mmap",
            false,
            "open or mmap of big.dat failed",
        );
        return c.failures;
    };
    let s4 = stats();
    println!(
        "mmap-file:   mmap(0, 16 MiB, PROT_READ, MAP_SHARED, fd, 0) -> {a:#x}; vm: {}",
        Delta::between(&s3, &s4)
    );
    println!("mmap-file:   16 MiB of address space, not one page read.");

    println!("mmap-file:   touch page 0: word 0 = {}", peek(a));
    let s5 = stats();
    let d0 = Delta::between(&s4, &s5);
    println!("mmap-file:   vm: {d0}");
    let mut ok = true;
    for page in 1..PAGES_PER_BLOCK {
        ok &= peek(a + page * PAGE) == page * PAGE;
    }
    let s6 = stats();
    let d1 = Delta::between(&s5, &s6);
    println!(
        "mmap-file:   touch pages 1..{PAGES_PER_BLOCK} (the rest of the first 64 KiB): vm: {d1}"
    );
    println!("mmap-file:   no fault: the first fault mapped the whole block around it, 16 pages");
    println!("mmap-file:   at once (fault-around, as Linux does with 64 KiB).");
    c.check(
        "mmap-file-fault-around",
        ok && d0.faults == 1 && d1.faults == 0,
        "the first block did not come in with one fault",
    );

    println!();
    println!(
        "mmap-file: step 3: touch every page of the first {} KiB and check its words",
        TOUCHED / 1024
    );
    let mut ok = true;
    let mut at = 0;
    while at < TOUCHED {
        ok &= peek(a + at) == at && peek(a + at + PAGE - 8) == at + PAGE - 8;
        at += PAGE;
    }
    let s7 = stats();
    let d = Delta::between(&s6, &s7);
    let pages = TOUCHED / PAGE;
    let blocks = TOUCHED / BLOCK;
    println!("mmap-file:   {pages} pages touched, every word holds its offset: {ok}; vm: {d}");
    println!(
        "mmap-file:   {} faults for {pages} pages: one per 64 KiB block after the first",
        d.faults
    );
    c.check(
        "mmap-file-pages-on-touch",
        ok && d.faults == (blocks - 1) as i64 && d.pages_in_use == 0,
        "touching 1 MiB did not take one fault per new 64 KiB block",
    );
    let last = peek(a + BIG_BYTES - 8);
    let s8 = stats();
    println!(
        "mmap-file:   the last word, 16 MiB in: {last:#x} (vm: {})",
        Delta::between(&s7, &s8)
    );
    println!("mmap-file:   the other 15 MiB were never read: pages arrive only when touched.");
    c.check(
        "mmap-file-last-word",
        last == BIG_BYTES - 8 && Delta::between(&s7, &s8).faults == 1,
        "the last word is wrong or did not take one fault",
    );
    c.check(
        "mmap-file-big-unmapped",
        rt::munmap(a, BIG_BYTES).is_ok() && rt::close(bfd).is_ok(),
        "munmap or close failed",
    );
    println!("mmap-file: {} failures", c.failures);
    c.failures
}
