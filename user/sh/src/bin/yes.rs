//! `yes [word...]`: prints `y` (or the words) line after line until it is ended or its
//! output fails (a pipe whose reader is gone: `EPIPE`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
rt::entry!(main);

#[cfg(target_os = "none")]
fn main(args: &[&str]) -> i32 {
    let mut line = alloc::string::String::new();
    for (i, w) in args.iter().skip(1).enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(w);
    }
    if args.len() < 2 {
        line.push('y');
    }
    line.push('\n');
    loop {
        if rt::file::write(1, line.as_bytes()).is_err() {
            return 1;
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
