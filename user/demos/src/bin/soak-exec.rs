//! `soak-exec`: what the `soak` workers start from the disk, over and over, while the page
//! cache evicts all the time (`demos::soak`). It checks itself and exits with
//! `EXEC_STATUS` (42) when everything holds, else with the number of problems (at most 40):
//! - its table of 128 KiB in read-only data (two blocks of the cache), built by the
//!   compiler from `exec_word`, holds what `exec_word` computes now;
//! - every byte of its read-only segments (its text, the instructions it is running, and
//!   the read-only data), read as data, is the byte of its file `bin/soak-exec` there
//!   (`pread` of the program headers and the segments).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use demos::soak::{EXEC_PROGRAM, EXEC_STATUS, EXEC_TABLE_WORDS, exec_word};
use rt::{O_RDONLY, println};

rt::entry!(main);

static TABLE: [u32; EXEC_TABLE_WORDS] = table();

const fn table() -> [u32; EXEC_TABLE_WORDS] {
    let mut t = [0; EXEC_TABLE_WORDS];
    let mut i = 0;
    while i < EXEC_TABLE_WORDS {
        t[i] = exec_word(i as u64);
        i += 1;
    }
    t
}

/// ELF: `PT_LOAD`, and the segment flag that makes it writable.
const PT_LOAD: u32 = 1;
const PF_W: u32 = 2;
/// Program headers looked at, at most.
const MAX_PHDRS: usize = 16;

fn byte(addr: u64) -> u8 {
    // SAFETY: callers pass an address inside one of this program's loaded segments, which
    // vm keeps mapped readable for the program's life.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, |s| u64::from(u16::from_le_bytes(s)))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Bytes of the read-only segments that differ from the file (or 1 if it cannot be read);
/// the first difference is printed.
fn check_image() -> u64 {
    let path = alloc::format!("bin/{EXEC_PROGRAM}");
    let Ok(fd) = rt::open(&path, O_RDONLY) else {
        println!("soak-exec: cannot open {path}");
        return 1;
    };
    let mut header = [0u8; 64];
    if rt::pread(fd, &mut header, 0) != Ok(64) || header[..4] != *b"\x7fELF" {
        println!("soak-exec: {path} has no ELF header");
        return 1;
    }
    let (phoff, phentsize, phnum) = (
        u64_at(&header, 0x20),
        u16_at(&header, 0x36),
        u16_at(&header, 0x38),
    );
    let mut phdrs = vec![0u8; (phentsize * phnum) as usize];
    if phentsize < 56
        || phnum as usize > MAX_PHDRS
        || rt::pread(fd, &mut phdrs, phoff) != Ok(phdrs.len())
    {
        println!("soak-exec: cannot read the program headers of {path}");
        return 1;
    }
    let mut bad = 0u64;
    let mut buf = vec![0u8; 4096];
    for i in 0..phnum as usize {
        let ph = &phdrs[i * phentsize as usize..];
        if u32_at(ph, 0) != PT_LOAD || u32_at(ph, 4) & PF_W != 0 {
            continue;
        }
        let (offset, vaddr, filesz) = (u64_at(ph, 8), u64_at(ph, 16), u64_at(ph, 32));
        let mut done = 0;
        while done < filesz {
            let n = (filesz - done).min(buf.len() as u64) as usize;
            if rt::pread(fd, &mut buf[..n], offset + done) != Ok(n) {
                println!("soak-exec: pread of {path} at {:#x} failed", offset + done);
                return bad + 1;
            }
            for (j, &want) in buf[..n].iter().enumerate() {
                let at = vaddr + done + j as u64;
                let saw = byte(at);
                if saw != want {
                    if bad == 0 {
                        println!("soak-exec: byte at {at:#x} is {saw:#x}, the file has {want:#x}");
                    }
                    bad += 1;
                }
            }
            done += n as u64;
        }
    }
    let _ = rt::close(fd);
    bad
}

fn main() -> i32 {
    let mut bad = 0u64;
    for (i, entry) in TABLE.iter().enumerate() {
        // SAFETY: `entry` is a reference into the static table.
        let v = unsafe { core::ptr::read_volatile(entry) };
        let want = exec_word(core::hint::black_box(i as u64));
        if v != want {
            if bad == 0 {
                println!("soak-exec: table word {i} is {v:#x}, want {want:#x}");
            }
            bad += 1;
        }
    }
    bad += check_image();
    if bad == 0 {
        EXEC_STATUS
    } else {
        println!("soak-exec: {bad} bytes or words differ");
        bad.min(40) as i32
    }
}
