//! The C layer: what picolibc (the C library, `docs/c.md`) and C programs call, each a thin
//! wrapper over the runtime (`rt`), which stays the one implementation.
//!
//! A C program links this static library, `c/crt.c` (the standard streams, errno, TLS and the
//! start of `main`) and picolibc's `libc.a`. Here:
//! - the start: `rt::entry!` defines `_start`; the runtime starts the task as any other and
//!   calls [`start`], which copies argv and the environment into NUL-terminated strings and
//!   hands them to `__crt_start` (`c/crt.c`), which calls `main(argc, argv, envp)` and `exit`;
//! - the POSIX calls (`open`, `read`, `write`, `close`, `lseek`, `fork`, `execv`, `getpid`,
//!   `ftruncate`, `unlink`, `pipe`, `mmap`, `munmap`, `mprotect`, `msync`, `shm_open`,
//!   `shm_unlink`, `waitpid`, `_exit`, `sbrk`, ...): each checks what C can get wrong
//!   (null pointers, negative numbers, strings that are not UTF-8), translates picolibc's
//!   numbers into the runtime's and calls it; a failure sets `errno` (in picolibc's
//!   numbering) and returns -1 (`MAP_FAILED` for `mmap`).
//!
//! **Numbers.** The runtime speaks Linux's values (`proto`). picolibc's headers keep
//! newlib's for `O_*` and a few errno values (`ENOSYS` is 88 there, 38 in Linux): [`open_flags`]
//! and [`c_errno`] translate, and `c/crt.c` checks with `_Static_assert` that the headers
//! say what this file assumes. `PROT_*`, `MAP_*` and `MS_*` come from our
//! `include/sys/mman.h`, with the runtime's (Linux's) values, and pass through unchanged.
//!
//! Variadic C functions (`open(path, flags, ...)`) are defined here with their full argument
//! list: on AArch64 (AAPCS64, as Linux and picolibc use it) a variadic integer argument
//! travels in the same register as a named one.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::ffi::{CStr, c_char, c_int, c_void};
use core::sync::atomic::{AtomicU64, Ordering};
use rt::{Errno, WaitStatus};

rt::entry!(start);

/// `ssize_t`, `off_t`, `pid_t`, `mode_t` as picolibc defines them on AArch64.
type SSize = isize;
type Off = i64;
type Pid = c_int;
type Mode = u32;

/// The TLS block lives in the IPC buffer's page, past the buffer (`c/crt.c`, `link.ld`).
const _: () = assert!(core::mem::size_of::<abi::message::IpcBuffer>() <= 1024);

unsafe extern "C" {
    /// `c/crt.c`: sets up TLS, `environ` and the standard streams, calls `main` and `exit`.
    fn __crt_start(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> !;
    /// `c/crt.c`: `errno = e` (errno is a TLS variable only C code can name).
    fn __crt_set_errno(e: c_int);
    /// `c/crt.c`: copies the TLS block out (before `fork`) or back (in the child).
    fn __crt_tls_save(buf: *mut u8, len: usize) -> usize;
    fn __crt_tls_restore(buf: *const u8, len: usize);
}

/// The task's `main` (`rt::entry!`): C's argv and environment, then C's `main`.
fn start(args: &[&str]) -> i32 {
    let argv = c_strings(args.iter().copied());
    let envp = c_strings(rt::environ());
    // SAFETY: both arrays are NULL-terminated arrays of NUL-terminated strings that live
    // for the rest of the program (leaked), as C's `main` expects.
    unsafe { __crt_start(args.len() as c_int, argv, envp) }
}

/// `strings` as a NULL-terminated array of NUL-terminated copies, leaked (they live as long
/// as the program).
fn c_strings<'a>(strings: impl Iterator<Item = &'a str>) -> *const *const c_char {
    let mut ptrs: Vec<*const c_char> = Vec::new();
    for s in strings {
        let mut bytes = Vec::with_capacity(s.len() + 1);
        bytes.extend_from_slice(s.as_bytes());
        bytes.push(0);
        ptrs.push(bytes.leak().as_ptr().cast());
    }
    ptrs.push(core::ptr::null());
    ptrs.leak().as_ptr()
}

/// picolibc's number for `e` (newlib's `sys/errno.h`: Linux's below 35, its own above).
pub fn c_errno(e: Errno) -> c_int {
    match e {
        Errno::ENOSYS => 88,
        Errno::ENOTEMPTY => 90,
        Errno::ENAMETOOLONG => 91,
        Errno::ETIMEDOUT => 116,
        Errno::EINPROGRESS => 119,
        Errno::EOVERFLOW => 139,
        e => e as c_int,
    }
}

/// Sets `errno` to `e` and returns -1 (as `T`): how every call here fails.
fn fail<T: From<i8>>(e: Errno) -> T {
    // SAFETY: `__crt_set_errno` only stores into this thread's errno.
    unsafe { __crt_set_errno(c_errno(e)) };
    T::from(-1)
}

/// `Ok(v)` as `v`, `Err(e)` as errno and -1.
fn ret<T: From<i8>>(r: Result<T, Errno>) -> T {
    r.unwrap_or_else(fail)
}

/// A C string as `&str`: `EFAULT` for NULL, `ENOENT` for a name that is not UTF-8 (no file
/// or program here has one).
///
/// # Safety
///
/// `s` is NULL or a NUL-terminated string that stays valid and unchanged for `'a`.
unsafe fn c_str<'a>(s: *const c_char) -> Result<&'a str, Errno> {
    if s.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: the caller promises a NUL-terminated string valid for 'a.
    let s = unsafe { CStr::from_ptr(s) };
    s.to_str().map_err(|_| Errno::ENOENT)
}

/// A descriptor from C: negative ones are `EBADF`.
fn fd_of(fd: c_int) -> Result<u64, Errno> {
    u64::try_from(fd).map_err(|_| Errno::EBADF)
}

/// picolibc's `O_*` bits (newlib's `sys/_default_fcntl.h`) and the runtime's for each.
const OPEN_FLAGS: &[(c_int, u64)] = &[
    (0x0001, rt::O_WRONLY),
    (0x0002, rt::O_RDWR),
    (0x0040, rt::O_CREAT),
    (0x0200, rt::O_TRUNC),
    (0x0400, rt::O_APPEND),
    (0x0800, rt::O_EXCL),
    (0x2000, rt::O_SYNC),
    (0x4000, rt::O_NONBLOCK),
    (0x8000, rt::O_NOCTTY),
    (0x40000, rt::O_CLOEXEC),
    (0x80000, rt::O_DIRECT),
    (0x100000, rt::O_NOFOLLOW),
    (0x200000, rt::O_DIRECTORY),
];

/// C's `open` flags in the runtime's numbering; `EINVAL` for a bit picolibc does not define
/// or an access mode of 3.
pub fn open_flags(flags: c_int) -> Result<u64, Errno> {
    if flags & 3 == 3 {
        return Err(Errno::EINVAL);
    }
    let mut out = 0;
    let mut left = flags;
    for &(c, r) in OPEN_FLAGS {
        if flags & c != 0 {
            out |= r;
            left &= !c;
        }
    }
    if left != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(out)
}

/// `int open(const char *path, int flags, ...)`; `mode` is not used (FAT keeps no
/// permissions).
///
/// # Safety
///
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, _mode: Mode) -> c_int {
    // SAFETY: the caller's promise.
    let r = unsafe { c_str(path) }.and_then(|p| rt::open(p, open_flags(flags)?));
    ret(r.and_then(|fd| c_int::try_from(fd).map_err(|_| Errno::EMFILE)))
}

/// A C buffer of `len` bytes as a slice (`EFAULT` for NULL with a length, `EINVAL` past
/// `SSIZE_MAX`).
///
/// # Safety
///
/// `buf` is NULL or points to `len` bytes valid (and not otherwise referenced) for `'a`.
unsafe fn buffer<'a>(buf: *mut c_void, len: usize) -> Result<&'a mut [u8], Errno> {
    if len > isize::MAX as usize {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: the caller promises `len` valid bytes at `buf`.
    Ok(unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) })
}

/// `ssize_t read(int fd, void *buf, size_t count)`.
///
/// # Safety
///
/// `buf` is NULL or points to `count` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: usize) -> SSize {
    // SAFETY: the caller's promise.
    let r = fd_of(fd).and_then(|fd| rt::read(fd, unsafe { buffer(buf, count) }?));
    ret(r.map(|n| n as SSize))
}

/// `ssize_t write(int fd, const void *buf, size_t count)`.
///
/// # Safety
///
/// `buf` is NULL or points to `count` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: usize) -> SSize {
    // SAFETY: the caller's promise; the slice is only read.
    let r = fd_of(fd).and_then(|fd| rt::write(fd, unsafe { buffer(buf.cast_mut(), count) }?));
    ret(r.map(|n| n as SSize))
}

/// `ssize_t pread(int fd, void *buf, size_t count, off_t offset)`: the position stays.
///
/// # Safety
///
/// `buf` is NULL or points to `count` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pread(fd: c_int, buf: *mut c_void, count: usize, offset: Off) -> SSize {
    let Ok(offset) = u64::try_from(offset) else {
        return fail(Errno::EINVAL);
    };
    // SAFETY: the caller's promise.
    let r = fd_of(fd).and_then(|fd| rt::pread(fd, unsafe { buffer(buf, count) }?, offset));
    ret(r.map(|n| n as SSize))
}

/// `ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)`.
///
/// # Safety
///
/// `buf` is NULL or points to `count` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, count: usize, offset: Off) -> SSize {
    let Ok(offset) = u64::try_from(offset) else {
        return fail(Errno::EINVAL);
    };
    // SAFETY: the caller's promise; the slice is only read.
    let r =
        fd_of(fd).and_then(|fd| rt::pwrite(fd, unsafe { buffer(buf.cast_mut(), count) }?, offset));
    ret(r.map(|n| n as SSize))
}

/// `int close(int fd)`.
#[unsafe(no_mangle)]
pub extern "C" fn close(fd: c_int) -> c_int {
    ret(fd_of(fd).and_then(rt::close).map(|()| 0))
}

/// `off_t lseek(int fd, off_t offset, int whence)` (`SEEK_SET`, `SEEK_CUR`, `SEEK_END`:
/// 0, 1, 2, as everywhere).
#[unsafe(no_mangle)]
pub extern "C" fn lseek(fd: c_int, offset: Off, whence: c_int) -> Off {
    let whence = match whence {
        0 => rt::Whence::Set,
        1 => rt::Whence::Cur,
        2 => rt::Whence::End,
        _ => return fail(Errno::EINVAL),
    };
    let r = fd_of(fd).and_then(|fd| rt::lseek(fd, offset, whence));
    ret(r.and_then(|pos| Off::try_from(pos).map_err(|_| Errno::EOVERFLOW)))
}

/// `int ftruncate(int fd, off_t length)`: `EINVAL` for a negative length.
#[unsafe(no_mangle)]
pub extern "C" fn ftruncate(fd: c_int, length: Off) -> c_int {
    let Ok(length) = u64::try_from(length) else {
        return fail(Errno::EINVAL);
    };
    ret(fd_of(fd)
        .and_then(|fd| rt::ftruncate(fd, length))
        .map(|()| 0))
}

/// `int unlink(const char *path)`.
///
/// # Safety
///
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    // SAFETY: the caller's promise.
    ret(unsafe { c_str(path) }.and_then(rt::unlink).map(|()| 0))
}

/// `__crt_stat(path, &size, &is_dir)`: `c/crt.c` builds `struct stat` from it.
///
/// # Safety
///
/// `path` is NULL or a NUL-terminated string; `size` and `is_dir` point to writable values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __crt_stat(
    path: *const c_char,
    size: *mut u64,
    is_dir: *mut c_int,
) -> c_int {
    // SAFETY: the caller's promise.
    let r = unsafe { c_str(path) }.and_then(rt::stat);
    // SAFETY: the caller's promise.
    unsafe { stat_out(r, size, is_dir) }
}

/// `__crt_fstat(fd, &size, &kind)`, for `fstat` in `c/crt.c` (kind: 0 a file, 1 a
/// directory, 2 a pipe).
///
/// # Safety
///
/// `size` and `is_dir` point to writable values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __crt_fstat(fd: c_int, size: *mut u64, is_dir: *mut c_int) -> c_int {
    let r = if __crt_console(fd) == 1 {
        // The console's descriptors: a character device of no size.
        Ok(rt::Stat {
            size: 0,
            is_dir: false,
            is_fifo: false,
        })
    } else {
        fd_of(fd).and_then(rt::fstat)
    };
    // SAFETY: the caller's promise.
    unsafe { stat_out(r, size, is_dir) }
}

/// Writes a `stat` result out.
///
/// # Safety
///
/// `size` and `is_dir` point to writable values.
unsafe fn stat_out(r: Result<rt::Stat, Errno>, size: *mut u64, is_dir: *mut c_int) -> c_int {
    ret(r.map(|st| {
        // SAFETY: the caller's promise.
        unsafe {
            *size = st.size;
            // The kind, as `c/crt.c`'s `fill_stat` reads it: 1 a directory, 2 a pipe.
            *is_dir = if st.is_fifo {
                2
            } else {
                c_int::from(st.is_dir)
            };
        }
        0
    }))
}

/// Copies of the TLS block (errno and picolibc's per-thread state) across `fork`: the
/// child's IPC buffer page, which holds the block, is a fresh one.
static mut TLS_COPY: [u8; 3072] = [0; 3072];

/// `pid_t fork(void)`: the child's pid in the parent, 0 in the child (a copy-on-write copy
/// of the parent, `rt::fork`).
#[unsafe(no_mangle)]
pub extern "C" fn fork() -> Pid {
    // SAFETY: the task has one thread and nothing else touches `TLS_COPY`; the C side
    // copies at most `len` bytes.
    let saved = unsafe {
        let buf = &raw mut TLS_COPY;
        __crt_tls_save(buf.cast(), (*buf).len())
    };
    match rt::fork() {
        Ok(0) => {
            // SAFETY: as above; `saved` bytes were written by `__crt_tls_save`.
            unsafe { __crt_tls_restore((&raw const TLS_COPY).cast(), saved) };
            0
        }
        r => ret(r.and_then(|pid| Pid::try_from(pid).map_err(|_| Errno::EAGAIN))),
    }
}

/// A NULL-terminated `char *argv[]` as strings (`EFAULT` for NULL, `E2BIG` past
/// `proto::args::MAX_ARGS` strings: the runtime refuses more).
///
/// # Safety
///
/// `argv` is NULL or a NULL-terminated array of NUL-terminated strings.
unsafe fn strings<'a>(argv: *const *const c_char) -> Result<Vec<&'a str>, Errno> {
    if argv.is_null() {
        return Err(Errno::EFAULT);
    }
    let mut out = Vec::new();
    for i in 0.. {
        if i > rt::proto::args::MAX_ARGS {
            return Err(Errno::E2BIG);
        }
        // SAFETY: the array is NULL-terminated and this index is not past its NULL.
        let p = unsafe { *argv.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: the caller promises NUL-terminated strings; a non-UTF-8 one is EINVAL.
        out.push(unsafe { c_str(p) }.map_err(|_| Errno::EINVAL)?);
    }
    Ok(out)
}

/// The program a path names: `/bin/ls` and `bin/ls` are program `ls` (init runs `bin/<name>`
/// of the disk, else the initrd's `<name>`).
fn program(path: &str) -> &str {
    let p = path.trim_start_matches('/');
    p.strip_prefix("bin/").unwrap_or(p)
}

/// `int execv(const char *path, char *const argv[])`: returns only on failure.
///
/// # Safety
///
/// `path` is NULL or a NUL-terminated string; `argv` is NULL or a NULL-terminated array of
/// them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: the caller's promise.
    let r = unsafe { c_str(path) }.and_then(|p| {
        // SAFETY: the caller's promise.
        let argv = unsafe { strings(argv) }?;
        rt::execv(program(p), &argv)
    });
    match r {
        Ok(never) => match never {},
        Err(e) => fail(e),
    }
}

/// `int execve(const char *path, char *const argv[], char *const envp[])`.
///
/// # Safety
///
/// As [`execv`], and `envp` likewise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's promise.
    let r = unsafe { c_str(path) }.and_then(|p| {
        // SAFETY: the caller's promise.
        let (argv, envp) = unsafe { (strings(argv)?, strings(envp)?) };
        rt::execve(program(p), &argv, &envp)
    });
    match r {
        Ok(never) => match never {},
        Err(e) => fail(e),
    }
}

/// `pid_t getpid(void)`.
#[unsafe(no_mangle)]
pub extern "C" fn getpid() -> Pid {
    rt::getpid() as Pid
}

/// `pid_t getppid(void)`.
#[unsafe(no_mangle)]
pub extern "C" fn getppid() -> Pid {
    ret(rt::getppid().map(|p| p as Pid))
}

/// `int kill(pid_t pid, int sig)`: any signal ends task `pid` (there are no handlers);
/// signal 0 only asks whether it could (always yes for a positive pid here).
#[unsafe(no_mangle)]
pub extern "C" fn kill(pid: Pid, sig: c_int) -> c_int {
    let Ok(pid) = u64::try_from(pid) else {
        return fail(Errno::ESRCH);
    };
    match sig {
        0 => 0,
        1..=31 => ret(rt::kill(pid).map(|()| 0)),
        _ => fail(Errno::EINVAL),
    }
}

/// `int pipe(int fds[2])`: `fds[0]` the read end, `fds[1]` the write end
/// (`rt::file::pipe`). `EFAULT` for NULL.
///
/// # Safety
///
/// `fds` is NULL or points to two writable `int`s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    if fds.is_null() {
        return fail(Errno::EFAULT);
    }
    let r = rt::file::pipe().and_then(|[r, w]| {
        let r = c_int::try_from(r).map_err(|_| Errno::EMFILE)?;
        let w = c_int::try_from(w).map_err(|_| Errno::EMFILE)?;
        Ok((r, w))
    });
    match r {
        Ok((r, w)) => {
            // SAFETY: the caller's promise.
            unsafe {
                *fds = r;
                *fds.add(1) = w;
            }
            0
        }
        Err(e) => fail(e),
    }
}

/// `int dup(int fd)`: the lowest free descriptor from 3, naming what `fd` names.
#[unsafe(no_mangle)]
pub extern "C" fn dup(fd: c_int) -> c_int {
    let r = fd_of(fd).and_then(rt::file::dup);
    ret(r.and_then(|d| c_int::try_from(d).map_err(|_| Errno::EMFILE)))
}

/// `int dup2(int old, int new)`: `new` names what `old` names (0, 1 and 2 included:
/// `printf` then goes where `new` goes).
#[unsafe(no_mangle)]
pub extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    let r = fd_of(old).and_then(|o| rt::file::dup2(o, fd_of(new)?));
    ret(r.map(|_| new))
}

/// picolibc's signal numbers (`sys/signal.h`, checked in `c/crt.c`).
const SIGKILL: c_int = 9;
const SIGBUS: c_int = 10;
const SIGSEGV: c_int = 11;
/// `waitpid`'s `WNOHANG`.
const WNOHANG: c_int = 1;

/// How a child ended as C's `int` status (picolibc's `sys/wait.h`: the exit status in bits
/// 8..15, else the signal in bits 0..6): `WIFSIGNALED` with `SIGSEGV` or `SIGBUS` for vm's
/// faults, `SIGKILL` for `kill`.
pub fn wait_status(how: WaitStatus, value: u64) -> c_int {
    match how {
        WaitStatus::Exited => ((value & 0xff) as c_int) << 8,
        WaitStatus::Segv => SIGSEGV,
        WaitStatus::Bus => SIGBUS,
        WaitStatus::Killed => SIGKILL,
    }
}

/// `pid_t waitpid(pid_t pid, int *status, int options)`: `pid` -1 (or 0: there are no
/// process groups) waits for any child; `options` 0 or `WNOHANG` (then 0 while the child
/// runs). `ECHILD` if there is no such child, `EINVAL` for other options.
///
/// # Safety
///
/// `status` is NULL or points to a writable `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitpid(pid: Pid, status: *mut c_int, options: c_int) -> Pid {
    if options & !WNOHANG != 0 {
        return fail(Errno::EINVAL);
    }
    let which = match pid {
        -1 | 0 => u64::MAX,
        p if p > 0 => p as u64,
        _ => return fail(Errno::ECHILD),
    };
    let r = if options & WNOHANG != 0 {
        rt::try_wait(which)
    } else {
        rt::wait(which).map(Some)
    };
    match r {
        Ok(Some((child, how, value))) => {
            if !status.is_null() {
                // SAFETY: the caller's promise.
                unsafe { *status = wait_status(how, value) };
            }
            child as Pid
        }
        Ok(None) => 0,
        Err(e) => fail(e),
    }
}

/// `pid_t wait(int *status)`: `waitpid(-1, status, 0)`.
///
/// # Safety
///
/// As [`waitpid`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait(status: *mut c_int) -> Pid {
    // SAFETY: the caller's promise, passed on.
    unsafe { waitpid(-1, status, 0) }
}

/// `void _exit(int status)`: ends the task at once (picolibc's `exit` runs the `atexit`
/// functions, which flush the standard streams, and then calls this).
#[unsafe(no_mangle)]
pub extern "C" fn _exit(status: c_int) -> ! {
    rt::exit(status)
}

/// `mmap`'s `MAP_FAILED`.
const MAP_FAILED: *mut c_void = usize::MAX as *mut c_void;

/// `void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)`: `prot`
/// and `flags` in the runtime's (Linux's) values (`include/sys/mman.h`); `fd` -1 with
/// `MAP_ANONYMOUS`. `MAP_FAILED` and errno on failure (`EINVAL` for a negative offset).
#[unsafe(no_mangle)]
pub extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: Off,
) -> *mut c_void {
    let r = (|| {
        let offset = u64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let prot = u64::try_from(prot).map_err(|_| Errno::EINVAL)?;
        let flags = u64::try_from(flags).map_err(|_| Errno::EINVAL)?;
        let fd = if flags & rt::MAP_ANONYMOUS != 0 {
            rt::NO_FD
        } else {
            fd_of(fd)?
        };
        rt::mmap(addr as u64, len as u64, prot, flags, fd, offset)
    })();
    match r {
        Ok(a) => a as *mut c_void,
        Err(e) => {
            fail::<i8>(e);
            MAP_FAILED
        }
    }
}

/// `int munmap(void *addr, size_t len)`.
#[unsafe(no_mangle)]
pub extern "C" fn munmap(addr: *mut c_void, len: usize) -> c_int {
    ret(rt::munmap(addr as u64, len as u64).map(|()| 0))
}

/// `int mprotect(void *addr, size_t len, int prot)`.
#[unsafe(no_mangle)]
pub extern "C" fn mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int {
    let Ok(prot) = u64::try_from(prot) else {
        return fail(Errno::EINVAL);
    };
    ret(rt::mprotect(addr as u64, len as u64, prot).map(|()| 0))
}

/// `int msync(void *addr, size_t len, int flags)` (`MS_ASYNC`, `MS_SYNC`, `MS_INVALIDATE`).
#[unsafe(no_mangle)]
pub extern "C" fn msync(addr: *mut c_void, len: usize, flags: c_int) -> c_int {
    let Ok(flags) = u64::try_from(flags) else {
        return fail(Errno::EINVAL);
    };
    ret(rt::msync_flags(addr as u64, len as u64, flags).map(|()| 0))
}

/// `int shm_open(const char *name, int flags, mode_t mode)`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shm_open(name: *const c_char, flags: c_int, mode: Mode) -> c_int {
    // SAFETY: the caller's promise.
    let r = unsafe { c_str(name) }
        .and_then(|n| rt::shm_open(n, open_flags(flags)?, u64::from(mode)))
        .and_then(|fd| c_int::try_from(fd).map_err(|_| Errno::EMFILE));
    ret(r)
}

/// `int shm_unlink(const char *name)`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shm_unlink(name: *const c_char) -> c_int {
    // SAFETY: the caller's promise.
    ret(unsafe { c_str(name) }.and_then(rt::shm_unlink).map(|()| 0))
}

/// `int isatty(int fd)`: 1 for the console's descriptors 0, 1 and 2.
#[unsafe(no_mangle)]
pub extern "C" fn isatty(fd: c_int) -> c_int {
    if __crt_console(fd) == 1 {
        1
    } else {
        // ENOTTY
        // SAFETY: only stores into errno.
        unsafe { __crt_set_errno(25) };
        0
    }
}

/// 1 if `fd` is one of 0, 1 and 2 and still the console's (not redirected by `dup2`, here or
/// before the `fork` or `exec` that made this program), else 0.
#[unsafe(no_mangle)]
pub extern "C" fn __crt_console(fd: c_int) -> c_int {
    c_int::from((0..3).contains(&fd) && !rt::file::redirected(fd as u64))
}

/// The heap of `sbrk` (picolibc's `malloc` grows it): one anonymous mapping of this many
/// bytes, reserved at the first call; vm gives it pages as they are touched.
const HEAP_RESERVE: u64 = 256 << 20;

/// The heap's start and the break (0 before the first `sbrk`; a task has one thread).
static HEAP_BASE: AtomicU64 = AtomicU64::new(0);
static HEAP_BREAK: AtomicU64 = AtomicU64::new(0);

/// `void *sbrk(intptr_t incr)`: the old break, or `(void *)-1` with `ENOMEM` past
/// [`HEAP_RESERVE`] bytes (or below the heap's start).
#[unsafe(no_mangle)]
pub extern "C" fn sbrk(incr: isize) -> *mut c_void {
    match grow_break(incr) {
        Ok(old) => old as *mut c_void,
        Err(e) => {
            fail::<i8>(e);
            MAP_FAILED
        }
    }
}

fn grow_break(incr: isize) -> Result<u64, Errno> {
    let mut base = HEAP_BASE.load(Ordering::Relaxed);
    let mut brk = HEAP_BREAK.load(Ordering::Relaxed);
    if base == 0 {
        base = rt::mmap(
            0,
            HEAP_RESERVE,
            rt::PROT_READ | rt::PROT_WRITE,
            rt::MAP_PRIVATE | rt::MAP_ANONYMOUS,
            rt::NO_FD,
            0,
        )
        .map_err(|_| Errno::ENOMEM)?;
        brk = base;
        HEAP_BASE.store(base, Ordering::Relaxed);
    }
    let new = brk
        .checked_add_signed(incr as i64)
        .filter(|&n| n >= base && n <= base + HEAP_RESERVE)
        .ok_or(Errno::ENOMEM)?;
    HEAP_BREAK.store(new, Ordering::Relaxed);
    Ok(brk)
}

/// `uint64_t mk_instructions(void)`: the PMU's count of instructions retired (32 bits wide:
/// take differences with [`mk_instructions_between`]); counts only under QEMU `-icount`
/// (`make bench`). For measurements (`include/mk.h`).
#[unsafe(no_mangle)]
pub extern "C" fn mk_instructions() -> u64 {
    libmk::instructions_retired()
}

/// `uint64_t mk_instructions_between(uint64_t start, uint64_t end)`.
#[unsafe(no_mangle)]
pub extern "C" fn mk_instructions_between(start: u64, end: u64) -> u64 {
    libmk::instructions_between(start, end)
}

/// `uint64_t mk_cycles(void)`: the PMU's cycle counter.
#[unsafe(no_mangle)]
pub extern "C" fn mk_cycles() -> u64 {
    libmk::cycle_counter()
}

/// `void mk_counters(uint64_t *entries, uint64_t *switches)`: the kernel's counts of kernel
/// entries and address-space switches (this call is one of the entries).
///
/// # Safety
///
/// Both point to writable values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mk_counters(entries: *mut u64, switches: *mut u64) {
    let (e, s) = libmk::debug_counters();
    // SAFETY: the caller's promise.
    unsafe {
        *entries = e;
        *switches = s;
    }
}

/// `uint64_t mk_vm_faults(void)`: the page faults vm has served for this task (0 if vm does
/// not answer).
#[unsafe(no_mangle)]
pub extern "C" fn mk_vm_faults() -> u64 {
    rt::vm_stats().map_or(0, |s| s.faults)
}

/// `size_t __crt_copy_line(char *dst, const char *src, size_t len, int *found)`: `fgets`'s
/// step (`c/crt.c`): copies `src` up to and including the first newline, or all `len`
/// bytes, with the runtime's NEON scan (`bufio::copy_through`); the bytes copied, and
/// whether a newline ended them.
///
/// # Safety
///
/// `src` points to `len` readable bytes, `dst` to `len` writable ones that do not overlap
/// them, `found` to a writable `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __crt_copy_line(
    dst: *mut u8,
    src: *const u8,
    len: usize,
    found: *mut c_int,
) -> usize {
    if len == 0 {
        return 0;
    }
    // SAFETY: the caller's promise: two valid, disjoint ranges of `len` bytes.
    let (d, s) = unsafe {
        (
            core::slice::from_raw_parts_mut(dst, len),
            core::slice::from_raw_parts(src, len),
        )
    };
    let (n, nl) = bufio::copy_through(d, s, b'\n');
    // SAFETY: the caller's promise.
    unsafe { *found = c_int::from(nl) };
    n
}
