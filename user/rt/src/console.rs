//! `print!` and `println!` on the kernel's debug console, through the `Console` capability
//! every program is given (init: from the kernel; servers and tasks: a copy init puts in
//! their CNode). A program without one prints nothing.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

/// Where this program's `Console` capability is (set by the entry code for its role).
static CONSOLE: AtomicU64 = AtomicU64::new(abi::object::init_slots::CONSOLE);

/// Sets where the `Console` capability is.
pub(crate) fn set_console(cptr: u64) {
    CONSOLE.store(cptr, Ordering::Relaxed);
}

/// Collects formatted text and hands it to the kernel in system-call-sized pieces.
struct Console {
    buf: [u8; 256],
    len: usize,
}

impl Console {
    fn flush(&mut self) {
        // A console write fails only without the capability: nothing can be said then.
        let _ = libmk::debug_put_str(CONSOLE.load(Ordering::Relaxed), &self.buf[..self.len]);
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
