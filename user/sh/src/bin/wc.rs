//! `wc [file...]`: lines, words and bytes of each file, or of the input without one.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
rt::entry!(main);

/// Lines, words, bytes, and whether the last byte was inside a word.
#[cfg(target_os = "none")]
#[derive(Default)]
struct Count {
    lines: u64,
    words: u64,
    bytes: u64,
    in_word: bool,
}

#[cfg(target_os = "none")]
impl Count {
    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.lines += 1;
            }
            let blank = b.is_ascii_whitespace();
            if !blank && !self.in_word {
                self.words += 1;
            }
            self.in_word = !blank;
        }
        self.bytes += bytes.len() as u64;
    }
}

/// Counts descriptor `fd` to its end.
#[cfg(target_os = "none")]
fn count(fd: u64) -> Result<Count, rt::Errno> {
    let mut c = Count::default();
    let mut buf = [0u8; 4096];
    loop {
        let n = rt::read(fd, &mut buf)?;
        if n == 0 {
            return Ok(c);
        }
        c.add(&buf[..n.min(buf.len())]);
    }
}

#[cfg(target_os = "none")]
fn main(args: &[&str]) -> i32 {
    use rt::{eprintln, println};
    if args.len() < 2 {
        return match count(0) {
            Ok(c) => {
                println!("{} {} {}", c.lines, c.words, c.bytes);
                0
            }
            Err(e) => {
                eprintln!("wc: {e:?}");
                1
            }
        };
    }
    let mut status = 0;
    for name in &args[1..] {
        match rt::open(name, rt::file::O_RDONLY).and_then(|fd| {
            let c = count(fd);
            let _ = rt::close(fd);
            c
        }) {
            Ok(c) => println!("{} {} {} {name}", c.lines, c.words, c.bytes),
            Err(e) => {
                eprintln!("wc: {name}: {e:?}");
                status = 1;
            }
        }
    }
    status
}

#[cfg(not(target_os = "none"))]
fn main() {}
