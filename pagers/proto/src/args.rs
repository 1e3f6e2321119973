//! A task's arguments and environment as they travel (docs/pagers.md, "Arguments and
//! environment"): an *argument area* of [`AREA_BYTES`] holding a header and the strings.
//!
//! Every task has two such areas, frames init gives it: its own arguments at
//! [`USER_ARGS`](crate::USER_ARGS) (read-only; init writes them before the program starts),
//! and an outgoing one at [`USER_ARGS_OUT`](crate::USER_ARGS_OUT) (read-write), where its
//! runtime puts the arguments of a `spawn` or `exec` before it asks init (`SpawnArgs`,
//! `ExecArgs`). init reads the outgoing area through its own mapping of the frame: the
//! request carries no address and no length, so there is no pointer into the caller's
//! memory to trust, and every length is the header's, checked here ([`Args::decode`]) on a
//! copy init made first.
//!
//! Layout (little-endian):
//!
//! ```text
//!   0  u32 argc     strings of argv
//!   4  u32 envc     strings of the environment ("NAME=value")
//!   8  u32 len      bytes of strings after the header
//!  12  u32 MAGIC
//!  16  argv[0] NUL argv[1] NUL ... envp[0] NUL ...   (len bytes, UTF-8)
//! ```
//!
//! Limits, as POSIX `execve` has them: at most [`MAX_ARGS`] strings and [`ARG_MAX`] bytes
//! (each string counted with its NUL), else `E2BIG`. argv holds at least one string (its
//! program name, by custom); environment strings are `NAME=value` with a non-empty name.

use crate::Errno;

/// Bytes of argv and environment strings, each counted with its terminating NUL (POSIX's
/// `_POSIX_ARG_MAX`, the least it allows).
pub const ARG_MAX: usize = 4096;
/// Strings in argv and the environment together.
pub const MAX_ARGS: usize = 256;
/// The header before the strings.
pub const HEADER_BYTES: usize = 16;
/// An argument area: the header and [`ARG_MAX`] bytes, in whole pages (two).
pub const AREA_BYTES: usize = 8192;
/// log2 of [`AREA_BYTES`]: the size of the frames init gives each task.
pub const AREA_BITS: u64 = 13;
/// The header's fourth word: an area that does not hold it holds no arguments.
pub const MAGIC: u32 = u32::from_le_bytes(*b"ARGV");

/// Arguments and environment decoded from an area (borrowing its strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args<'a> {
    argc: usize,
    envc: usize,
    /// The strings, each followed by its NUL.
    strings: &'a str,
}

fn u32_at(b: &[u8], at: usize) -> Result<usize, Errno> {
    b.get(at..at + 4)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map(|w| u32::from_le_bytes(w) as usize)
        .ok_or(Errno::EINVAL)
}

/// Whether `s` is an environment string: `NAME=value`, the name not empty.
fn is_env(s: &str) -> bool {
    s.find('=').is_some_and(|i| i > 0)
}

impl<'a> Args<'a> {
    /// The arguments an area holds. `E2BIG` when its header counts more than [`MAX_ARGS`]
    /// strings or more than [`ARG_MAX`] bytes (or bytes past the area); `EINVAL` when the
    /// area is short, the magic word is missing, the strings are not UTF-8, their NULs do
    /// not make exactly `argc + envc` strings ending at `len`, argv is empty, or an
    /// environment string is not `NAME=value`. Never panics, whatever the bytes.
    pub fn decode(area: &'a [u8]) -> Result<Self, Errno> {
        let argc = u32_at(area, 0)?;
        let envc = u32_at(area, 4)?;
        let len = u32_at(area, 8)?;
        if u32_at(area, 12)? != MAGIC as usize {
            return Err(Errno::EINVAL);
        }
        if argc.saturating_add(envc) > MAX_ARGS || len > ARG_MAX {
            return Err(Errno::E2BIG);
        }
        let bytes = area
            .get(HEADER_BYTES..HEADER_BYTES + len)
            .ok_or(Errno::E2BIG)?;
        let strings = core::str::from_utf8(bytes).map_err(|_| Errno::EINVAL)?;
        let nuls = bytes.iter().filter(|&&b| b == 0).count();
        if argc == 0 || nuls != argc + envc || bytes.last() != Some(&0) {
            return Err(Errno::EINVAL);
        }
        let args = Self {
            argc,
            envc,
            strings,
        };
        if !args.envp().all(is_env) {
            return Err(Errno::EINVAL);
        }
        Ok(args)
    }

    /// Every string, argv first.
    fn all(&self) -> impl Iterator<Item = &'a str> + Clone + use<'a> {
        // Each string ends with a NUL, so the piece after the last one is empty: dropped.
        let strings = self.strings;
        strings.split('\0').take(self.argc + self.envc)
    }

    /// argv, `argv[0]` first.
    pub fn argv(&self) -> impl Iterator<Item = &'a str> + Clone + use<'a> {
        self.all().take(self.argc)
    }

    /// The environment's `NAME=value` strings.
    pub fn envp(&self) -> impl Iterator<Item = &'a str> + Clone + use<'a> {
        self.all().skip(self.argc)
    }

    pub fn argc(&self) -> usize {
        self.argc
    }

    pub fn envc(&self) -> usize {
        self.envc
    }

    /// The value of environment variable `name` (the first one of that name).
    pub fn env(&self, name: &str) -> Option<&'a str> {
        self.envp()
            .find_map(|s| s.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    }

    /// Bytes of the area in use: the header and the strings.
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.strings.len()
    }

    /// The arguments written into `out` as an area (in canonical form); the bytes used.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, Errno> {
        encode(self.argv(), self.envp(), out)
    }
}

/// Writes `argv` and `envp` into `out` as an argument area (the bytes after the strings are
/// left as they are); the bytes used. `E2BIG` past [`MAX_ARGS`] strings or [`ARG_MAX`]
/// bytes (or past `out`); `EINVAL` for a string holding a NUL, an empty argv, or an
/// environment string that is not `NAME=value`. Nothing is written on error.
pub fn encode<'a, 'e>(
    argv: impl Iterator<Item = &'a str> + Clone,
    envp: impl Iterator<Item = &'e str> + Clone,
    out: &mut [u8],
) -> Result<usize, Errno> {
    let (mut argc, mut envc, mut len) = (0usize, 0usize, 0usize);
    let mut count = |s: &str, env: bool| {
        if s.as_bytes().contains(&0) || (env && !is_env(s)) {
            return Err(Errno::EINVAL);
        }
        if env {
            envc += 1;
        } else {
            argc += 1;
        }
        len = len.saturating_add(s.len() + 1);
        if argc + envc > MAX_ARGS || len > ARG_MAX {
            return Err(Errno::E2BIG);
        }
        Ok(())
    };
    for s in argv.clone() {
        count(s, false)?;
    }
    for s in envp.clone() {
        count(s, true)?;
    }
    if argc == 0 {
        return Err(Errno::EINVAL);
    }
    let used = HEADER_BYTES + len;
    let Some(area) = out.get_mut(..used) else {
        return Err(Errno::E2BIG);
    };
    let (header, mut rest) = area.split_at_mut(HEADER_BYTES);
    for (i, word) in [argc, envc, len, MAGIC as usize].into_iter().enumerate() {
        header[i * 4..i * 4 + 4].copy_from_slice(&(word as u32).to_le_bytes());
    }
    let mut put = |s: &str| {
        let (text, tail) = core::mem::take(&mut rest).split_at_mut(s.len());
        text.copy_from_slice(s.as_bytes());
        let (nul, tail) = tail.split_at_mut(1);
        nul[0] = 0;
        rest = tail;
    };
    argv.for_each(&mut put);
    envp.for_each(&mut put);
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn area(argv: &[&str], envp: &[&str]) -> Vec<u8> {
        let mut out = vec![0u8; AREA_BYTES];
        let n = encode(argv.iter().copied(), envp.iter().copied(), &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn round_trips() {
        let a = area(&["anon", "64", "é"], &["HOME=/", "EMPTY=", "X=a=b"]);
        let args = Args::decode(&a).unwrap();
        assert_eq!(args.argv().collect::<Vec<_>>(), ["anon", "64", "é"]);
        assert_eq!(
            args.envp().collect::<Vec<_>>(),
            ["HOME=/", "EMPTY=", "X=a=b"]
        );
        assert_eq!((args.argc(), args.envc()), (3, 3));
        assert_eq!(args.env("HOME"), Some("/"));
        assert_eq!(args.env("EMPTY"), Some(""));
        assert_eq!(args.env("X"), Some("a=b"));
        assert_eq!(args.env("HOM"), None);
        assert_eq!(args.encoded_len(), a.len());
        let mut again = vec![0u8; AREA_BYTES];
        let n = args.encode(&mut again).unwrap();
        assert_eq!(&again[..n], &a[..]);
        // Empty strings are strings too.
        let a = area(&["", ""], &[]);
        assert_eq!(
            Args::decode(&a).unwrap().argv().collect::<Vec<_>>(),
            ["", ""]
        );
    }

    #[test]
    fn limits_are_e2big() {
        let long = "x".repeat(ARG_MAX - 1);
        // Exactly ARG_MAX bytes (with the NUL) fit; one more does not.
        let a = area(&[&long], &[]);
        assert_eq!(Args::decode(&a).unwrap().argc(), 1);
        let mut out = vec![0u8; AREA_BYTES];
        let longer = "x".repeat(ARG_MAX);
        assert_eq!(
            encode([longer.as_str()].into_iter(), [].into_iter(), &mut out),
            Err(Errno::E2BIG)
        );
        let many = vec!["a"; MAX_ARGS];
        assert!(encode(many.iter().copied(), [].into_iter(), &mut out).is_ok());
        let too_many = vec!["a"; MAX_ARGS + 1];
        assert_eq!(
            encode(too_many.iter().copied(), [].into_iter(), &mut out),
            Err(Errno::E2BIG)
        );
        assert_eq!(
            encode(["p"].into_iter(), too_many.iter().map(|_| "A=1"), &mut out),
            Err(Errno::E2BIG)
        );
        // Too small an output.
        assert_eq!(
            encode(["abc"].into_iter(), [].into_iter(), &mut out[..19]),
            Err(Errno::E2BIG)
        );
    }

    #[test]
    fn bad_strings_are_einval() {
        let mut out = vec![0u8; AREA_BYTES];
        assert_eq!(
            encode([].into_iter(), [].into_iter(), &mut out),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            encode(["a\0b"].into_iter(), [].into_iter(), &mut out),
            Err(Errno::EINVAL)
        );
        for bad in ["NOEQUALS", "=value", ""] {
            assert_eq!(
                encode(["p"].into_iter(), [bad].into_iter(), &mut out),
                Err(Errno::EINVAL)
            );
        }
        assert!(out.iter().all(|&b| b == 0), "nothing written on error");
    }

    /// Headers a caller might forge: errors, never a panic or a read past the area.
    #[test]
    fn forged_headers_are_refused() {
        let good = area(&["prog", "arg"], &["A=1"]);
        let with = |at: usize, v: u32| {
            let mut a = good.clone();
            a.resize(AREA_BYTES, 0);
            a[at..at + 4].copy_from_slice(&v.to_le_bytes());
            Args::decode(&a).map(|_| ())
        };
        assert_eq!(with(8, u32::MAX), Err(Errno::E2BIG));
        assert_eq!(with(8, ARG_MAX as u32 + 1), Err(Errno::E2BIG));
        assert_eq!(with(0, u32::MAX), Err(Errno::E2BIG));
        assert_eq!(with(4, MAX_ARGS as u32), Err(Errno::E2BIG));
        assert_eq!(with(0, 3), Err(Errno::EINVAL));
        assert_eq!(with(0, 0), Err(Errno::EINVAL));
        assert_eq!(with(8, 5), Err(Errno::EINVAL));
        assert_eq!(with(12, 0), Err(Errno::EINVAL));
        // A length past the end of what the caller gave.
        let mut short = good.clone();
        short.truncate(good.len() - 1);
        assert_eq!(Args::decode(&short), Err(Errno::E2BIG));
        assert_eq!(Args::decode(&good[..10]), Err(Errno::EINVAL));
        assert_eq!(Args::decode(&[]), Err(Errno::EINVAL));
        // Not UTF-8.
        let mut a = good.clone();
        a[HEADER_BYTES] = 0xff;
        assert_eq!(Args::decode(&a), Err(Errno::EINVAL));
        // An environment string without `=`.
        let a = {
            let mut a = area(&["prog", "arg", "B=2"], &[]);
            a[0] = 2;
            a[4] = 1;
            a
        };
        assert_eq!(Args::decode(&a).map(|x| x.envc()), Ok(1));
        let mut b = area(&["prog", "arg", "B2"], &[]);
        b[0] = 2;
        b[4] = 1;
        assert_eq!(Args::decode(&b), Err(Errno::EINVAL));
        // Random bytes: no panic.
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..20_000 {
            let mut a = good.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x % a.len() as u64) as usize;
                a[at] = (x >> 32) as u8;
            }
            if let Ok(args) = Args::decode(&a) {
                assert!(args.encoded_len() <= a.len());
                let _ = args.argv().count() + args.envp().count();
            }
        }
    }
}
