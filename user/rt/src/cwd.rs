//! The working directory. Relative paths given to `open`, `stat`, `unlink`, `mkdir`,
//! `opendir`, ... resolve against it (`proto::path::join`); at `/` (the start, and every
//! task that never changed it) they go to the file server as given, as before there was a
//! working directory. A task starts in the directory its environment's `PWD` names (an
//! absolute path; anything else is `/`); [`chdir`] changes it, and `spawn` and `exec`
//! pass it on as `PWD` (a `fork` child has its parent's memory, so its directory too).

use alloc::string::String;
use proto::Errno;
use proto::file::PATH_MAX;
use spin::Mutex;

/// The directory: an absolute path without `.`, `..` or empty parts, `/` for the root.
struct Cwd {
    buf: [u8; PATH_MAX],
    len: usize,
    /// Whether `PWD` has been read yet (at the first use: no heap, no call before it).
    loaded: bool,
}

static CWD: Mutex<Cwd> = Mutex::new(Cwd {
    buf: [0; PATH_MAX],
    len: 0,
    loaded: false,
});

impl Cwd {
    fn get(&mut self) -> &str {
        if !self.loaded {
            self.loaded = true;
            if let Some(pwd) = crate::env("PWD").filter(|p| p.starts_with('/')) {
                let path = proto::path::join("/", pwd);
                if path != "/" {
                    self.set(&path);
                }
            }
        }
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("/")
    }

    /// Sets it (a path too long to keep leaves it unchanged: `ENAMETOOLONG`).
    fn set(&mut self, path: &str) -> bool {
        let Some(to) = self.buf.get_mut(..path.len()) else {
            return false;
        };
        to.copy_from_slice(path.as_bytes());
        self.len = path.len();
        true
    }
}

/// `getcwd()`: the working directory, `/` for the root.
pub fn getcwd() -> String {
    let mut cwd = CWD.lock();
    match cwd.get() {
        "" => String::from("/"),
        path => String::from(path),
    }
}

/// `chdir(path)`: `path` (relative to the working directory, or absolute) becomes it.
/// `ENOENT` if it does not exist, `ENOTDIR` for a file, `ENAMETOOLONG` past
/// [`PATH_MAX`] bytes.
pub fn chdir(path: &str) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let to = {
        let mut cwd = CWD.lock();
        proto::path::join(cwd.get(), path)
    };
    if to.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    // The root always exists; anything else must be a directory.
    if to != "/" && !crate::file::stat(&to)?.is_dir {
        return Err(Errno::ENOTDIR);
    }
    let mut cwd = CWD.lock();
    let _ = cwd.get();
    if to == "/" {
        cwd.len = 0;
    } else if !cwd.set(&to) {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// `name` as the file server gets it: unchanged when absolute or when the working
/// directory is the root, else joined to the working directory.
pub(crate) fn resolve(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut cwd = CWD.lock();
    match cwd.get() {
        "" => None,
        dir => Some(proto::path::join(dir, name)),
    }
}

/// `PWD=<dir>` for a program `spawn` or `exec` starts, `None` at the root.
pub(crate) fn pwd_entry() -> Option<String> {
    let mut cwd = CWD.lock();
    match cwd.get() {
        "" => None,
        dir => Some(alloc::format!("PWD={dir}")),
    }
}
