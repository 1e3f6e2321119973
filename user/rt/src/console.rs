//! `print!` and `println!` on the kernel's debug console.

use core::fmt::{self, Write};

/// Collects formatted text and hands it to the kernel in system-call-sized pieces.
struct Console {
    buf: [u8; 256],
    len: usize,
}

impl Console {
    fn flush(&mut self) {
        // A console write can only fail for a bad length, which `debug_put_str` never sends.
        let _ = libmk::debug_put_str(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Prints formatted text (used by the macros); one line per call reaches the kernel whole
/// unless it is longer than the buffer.
pub fn print(args: fmt::Arguments<'_>) {
    let mut c = Console {
        buf: [0; 256],
        len: 0,
    };
    let _ = c.write_fmt(args);
    c.flush();
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
