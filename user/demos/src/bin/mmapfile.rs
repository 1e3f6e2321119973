//! Test of file mappings (vm's memory-object regions over the file server's page cache):
//! `big.dat` mapped privately and checked across its 16 MiB, the lecture's example (a
//! program's first four bytes through `mmap`), a private write that leaves the file alone,
//! a shared write that `pread` sees after `msync`, `EACCES` for a shared writable mapping
//! of a read-only descriptor, and `BUS` for a whole page past the end of a file. One
//! `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

use demos::Checks;
use rt::{
    Errno, MAP_PRIVATE, MAP_SHARED, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ, PROT_WRITE,
    WaitStatus, println,
};

rt::entry!(main);

const BIG_BYTES: u64 = 16 << 20;
const PAGE: u64 = 4096;

/// The 8-byte word at `addr`.
fn word(addr: u64) -> u64 {
    // SAFETY: callers pass an 8-aligned address inside a readable mapping vm made.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

fn byte(addr: u64) -> u8 {
    // SAFETY: callers pass an address inside a readable mapping vm made.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

fn set_byte(addr: u64, b: u8) {
    // SAFETY: callers pass an address inside a writable mapping vm made.
    unsafe { core::ptr::write_volatile(addr as *mut u8, b) }
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("mmapfile: files mapped through vm, pages from the file server's cache");

    c.run("mmap-big-private", || {
        let fd = rt::open("big.dat", O_RDONLY).map_err(|_| "open failed")?;
        let a = rt::mmap(0, BIG_BYTES, PROT_READ, MAP_PRIVATE, fd, 0).map_err(|_| "mmap failed")?;
        let s0 = rt::vm_stats().map_err(|_| "stats")?;
        let mut off = 0;
        while off < BIG_BYTES {
            if word(a + off) != off || word(a + off + 4088) != off + 4088 {
                return Err("a word does not hold its offset");
            }
            off += 37 * PAGE;
        }
        if word(a + BIG_BYTES - 8) != BIG_BYTES - 8 {
            return Err("the last word is wrong");
        }
        let s1 = rt::vm_stats().map_err(|_| "stats")?;
        println!(
            "mmapfile: checked big.dat across 16 MiB: {} faults, {} pages of vm's own",
            s1.faults - s0.faults,
            s1.pages_in_use - s0.pages_in_use
        );
        rt::munmap(a, BIG_BYTES).map_err(|_| "munmap failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        Ok(())
    });

    c.run("mmap-elf-magic", || {
        let fd = rt::open("bin/mmapfile", O_RDONLY).map_err(|_| "open failed")?;
        let a = rt::mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0).map_err(|_| "mmap failed")?;
        let m = [byte(a), byte(a + 1), byte(a + 2), byte(a + 3)];
        println!(
            "mmapfile: bin/mmapfile mapped at {a:#x} starts with {:#x} {:#x} {:#x} {:#x}",
            m[0], m[1], m[2], m[3]
        );
        rt::munmap(a, PAGE).map_err(|_| "munmap failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        if m != [0x7f, b'E', b'L', b'F'] {
            return Err("not the ELF magic");
        }
        Ok(())
    });

    c.run("mmap-private-write", || {
        let fd = rt::open("big.dat", O_RDONLY).map_err(|_| "open failed")?;
        let a = rt::mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, PAGE)
            .map_err(|_| "mmap failed")?;
        if word(a) != PAGE {
            return Err("the offset is not honoured");
        }
        set_byte(a, 0xaa);
        let mine = byte(a);
        let mut buf = [0u8; 8];
        rt::pread(fd, &mut buf, PAGE).map_err(|_| "pread failed")?;
        rt::munmap(a, 2 * PAGE).map_err(|_| "munmap failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        if mine != 0xaa {
            return Err("the write is not seen in the mapping");
        }
        if u64::from_le_bytes(buf) != PAGE {
            return Err("the file changed");
        }
        Ok(())
    });

    c.run("mmap-eacces", || {
        let fd = rt::open("big.dat", O_RDONLY).map_err(|_| "open failed")?;
        let r = rt::mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        rt::close(fd).map_err(|_| "close failed")?;
        match r {
            Err(Errno::EACCES) => Ok(()),
            _ => Err("not EACCES"),
        }
    });

    c.run("mmap-shared-write-msync", || {
        let fd = rt::open("MMAPW.DAT", O_RDWR | O_CREAT | O_TRUNC).map_err(|_| "open failed")?;
        let fill = [0x11u8; 512];
        for i in 0..16u64 {
            rt::file::pwrite(fd, &fill, i * 512).map_err(|_| "pwrite failed")?;
        }
        let a = rt::mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            .map_err(|_| "mmap failed")?;
        if byte(a + 100) != 0x11 {
            return Err("the mapping does not show the file");
        }
        set_byte(a + 100, 0x5a);
        set_byte(a + PAGE + 7, 0x5b);
        rt::msync(a, 2 * PAGE).map_err(|_| "msync failed")?;
        let mut buf = [0u8; 1];
        rt::pread(fd, &mut buf, 100).map_err(|_| "pread failed")?;
        let mut buf2 = [0u8; 1];
        rt::pread(fd, &mut buf2, PAGE + 7).map_err(|_| "pread failed")?;
        rt::munmap(a, 2 * PAGE).map_err(|_| "munmap failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        println!(
            "mmapfile: after msync pread sees {:#x} {:#x}",
            buf[0], buf2[0]
        );
        if (buf[0], buf2[0]) != (0x5a, 0x5b) {
            return Err("pread does not see the shared write");
        }
        Ok(())
    });

    c.run("mmap-msync-errors", || {
        if rt::msync(0x10_0000_0001, PAGE) != Err(Errno::EINVAL) {
            return Err("unaligned msync is not EINVAL");
        }
        if rt::msync(0x10_0000_0000, PAGE) != Err(Errno::ENOMEM) {
            return Err("msync of nothing is not ENOMEM");
        }
        Ok(())
    });

    c.run("mmap-bus-past-eof", || {
        let fd = rt::open("hello.txt", O_RDONLY).map_err(|_| "open failed")?;
        let a = rt::mmap(0, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0).map_err(|_| "mmap failed")?;
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            // A whole page past the end of the file (not at its start: wait must report
            // the address touched, not its page).
            let _ = byte(a + PAGE + 0x123);
            rt::exit(0);
        }
        let ended = rt::wait(child);
        rt::munmap(a, 2 * PAGE).map_err(|_| "munmap failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        match ended {
            Ok((p, WaitStatus::Bus, addr)) if p == child && addr == a + PAGE + 0x123 => Ok(()),
            Ok((_, WaitStatus::Bus, addr)) => {
                println!(
                    "mmapfile: BUS at {addr:#x}, touched {:#x}",
                    a + PAGE + 0x123
                );
                Err("the child was not killed with BUS at the address it touched")
            }
            _ => Err("the child was not killed with BUS"),
        }
    });

    println!("mmapfile: {} failures", c.failures);
    c.failures
}
