//! The kernel console: one PL011 behind a lock, and the `kprint!`/`kprintln!` macros.

use crate::drivers::pl011::Pl011;
use core::fmt::{self, Write};
use spin::Mutex;

static CONSOLE: Mutex<Option<Pl011>> = Mutex::new(None);

/// Makes `uart` the console.
pub fn set(uart: Pl011) {
    uart.init();
    *CONSOLE.lock() = Some(uart);
}

struct Writer<'a>(&'a Pl011);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes_to(self.0, s.as_bytes());
        Ok(())
    }
}

fn write_bytes_to(uart: &Pl011, bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            uart.write_byte(b'\r');
        }
        uart.write_byte(b);
    }
}

/// Prints formatted text (used by the macros). Output before the console exists is dropped.
pub fn print(args: fmt::Arguments<'_>) {
    if let Some(uart) = CONSOLE.lock().as_ref() {
        let _ = Writer(uart).write_fmt(args);
    }
}

/// Prints raw bytes, as a user task sent them.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(uart) = CONSOLE.lock().as_ref() {
        write_bytes_to(uart, bytes);
    }
}

/// Waits until the UART has sent everything (before power-off).
pub fn flush() {
    if let Some(uart) = CONSOLE.lock().as_ref() {
        uart.flush();
    }
}

/// Takes the console away from whoever holds it, for the fatal paths (panic, kernel
/// exception) that may have interrupted a print and never return to it.
pub fn seize() {
    if CONSOLE.is_locked() {
        // SAFETY: the kernel runs on one core with interrupts masked, so a held lock belongs
        // to code that this fatal path interrupted and that will never run again.
        unsafe { CONSOLE.force_unlock() };
    }
}

#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! kprintln {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
