//! The working directory. Relative paths given to `open`, `stat`, `unlink`, `mkdir`,
//! `opendir`, ... resolve against it (`proto::path::join`); at `/` (the start, and every
//! task that never changed it) they go to the file server as given, as before there was a
//! working directory. A task starts in the directory its environment's `PWD` names (an
//! absolute path; anything else is `/`); [`chdir`] changes it, and `spawn` and `exec`
//! pass it on as `PWD` (a `fork` child has its parent's memory, so its directory too).
//!
//! Until a `chdir`, nothing here writes memory: the directory is read from the
//! environment each time. A `fork` child that `exec`s at once then copies no page for it
//! (scenario `proc-mmaptest`, `fork-exec-copies-little`).

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};
use proto::Errno;
use proto::file::PATH_MAX;
use spin::Mutex;

/// Whether [`chdir`] has set [`CWD`] (else `PWD` is the directory).
static SET: AtomicBool = AtomicBool::new(false);

/// The directory [`chdir`] set: an absolute path without `.`, `..` or empty parts, empty
/// for the root.
static CWD: Mutex<([u8; PATH_MAX], usize)> = Mutex::new(([0; PATH_MAX], 0));

/// Calls `f` with the working directory, `""` for the root.
fn with_cwd<R>(f: impl FnOnce(&str) -> R) -> R {
    if SET.load(Ordering::Relaxed) {
        let cwd = CWD.lock();
        let (buf, len) = &*cwd;
        return f(buf
            .get(..*len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or(""));
    }
    match crate::env("PWD").filter(|p| p.starts_with('/')) {
        None => f(""),
        Some(pwd) => {
            let path = proto::path::join("/", pwd);
            if path == "/" || path.len() >= PATH_MAX {
                f("")
            } else {
                f(&path)
            }
        }
    }
}

/// `getcwd()`: the working directory, `/` for the root.
pub fn getcwd() -> String {
    with_cwd(|dir| match dir {
        "" => String::from("/"),
        dir => String::from(dir),
    })
}

/// `chdir(path)`: `path` (relative to the working directory, or absolute) becomes it.
/// `ENOENT` if it does not exist, `ENOTDIR` for a file, `ENAMETOOLONG` past
/// [`PATH_MAX`] bytes.
pub fn chdir(path: &str) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let to = with_cwd(|dir| proto::path::join(if dir.is_empty() { "/" } else { dir }, path));
    if to.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    // The root always exists; anything else must be a directory.
    if to != "/" && !crate::file::stat(&to)?.is_dir {
        return Err(Errno::ENOTDIR);
    }
    let keep = if to == "/" { "" } else { to.as_str() };
    let mut cwd = CWD.lock();
    let (buf, len) = &mut *cwd;
    buf.get_mut(..keep.len())
        .ok_or(Errno::ENAMETOOLONG)?
        .copy_from_slice(keep.as_bytes());
    *len = keep.len();
    SET.store(true, Ordering::Relaxed);
    Ok(())
}

/// `name` as the file server gets it: unchanged when absolute or when the working
/// directory is the root, else joined to the working directory.
pub(crate) fn resolve(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    with_cwd(|dir| (!dir.is_empty()).then(|| proto::path::join(dir, name)))
}

/// `PWD=<dir>` for a program `spawn` or `exec` starts, `None` at the root.
pub(crate) fn pwd_entry() -> Option<String> {
    with_cwd(|dir| (!dir.is_empty()).then(|| alloc::format!("PWD={dir}")))
}
