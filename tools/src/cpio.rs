//! A writer for "newc" cpio archives (the `070701` format the kernel's initrd parser reads).
//!
//! Each entry is a 110-byte ASCII header (magic and 13 fields of 8 hex digits), the name with
//! its NUL, padding to 4 bytes, the data, padding to 4 bytes. The archive ends with an entry
//! named `TRAILER!!!`.

/// The magic that opens every newc header.
pub const MAGIC: &[u8; 6] = b"070701";
/// The name of the entry that ends the archive.
pub const TRAILER: &str = "TRAILER!!!";
/// Length of a header: the magic plus 13 fields of 8 hex digits.
pub const HEADER_LEN: usize = 6 + 13 * 8;

/// A regular file, for the mode field.
const S_IFREG: u32 = 0o100_000;

/// Builds an archive in memory. Fields that would make it depend on the build host
/// (times, owners, inode numbers) are fixed, so the same files give the same bytes.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    next_ino: u32,
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            out: Vec::new(),
            next_ino: 1,
        }
    }

    /// Appends a regular file; `perm` is the permission bits (e.g. `0o755`).
    pub fn add_file(&mut self, name: &str, perm: u32, data: &[u8]) -> Result<(), String> {
        if name.is_empty() || name.contains('\0') || name == TRAILER {
            return Err(format!("cpio: invalid entry name {name:?}"));
        }
        if perm & !0o7777 != 0 {
            return Err(format!(
                "cpio: {name}: mode {perm:o} has more than permission bits"
            ));
        }
        let ino = self.next_ino;
        self.next_ino = self.next_ino.wrapping_add(1);
        self.entry(ino, S_IFREG | perm, 1, name, data)
    }

    /// Ends the archive with its trailer entry and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // The trailer has no data and a short fixed name, so it cannot fail.
        let _ = self.entry(0, 0, 1, TRAILER, &[]);
        self.out
    }

    fn entry(
        &mut self,
        ino: u32,
        mode: u32,
        nlink: u32,
        name: &str,
        data: &[u8],
    ) -> Result<(), String> {
        let too_big = || format!("cpio: {name}: larger than 4 GiB, which newc cannot describe");
        let filesize = u32::try_from(data.len()).map_err(|_| too_big())?;
        let namesize = u32::try_from(name.len() + 1).map_err(|_| too_big())?;
        // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
        // rdevminor, namesize, check.
        let fields = [ino, mode, 0, 0, nlink, 0, filesize, 0, 0, 0, 0, namesize, 0];
        self.out.reserve(HEADER_LEN + name.len() + data.len() + 8);
        self.out.extend_from_slice(MAGIC);
        for field in fields {
            self.out
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
        Ok(())
    }

    /// Pads to a multiple of 4; headers start at offset 0, so this aligns relative to the archive.
    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// One entry read back from an archive.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Entry {
        pub name: String,
        pub mode: u32,
        pub data: Vec<u8>,
    }

    /// A strict reader, independent of the writer, for round trips.
    pub fn parse(archive: &[u8]) -> Result<Vec<Entry>, String> {
        let mut at = 0;
        let mut entries = Vec::new();
        loop {
            let header = archive.get(at..at + HEADER_LEN).ok_or("truncated header")?;
            if &header[..6] != MAGIC {
                return Err(format!("bad magic at {at}"));
            }
            let field = |i: usize| -> Result<usize, String> {
                let text = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i])
                    .map_err(|e| e.to_string())?;
                usize::from_str_radix(text, 16).map_err(|e| e.to_string())
            };
            let mode = u32::try_from(field(1)?).map_err(|e| e.to_string())?;
            let filesize = field(6)?;
            let namesize = field(11)?;
            let name_at = at + HEADER_LEN;
            let name = archive
                .get(name_at..name_at + namesize)
                .ok_or("truncated name")?;
            let (nul, name) = name.split_last().ok_or("empty name")?;
            if *nul != 0 {
                return Err("name not NUL-terminated".into());
            }
            let name = String::from_utf8(name.to_vec()).map_err(|e| e.to_string())?;
            let data_at = (name_at + namesize).next_multiple_of(4);
            let data = archive
                .get(data_at..data_at + filesize)
                .ok_or("truncated data")?;
            at = (data_at + filesize).next_multiple_of(4);
            if name == TRAILER {
                if at != archive.len() {
                    return Err("bytes after the trailer".into());
                }
                return Ok(entries);
            }
            entries.push(Entry {
                name,
                mode,
                data: data.to_vec(),
            });
        }
    }

    #[test]
    fn round_trip() {
        let mut writer = Writer::new();
        // Lengths 0..=5 exercise every padding case of both the name and the data.
        let files: Vec<(String, Vec<u8>)> = (0..6)
            .map(|n| ("f".repeat(n + 1), (0..n as u8).collect()))
            .collect();
        for (name, data) in &files {
            writer.add_file(name, 0o644, data).unwrap();
        }
        writer.add_file("init", 0o755, b"\x7fELF...").unwrap();
        let archive = writer.finish();
        assert_eq!(archive.len() % 4, 0);
        assert_eq!(&archive[..6], MAGIC);

        let entries = parse(&archive).unwrap();
        assert_eq!(entries.len(), files.len() + 1);
        for (entry, (name, data)) in entries.iter().zip(&files) {
            assert_eq!(&entry.name, name);
            assert_eq!(&entry.data, data);
            assert_eq!(entry.mode, 0o100_644);
        }
        let init = entries.last().unwrap();
        assert_eq!(
            (init.name.as_str(), init.mode, &init.data[..]),
            ("init", 0o100_755, &b"\x7fELF..."[..])
        );
    }

    #[test]
    fn header_layout() {
        let mut writer = Writer::new();
        writer.add_file("a", 0o755, b"xyz").unwrap();
        let archive = writer.finish();
        let header = std::str::from_utf8(&archive[..HEADER_LEN]).unwrap();
        // magic, ino 1, mode 0o100755, uid, gid, nlink 1, mtime, size 3, ..., namesize 2, check.
        assert_eq!(
            header,
            "070701\
             00000001000081ED000000000000000000000001000000000000000300000000\
             00000000000000000000000000000002\
             00000000"
        );
        // Header (110) + "a\0" = 112, already aligned; data 3 bytes padded to 4.
        assert_eq!(&archive[110..112], b"a\0");
        assert_eq!(&archive[112..116], b"xyz\0");
        assert_eq!(&archive[116..122], MAGIC);
        assert!(archive.ends_with(b"TRAILER!!!\0\0\0\0"));
    }

    #[test]
    fn empty_archive_is_just_the_trailer() {
        let entries = parse(&Writer::new().finish()).unwrap();
        assert!(entries.is_empty());
    }

    #[test]
    fn bad_entries_are_errors() {
        let mut writer = Writer::new();
        assert!(writer.add_file("", 0o644, b"").is_err());
        assert!(writer.add_file("a\0b", 0o644, b"").is_err());
        assert!(writer.add_file(TRAILER, 0o644, b"").is_err());
        assert!(writer.add_file("x", 0o100_644, b"").is_err());
    }
}
