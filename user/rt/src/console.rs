//! The console: a task's descriptors 0, 1 and 2 (`proto::console`), and `print!`,
//! `println!`, `eprint!` and `eprintln!`.
//!
//! A user task prints through descriptor 1 (`eprint!`: 2), that is through the console
//! server, which owns the UART: each macro call formats into a buffer here and sends it
//! in as few `Write`s as fit ([`proto::file::READ_MAX`] bytes each; one for any line of
//! that size), and the server sends it out a whole line at a time. `read(0, ...)` reads a
//! typed line ([`read`]).
//!
//! init and the servers print through the kernel's debug console instead (the `Console`
//! capability init has from the kernel and gives each server): init must be able to say
//! why the system stops, and the servers run below the console server (vm pages every
//! task, and the console server must not wait for anyone but init). A program without the
//! capability, or a task without a console server, prints nothing.

use crate::ipc::Client;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};
use proto::file::{AT_POSITION, READ_MAX};
use proto::{ConsoleRequest, ConsoleStats, Errno, FileRequest, task_slots};

/// The console server, for a user task.
pub(crate) const CONSOLE: Client = Client::at(task_slots::CONSOLE);

/// Where this program's kernel `Console` capability is (init and the servers; set by the
/// entry code for its role). `u64::MAX`: none, print through descriptor 1.
static KERNEL_CONSOLE: AtomicU64 = AtomicU64::new(abi::object::init_slots::CONSOLE);

/// Sets where the `Console` capability is.
pub(crate) fn set_console(cptr: u64) {
    KERNEL_CONSOLE.store(cptr, Ordering::Relaxed);
}

/// Prints through descriptors 1 and 2 (a user task).
pub(crate) fn use_descriptors() {
    KERNEL_CONSOLE.store(u64::MAX, Ordering::Relaxed);
}

/// Collects formatted text and hands it on in pieces as large as one message carries.
struct Console {
    buf: [u8; READ_MAX],
    len: usize,
    fd: u64,
}

impl Console {
    fn flush(&mut self) {
        let bytes = &self.buf[..self.len];
        match KERNEL_CONSOLE.load(Ordering::Relaxed) {
            // A console write fails only without the capability or the server: nothing
            // can be said then.
            u64::MAX => {
                if !bytes.is_empty() {
                    let _ = crate::file::write(self.fd, bytes);
                }
            }
            cptr => {
                let _ = libmk::debug_put_str(cptr, bytes);
            }
        }
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

/// Prints formatted text on descriptor `fd` (1 or 2; init and the servers: the kernel's
/// console). One call sends one message unless the text is longer than one carries.
pub fn print_to(fd: u64, args: fmt::Arguments<'_>) {
    let mut c = Console {
        buf: [0; READ_MAX],
        len: 0,
        fd,
    };
    let _ = c.write_fmt(args);
    c.flush();
}

/// Prints formatted text on standard output (used by the macros).
pub fn print(args: fmt::Arguments<'_>) {
    print_to(1, args);
}

/// `read(fd, buf)` of a console descriptor: one typed line (its newline included), or as
/// much of it as `buf` holds (the rest comes with the next read, as at most
/// [`READ_MAX`] bytes do at once); 0 at end of input (Ctrl-D on an empty line). Waits
/// while nothing is typed; `EINTR` if Ctrl-C is typed meanwhile.
///
/// A descriptor 0..2 that `dup2` redirected (`crate::file::redirected`) reads what it names
/// instead (a pipe, a file).
pub fn read(fd: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    if crate::file::redirected(fd) {
        return crate::file::read(fd, buf);
    }
    read_line(fd, buf)
}

/// One typed line from the console server, whatever 0..2 name.
pub(crate) fn read_line(fd: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    crate::file::read_once_on(CONSOLE.0, fd, AT_POSITION, buf)
}

/// Makes task `pid` the console's foreground task, the one Ctrl-C ends (0: none). Allowed
/// when there is none or this task is it (`EPERM` otherwise); the task's end makes it
/// none again.
pub fn set_foreground(pid: u64) -> Result<(), Errno> {
    ConsoleRequest::foreground(&CONSOLE, pid)
}

/// What the console server holds now (waiting readers, unfinished lines, typed input).
pub fn stats() -> Result<ConsoleStats, Errno> {
    ConsoleRequest::stats(&CONSOLE)
}

/// Writes `bytes` on descriptor `fd` without formatting (as `write`); the count.
pub fn write(fd: u64, bytes: &[u8]) -> Result<usize, Errno> {
    if !proto::console::owns_fd(fd) {
        return Err(Errno::EBADF);
    }
    crate::file::write(fd, bytes)
}

/// The file protocol's `Close` of a console descriptor (nothing to do: see
/// `proto::console`).
pub fn close(fd: u64) -> Result<(), Errno> {
    FileRequest::close(&CONSOLE, fd)
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

#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::console::print_to(2, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! eprintln {
    () => { $crate::console::print_to(2, format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::console::print_to(2, format_args!("{}\n", format_args!($($arg)*)))
    };
}
