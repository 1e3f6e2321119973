//! `diskcheck` (boot scenarios `disk-*`: a disk copy the tools damaged before the boot):
//! whatever is wrong with the disk, the system boots, programs run from the initrd, and
//! every file call returns. It prints what each call returned (the scenario checks the
//! lines for its damage) and one `PASS`/`FAIL` line per check; exits with the number of
//! failures.
#![no_std]
#![no_main]

use demos::Checks;
use rt::proto::WaitStatus;
use rt::{O_RDONLY, println};

rt::entry!(main);

fn main() -> i32 {
    let mut c = Checks::default();
    println!("diskcheck: file calls on a damaged disk");

    c.run("diskcheck-spawn", || {
        let child = rt::spawn("hello").map_err(|_| "spawn of hello failed")?;
        match rt::wait(child) {
            Ok((_, WaitStatus::Exited, 3)) => Ok(()),
            _ => Err("hello did not exit with 3"),
        }
    });

    // Each of these returns: a directory walk, a file's chain, a lookup of a missing name.
    for name in ["hello.txt", "bin/hello", "bin/no-such-file", "big.dat"] {
        println!(
            "diskcheck: stat({name:?}) = {:?}",
            rt::stat(name).map(|s| s.size)
        );
    }
    let read = rt::open("big.dat", O_RDONLY).map(|fd| {
        let mut buf = [0u8; 4096];
        let mut total = 0u64;
        let end = loop {
            match rt::read(fd, &mut buf) {
                Ok(0) => break Ok(total),
                Ok(_) if total >= 1 << 20 => break Ok(total),
                Ok(n) => total += n as u64,
                Err(e) => break Err(e),
            }
        };
        let _ = rt::close(fd);
        end
    });
    println!("diskcheck: reading 1 MiB of big.dat = {read:?}");
    c.check("diskcheck-calls-return", true, "");

    println!("diskcheck: {} failures", c.failures);
    c.failures
}
