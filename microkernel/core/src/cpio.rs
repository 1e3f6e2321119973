//! newc ("070701") cpio archives, the initrd format: walk the entries, find a file by name.
//!
//! ```text
//! +------------------+----------------+-----+----------------+-----+-- next header
//! | header, 110 B:   | name, namesize | pad | data, filesize | pad |
//! | "070701" + 13    | bytes with NUL | to 4|     bytes      | to 4|
//! | 8-digit hex      |                |     |                |     |
//! +------------------+----------------+-----+----------------+-----+
//! ```
//!
//! Padding aligns to 4 bytes from the start of the archive. The last entry is named
//! `TRAILER!!!`. Fields after the magic: ino, mode, uid, gid, nlink, mtime, filesize,
//! devmajor, devminor, rdevmajor, rdevminor, namesize, check (0 in this format).

use core::fmt;
use core::iter::FusedIterator;

const MAGIC: &[u8; 6] = b"070701";
const HEADER_SIZE: usize = 110;
const TRAILER: &str = "TRAILER!!!";
/// Offsets of the hex fields we read, after the 6-byte magic.
const MODE_AT: usize = 6 + 8;
const FILESIZE_AT: usize = 6 + 6 * 8;
const NAMESIZE_AT: usize = 6 + 11 * 8;

/// File type bits of `mode` and the regular-file type (POSIX `S_IFMT`, `S_IFREG`).
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;

/// One archive member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path as stored, often with a leading `./`.
    pub name: &'a str,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Contents: a regular file's bytes, a symlink's target; empty for directories.
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// A regular file (not a directory, symlink or device node).
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
}

/// Why an archive cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpioError {
    /// Does not start with the newc magic "070701" (this includes an empty slice).
    NotCpio,
    /// Ends inside a header, name or data, or before the `TRAILER!!!` entry.
    Truncated,
    /// A header with the wrong magic or a non-hex field, or a name that is empty, not
    /// NUL-terminated or not UTF-8.
    BadHeader,
    /// No entry with that name.
    NotFound,
    /// The entry with that name is not a regular file.
    NotAFile,
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotCpio => "not a newc cpio archive",
            Self::Truncated => "cpio archive is truncated",
            Self::BadHeader => "corrupt cpio header",
            Self::NotFound => "no such file in the cpio archive",
            Self::NotAFile => "cpio entry is not a regular file",
        })
    }
}

/// Iterator over the entries of an archive; see [`entries`].
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    archive: &'a [u8],
    offset: usize,
    done: bool,
}

/// The entries of `archive`, up to (not including) `TRAILER!!!`. On corruption it yields one
/// `Err` and then stops.
pub fn entries(archive: &[u8]) -> Entries<'_> {
    Entries {
        archive,
        offset: 0,
        done: false,
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match parse_entry(self.archive, self.offset) {
            Ok((entry, _)) if entry.name == TRAILER => {
                self.done = true;
                None
            }
            Ok((entry, next)) => {
                self.offset = next;
                Some(Ok(entry))
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for Entries<'_> {}

/// The data of the regular file `name` (matched with or without a leading `./`, on either
/// side). The first entry with that name decides.
pub fn find<'a>(archive: &'a [u8], name: &str) -> Result<&'a [u8], CpioError> {
    let wanted = name.strip_prefix("./").unwrap_or(name);
    for entry in entries(archive) {
        let entry = entry?;
        if entry.name.strip_prefix("./").unwrap_or(entry.name) == wanted {
            return if entry.is_file() {
                Ok(entry.data)
            } else {
                Err(CpioError::NotAFile)
            };
        }
    }
    Err(CpioError::NotFound)
}

const fn align4(n: usize) -> usize {
    // Callers pass lengths bounded by the archive length, far from usize::MAX.
    (n + 3) & !3
}

/// One 8-digit hex header field.
fn hex_field(header: &[u8], at: usize) -> Result<u32, CpioError> {
    let digits = header.get(at..at + 8).ok_or(CpioError::Truncated)?;
    digits.iter().try_fold(0u32, |value, &digit| {
        let nibble = (digit as char).to_digit(16).ok_or(CpioError::BadHeader)?;
        Ok(value << 4 | nibble)
    })
}

/// The entry whose header starts at `offset`, and the offset of the next header.
fn parse_entry(archive: &[u8], offset: usize) -> Result<(Entry<'_>, usize), CpioError> {
    let rest = archive.get(offset..).unwrap_or_default();
    if !rest.starts_with(MAGIC) {
        // The first header decides whether this is a cpio archive at all.
        return Err(match (offset, rest.len()) {
            (0, _) => CpioError::NotCpio,
            (_, len) if len < MAGIC.len() && MAGIC.starts_with(rest) => CpioError::Truncated,
            _ => CpioError::BadHeader,
        });
    }
    let header = rest.get(..HEADER_SIZE).ok_or(CpioError::Truncated)?;
    // Every field must be hex, even those we do not use.
    for field in 0..13 {
        hex_field(header, MAGIC.len() + 8 * field)?;
    }
    let mode = hex_field(header, MODE_AT)?;
    let file_size = hex_field(header, FILESIZE_AT)? as usize;
    let name_size = hex_field(header, NAMESIZE_AT)? as usize;

    let name_start = offset + HEADER_SIZE;
    let name_end = name_start
        .checked_add(name_size)
        .ok_or(CpioError::Truncated)?;
    let name = archive
        .get(name_start..name_end)
        .ok_or(CpioError::Truncated)?;
    // namesize counts the terminating NUL, which must be the only one.
    let (&last, name) = name.split_last().ok_or(CpioError::BadHeader)?;
    if last != 0 || name.contains(&0) {
        return Err(CpioError::BadHeader);
    }
    let name = core::str::from_utf8(name).map_err(|_| CpioError::BadHeader)?;

    let data_start = align4(name_end);
    let data_end = data_start
        .checked_add(file_size)
        .ok_or(CpioError::Truncated)?;
    let data = archive
        .get(data_start..data_end)
        .ok_or(CpioError::Truncated)?;
    Ok((Entry { name, mode, data }, align4(data_end)))
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::*;

    const FILE: u32 = 0o100_644;
    const DIR: u32 = 0o040_755;
    const SYMLINK: u32 = 0o120_777;

    /// Writes a newc archive as `cpio -H newc` does, trailer included.
    fn archive(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let trailer: (&str, u32, &[u8]) = (TRAILER, 0, b"");
        for (ino, &(name, mode, data)) in entries.iter().chain([&trailer]).enumerate() {
            let fields = [
                ino as u32 + 1,
                mode,
                0,
                0,
                1,
                0,
                data.len() as u32,
                0,
                0,
                0,
                0,
                name.len() as u32 + 1,
                0,
            ];
            out.extend_from_slice(MAGIC);
            for field in fields {
                out.extend_from_slice(std::format!("{field:08X}").as_bytes());
            }
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.resize(align4(out.len()), 0);
            out.extend_from_slice(data);
            out.resize(align4(out.len()), 0);
        }
        out
    }

    fn sample() -> Vec<u8> {
        archive(&[
            (".", DIR, b""),
            ("./init", FILE | 0o755, b"\x7fELF init image"),
            ("bin", DIR, b""),
            ("bin/hello", FILE, b"hi"),
            ("./etc/motd", FILE, b"odd-sized"),
            ("lnk", SYMLINK, b"bin/hello"),
            ("empty", FILE, b""),
        ])
    }

    #[test]
    fn lists_entries_in_order() {
        let archive = sample();
        let names: Vec<_> = entries(&archive).map(|e| e.unwrap().name).collect();
        assert_eq!(
            names,
            [
                ".",
                "./init",
                "bin",
                "bin/hello",
                "./etc/motd",
                "lnk",
                "empty"
            ]
        );
        let init = entries(&archive).nth(1).unwrap().unwrap();
        assert_eq!(
            init,
            Entry {
                name: "./init",
                mode: 0o100_755,
                data: b"\x7fELF init image"
            }
        );
        assert!(init.is_file());
        assert!(!entries(&archive).next().unwrap().unwrap().is_file());
    }

    #[test]
    fn find_with_and_without_dot_slash() {
        let archive = sample();
        assert_eq!(find(&archive, "init"), Ok(&b"\x7fELF init image"[..]));
        assert_eq!(find(&archive, "./init"), Ok(&b"\x7fELF init image"[..]));
        assert_eq!(find(&archive, "bin/hello"), Ok(&b"hi"[..]));
        assert_eq!(find(&archive, "./bin/hello"), Ok(&b"hi"[..]));
        assert_eq!(find(&archive, "etc/motd"), Ok(&b"odd-sized"[..]));
        assert_eq!(find(&archive, "empty"), Ok(&b""[..]));
        assert_eq!(find(&archive, "nope"), Err(CpioError::NotFound));
        assert_eq!(find(&archive, "hello"), Err(CpioError::NotFound));
        assert_eq!(find(&archive, "bin"), Err(CpioError::NotAFile));
        assert_eq!(find(&archive, "lnk"), Err(CpioError::NotAFile));
    }

    #[test]
    fn stops_at_trailer_and_ignores_what_follows() {
        let mut padded = sample();
        padded.extend_from_slice(&[0u8; 512]);
        padded.extend_from_slice(b"garbage after the trailer");
        assert_eq!(entries(&padded).count(), 7);
        assert!(entries(&padded).all(|e| e.is_ok()));
        // An archive with only the trailer.
        assert_eq!(entries(&archive(&[])).count(), 0);
    }

    #[test]
    fn lowercase_hex_is_accepted() {
        let mut bytes = archive(&[("f", FILE, &[0xab; 0x1c])]);
        // filesize "0000001C" -> "0000001c".
        let at = FILESIZE_AT + 7;
        assert_eq!(bytes[at], b'C');
        bytes[at] = b'c';
        assert_eq!(find(&bytes, "f").unwrap().len(), 0x1c);
    }

    #[test]
    fn not_cpio() {
        assert_eq!(entries(b"").next(), Some(Err(CpioError::NotCpio)));
        assert_eq!(find(b"", "init"), Err(CpioError::NotCpio));
        assert_eq!(find(b"0707", "init"), Err(CpioError::NotCpio));
        assert_eq!(
            find(b"070702", "init"),
            Err(CpioError::NotCpio),
            "crc format"
        );
        assert_eq!(
            find(b"\x7fELF\x02\x01\x01", "init"),
            Err(CpioError::NotCpio)
        );
        assert_eq!(
            std::format!("{}", CpioError::NotCpio),
            "not a newc cpio archive"
        );
    }

    #[test]
    fn truncated_anywhere_is_an_error_not_a_panic() {
        let archive = sample();
        for len in 0..archive.len() {
            let cut = &archive[..len];
            let results: Vec<_> = entries(cut).collect();
            let last = results
                .last()
                .expect("a truncated archive yields its error");
            let expected = if len < MAGIC.len() {
                CpioError::NotCpio
            } else {
                CpioError::Truncated
            };
            assert_eq!(last, &Err(expected), "cut at {len}");
            assert!(results[..results.len() - 1].iter().all(|r| r.is_ok()));
            // The one Err is the last item.
            let mut it = entries(cut);
            while let Some(Ok(_)) = it.next() {}
            assert_eq!(it.next(), None);
        }
    }

    #[test]
    fn bad_headers() {
        let good = sample();
        // A non-hex digit in the second entry's filesize.
        let mut bad = good.clone();
        // The "." entry: header, name ".\0" (112 bytes, already aligned), no data.
        let second_header = align4(HEADER_SIZE + 2);
        assert_eq!(&bad[second_header..second_header + 6], MAGIC);
        bad[second_header + FILESIZE_AT] = b'g';
        let results: Vec<_> = entries(&bad).collect();
        assert_eq!(results.len(), 2);
        assert_eq!(results[1], Err(CpioError::BadHeader));
        assert_eq!(find(&bad, "init"), Err(CpioError::BadHeader));
        assert_eq!(
            find(&bad, "."),
            Err(CpioError::NotAFile),
            "entries before the corruption"
        );

        // Non-hex in a field we do not use.
        let mut bad = good.clone();
        bad[6 + 12 * 8] = b' ';
        assert_eq!(entries(&bad).next(), Some(Err(CpioError::BadHeader)));

        // Wrong magic in a later header.
        let mut bad = good.clone();
        bad[second_header + 5] = b'2';
        assert_eq!(entries(&bad).nth(1), Some(Err(CpioError::BadHeader)));

        // Name not NUL-terminated, with a NUL inside, empty, not UTF-8.
        for name in [&b"ab"[..], b"a\0\0", b"", b"\xff\0"] {
            let mut raw = Vec::from(&MAGIC[..]);
            let fields = [1, FILE, 0, 0, 1, 0, 0, 0, 0, 0, 0, name.len() as u32, 0];
            for field in fields {
                raw.extend_from_slice(std::format!("{field:08x}").as_bytes());
            }
            raw.extend_from_slice(name);
            raw.resize(align4(raw.len()) + 200, 0);
            assert_eq!(
                entries(&raw).next(),
                Some(Err(CpioError::BadHeader)),
                "{name:?}"
            );
        }

        // A huge filesize is truncation, not an overflow.
        let mut bad = good.clone();
        bad[FILESIZE_AT..FILESIZE_AT + 8].copy_from_slice(b"FFFFFFFF");
        assert_eq!(entries(&bad).next(), Some(Err(CpioError::Truncated)));
        let mut bad = good;
        bad[NAMESIZE_AT..NAMESIZE_AT + 8].copy_from_slice(b"FFFFFFFF");
        assert_eq!(entries(&bad).next(), Some(Err(CpioError::Truncated)));
    }

    #[test]
    fn random_input_and_mutations_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            assert!(entries(&bytes).take(1000).count() <= 1);
            let _ = find(&bytes, "init");
        }
        let good = sample();
        for _ in 0..5_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                // Mostly hex digits, so that headers keep parsing and sizes change.
                bytes[at] = if next() % 2 == 0 {
                    b"0123456789abcdef"[(next() % 16) as usize]
                } else {
                    next() as u8
                };
            }
            for entry in entries(&bytes).flatten() {
                assert!(entry.data.len() <= bytes.len());
            }
            let _ = find(&bytes, "bin/hello");
        }
    }
}
