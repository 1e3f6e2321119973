//! The second boot of the `writeback` demo: on the same disk image, `WB.DAT` must hold what
//! the first boot wrote through its shared mapping (at `msync`, at `munmap`, at exit), read
//! back with `read` and with a fresh mapping. One `PASS`/`FAIL` line per check; exits with
//! the number of failures.
#![no_std]
#![no_main]

use demos::writeback::{BYTES, FILE, byte};
use demos::{Checks, PAGE};
use rt::{MAP_PRIVATE, O_RDONLY, PROT_READ, println};

rt::entry!(main);

fn main() -> i32 {
    let mut c = Checks::default();
    println!(
        "writeback-check: a new boot: is what writeback wrote through its mapping on the disk?"
    );
    c.run("writeback-check-size", || {
        let st = rt::stat(FILE).map_err(|_| "stat failed (no file?)")?;
        println!("writeback-check: {FILE} is {} bytes", st.size);
        if st.size == BYTES {
            Ok(())
        } else {
            Err("the size is wrong")
        }
    });
    c.run("writeback-check-read", || {
        let fd = rt::open(FILE, O_RDONLY).map_err(|_| "open failed")?;
        let mut buf = [0u8; 4096];
        let mut at = 0u64;
        loop {
            let n = rt::read(fd, &mut buf).map_err(|_| "read failed")?;
            if n == 0 {
                break;
            }
            if !buf[..n]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == byte(at + i as u64))
            {
                return Err("a byte differs");
            }
            at += n as u64;
        }
        rt::close(fd).map_err(|_| "close failed")?;
        println!("writeback-check: read() returned {at} bytes, each as written");
        if at == BYTES {
            Ok(())
        } else {
            Err("short file")
        }
    });
    c.run("writeback-check-mmap", || {
        let fd = rt::open(FILE, O_RDONLY).map_err(|_| "open failed")?;
        let len = BYTES.div_ceil(PAGE) * PAGE;
        let a = rt::mmap(0, len, PROT_READ, MAP_PRIVATE, fd, 0).map_err(|_| "mmap failed")?;
        let ok = (0..BYTES).all(|i| {
            // SAFETY: `a + i` is inside the readable mapping just made.
            byte(i) == unsafe { core::ptr::read_volatile((a + i) as *const u8) }
        });
        rt::munmap(a, len).map_err(|_| "munmap failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        println!("writeback-check: a new mapping shows the same {BYTES} bytes: {ok}");
        if ok { Ok(()) } else { Err("a byte differs") }
    });
    println!("writeback-check: {} failures", c.failures);
    c.failures
}
