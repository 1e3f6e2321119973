//! `dirtest` (boot scenarios `proc-dirtest`, a private copy of the disk, and
//! `proc-dirtest-ro`, the read-only disk): directories and long names. On a writable disk it
//! reads a long name the host wrote, creates files and directories with long names, lists a
//! directory of many entries (several `ReadDir` calls), renames files and directories across
//! directories (an open file too), removes them, checks each error the calls give, and fills the disk until
//! `ENOSPC`; the tools read the files back by their long names after power-off. On a
//! read-only disk every change is `EROFS` and the listing still works. One `PASS`/`FAIL`
//! line per check; exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use demos::Checks;
use demos::dirtest::*;
use rt::println;
use rt::{Errno, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC};

rt::entry!(main);

/// Creates `name` holding `bytes`.
fn put(name: &str, bytes: &[u8]) -> Result<(), &'static str> {
    let fd = rt::open(name, O_CREAT | O_RDWR | O_TRUNC).map_err(|_| "create failed")?;
    let wrote = rt::write(fd, bytes);
    let closed = rt::close(fd);
    if wrote != Ok(bytes.len()) || closed.is_err() {
        return Err("write failed");
    }
    Ok(())
}

/// The bytes of `name`.
fn get(name: &str) -> Result<Vec<u8>, &'static str> {
    let fd = rt::open(name, O_RDONLY).map_err(|_| "open failed")?;
    let mut buf = vec![0u8; 4096];
    let n = rt::read(fd, &mut buf);
    let _ = rt::close(fd);
    let n = n.map_err(|_| "read failed")?;
    buf.truncate(n);
    Ok(buf)
}

/// `Err(why)` unless `got` is `Err(want)`.
fn fails<T>(got: Result<T, Errno>, want: Errno, why: &'static str) -> Result<(), &'static str> {
    match got {
        Err(e) if e == want => Ok(()),
        Err(e) => {
            println!("dirtest: {why}: {e:?}, not {want:?}");
            Err(why)
        }
        Ok(_) => {
            println!("dirtest: {why}: succeeded, not {want:?}");
            Err(why)
        }
    }
}

fn entry_name(i: usize) -> String {
    format!("Dir Test/entry number {i:02}.dat")
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("dirtest: long names and directories");
    match rt::mkdir("Dir Test") {
        Err(Errno::EROFS) => return read_only(c),
        Ok(()) => {}
        Err(e) => {
            println!("dirtest: mkdir(\"Dir Test\") = {e:?}");
            c.check("dir-mkdir", false, "mkdir failed");
            return c.failures;
        }
    }
    c.run("dir-mkdir", || {
        fails(rt::mkdir("Dir Test"), Errno::EEXIST, "mkdir twice")?;
        fails(
            rt::mkdir("dir test"),
            Errno::EEXIST,
            "mkdir in another case",
        )?;
        match rt::stat("Dir Test") {
            Ok(s) if s.is_dir => Ok(()),
            _ => Err("stat does not say directory"),
        }
    });
    c.run("dir-host-long-name", || {
        if get(HOST_FILE)? != HOST_BYTES {
            return Err("the host's file reads wrong");
        }
        // Any case, and its 8.3 alias.
        if get("HOST WROTE THIS LONG NAME.TXT")? != HOST_BYTES {
            return Err("another case does not find it");
        }
        Ok(())
    });
    c.run("dir-long-create", || {
        put(LONG_FILE, LONG_BYTES)?;
        fails(
            rt::open(LONG_FILE, O_CREAT | O_EXCL | O_RDWR),
            Errno::EEXIST,
            "O_EXCL of a long name",
        )?;
        if get("dir test/a LONG file NAME.txt")? != LONG_BYTES {
            return Err("the long name reads wrong");
        }
        match rt::stat(LONG_FILE) {
            Ok(s) if s.size == LONG_BYTES.len() as u64 && !s.is_dir => Ok(()),
            _ => Err("stat of the long name is wrong"),
        }
    });
    c.run("dir-mkdir-nested", || {
        rt::mkdir("Dir Test/Sub Directory").map_err(|_| "nested mkdir failed")?;
        rt::mkdir("Dir Test/Empty one").map_err(|_| "mkdir failed")?;
        put("Dir Test/Sub Directory/x.txt", b"x")
    });
    c.run("dir-readdir", || {
        for i in 0..ENTRIES {
            put(&entry_name(i), &vec![b'e'; i])?;
        }
        let list = rt::read_dir("Dir Test").map_err(|_| "read_dir failed")?;
        println!("dirtest: Dir Test lists {} entries", list.len());
        for i in 0..ENTRIES {
            let name = format!("entry number {i:02}.dat");
            let found = list
                .iter()
                .filter(|e| e.name == name && e.size == i as u64 && !e.is_dir)
                .count();
            if found != 1 {
                println!("dirtest: {name}: listed {found} times");
                return Err("an entry is missing or listed twice");
            }
        }
        for dir in ["Sub Directory", "Empty one"] {
            if !list.iter().any(|e| e.name == dir && e.is_dir) {
                return Err("a directory is not listed as one");
            }
        }
        if !list.iter().any(|e| e.name == "A long file name.txt") {
            return Err("the long file is not listed");
        }
        if list.len() != ENTRIES + 3 {
            return Err("the listing has other entries");
        }
        // Through opendir/readdir/closedir: the same count.
        let mut d = rt::opendir("Dir Test").map_err(|_| "opendir failed")?;
        let mut n = 0;
        while let Some(e) = rt::readdir(&mut d) {
            e.map_err(|_| "readdir failed")?;
            n += 1;
        }
        rt::closedir(d);
        if n != list.len() {
            return Err("readdir counts otherwise");
        }
        Ok(())
    });
    c.run("dir-rename-file", || {
        put(&entry_name(0), &moved_bytes())?;
        rt::rename(&entry_name(0), MOVED_FILE).map_err(|_| "rename failed")?;
        fails(
            rt::stat(&entry_name(0)),
            Errno::ENOENT,
            "the old name stays",
        )?;
        if get(MOVED_FILE)? != moved_bytes() {
            return Err("the moved file reads wrong");
        }
        // Over an existing file: replaced.
        put(&entry_name(1), b"replacing")?;
        rt::rename(&entry_name(1), "Dir Test/Sub Directory/x.txt")
            .map_err(|_| "rename over a file failed")?;
        if get("Dir Test/Sub Directory/x.txt")? != b"replacing" {
            return Err("the replaced file reads wrong");
        }
        Ok(())
    });
    c.run("dir-rename-dir", || {
        rt::mkdir("Old Name Dir").map_err(|_| "mkdir failed")?;
        put("Old Name Dir/inside.txt", INSIDE_BYTES)?;
        rt::rename("Old Name Dir", "Dir Test/New Name Dir").map_err(|_| "rename failed")?;
        fails(
            rt::stat("Old Name Dir"),
            Errno::ENOENT,
            "the old directory stays",
        )?;
        if get(INSIDE_FILE)? != INSIDE_BYTES {
            return Err("a file in the moved directory reads wrong");
        }
        // `..` from it is its new parent.
        put("Dir Test/up.txt", b"up")?;
        if get("Dir Test/New Name Dir/../up.txt")? != b"up" {
            return Err("`..` of the moved directory is wrong");
        }
        Ok(())
    });
    c.run("dir-rmdir", || {
        fails(
            rt::rmdir("Dir Test"),
            Errno::ENOTEMPTY,
            "rmdir of a full one",
        )?;
        rt::rmdir("Dir Test/Empty one").map_err(|_| "rmdir failed")?;
        fails(rt::stat("Dir Test/Empty one"), Errno::ENOENT, "it stays")?;
        fails(
            rt::rmdir("Dir Test/Empty one"),
            Errno::ENOENT,
            "rmdir twice",
        )?;
        rt::mkdir("Dir Test/Empty one").map_err(|_| "mkdir again failed")?;
        rt::rmdir("Dir Test/Empty one").map_err(|_| "rmdir again failed")
    });
    c.run("dir-unlink-long", || {
        rt::unlink(&entry_name(2)).map_err(|_| "unlink failed")?;
        fails(rt::stat(&entry_name(2)), Errno::ENOENT, "it stays")?;
        let list = rt::read_dir("Dir Test").map_err(|_| "read_dir failed")?;
        if list.iter().any(|e| e.name == "entry number 02.dat") {
            return Err("still listed");
        }
        Ok(())
    });
    c.run("dir-errors", || {
        fails(
            rt::open("Dir Test", O_RDONLY),
            Errno::EISDIR,
            "open of a directory",
        )?;
        fails(
            rt::unlink("Dir Test"),
            Errno::EISDIR,
            "unlink of a directory",
        )?;
        let under_file = "Dir Test/A long file name.txt/x";
        fails(
            rt::open(under_file, O_RDONLY),
            Errno::ENOTDIR,
            "a file as a directory",
        )?;
        fails(rt::mkdir(under_file), Errno::ENOTDIR, "mkdir under a file")?;
        fails(rt::rmdir(LONG_FILE), Errno::ENOTDIR, "rmdir of a file")?;
        fails(rt::opendir(LONG_FILE), Errno::ENOTDIR, "opendir of a file")?;
        fails(
            rt::mkdir("no such dir/x"),
            Errno::ENOENT,
            "mkdir in a missing dir",
        )?;
        fails(
            rt::opendir("no such dir"),
            Errno::ENOENT,
            "opendir of a missing dir",
        )?;
        fails(
            rt::rename("no such file", "y"),
            Errno::ENOENT,
            "rename of a missing file",
        )?;
        fails(
            rt::rename("Dir Test", "Dir Test/Sub Directory/below"),
            Errno::EINVAL,
            "a directory moved below itself",
        )?;
        fails(
            rt::rename(LONG_FILE, "Dir Test/Sub Directory"),
            Errno::EISDIR,
            "file over dir",
        )?;
        fails(
            rt::rename("Dir Test/Sub Directory", LONG_FILE),
            Errno::ENOTDIR,
            "dir over file",
        )?;
        let long = "x".repeat(256);
        fails(
            rt::open(&long, O_CREAT | O_RDWR),
            Errno::ENAMETOOLONG,
            "a 256-byte path",
        )?;
        fails(
            rt::mkdir(&long),
            Errno::ENAMETOOLONG,
            "mkdir of a 256-byte path",
        )?;
        fails(rt::mkdir("bad*name"), Errno::EINVAL, "a name with *")?;
        fails(rt::close(999), Errno::EBADF, "close of a forged descriptor")
    });
    c.run("dir-rename-open", || {
        // An open file renamed keeps its descriptor: what it writes afterwards is in the
        // file under its new name.
        put("Dir Test/open.txt", b"before ")?;
        let fd = rt::open("Dir Test/open.txt", O_RDWR).map_err(|_| "open failed")?;
        let renamed = rt::rename(
            "Dir Test/open.txt",
            "Dir Test/Sub Directory/renamed open.txt",
        );
        let wrote = rt::pwrite(fd, b"after", 7);
        let closed = rt::close(fd);
        if renamed.is_err() || wrote != Ok(5) || closed.is_err() {
            println!("dirtest: rename {renamed:?}, pwrite {wrote:?}, close {closed:?}");
            return Err("rename of an open file failed");
        }
        fails(
            rt::stat("Dir Test/open.txt"),
            Errno::ENOENT,
            "the old name stays",
        )?;
        if get("Dir Test/Sub Directory/renamed open.txt")? != b"before after" {
            return Err("the renamed open file reads wrong");
        }
        Ok(())
    });
    c.run("dir-whole-clusters", || {
        // A new 256 KiB file reaches the disk in one request per 64 KiB block and a few for
        // the FAT and the entry, written as runs at the end of each call (through the crate:
        // a sector per request, 512 and more; the FAT and entry a sector per request: 58).
        let data = vec![0x3cu8; 256 << 10];
        let before = rt::file_stats().map_err(|_| "FileStats failed")?;
        put("Dir Test/whole clusters.bin", &data)?;
        let after = rt::file_stats().map_err(|_| "FileStats failed")?;
        let requests = after.disk_requests - before.disk_requests;
        let sectors = after.sectors_written - before.sectors_written;
        println!(
            "dirtest: a new 256 KiB file: {requests} disk requests, {sectors} sectors written"
        );
        if requests > 24 {
            return Err("too many disk requests");
        }
        if get("Dir Test/whole clusters.bin").map(|b| b.len())? != 4096 {
            return Err("it reads back wrong");
        }
        Ok(())
    });
    c.run("dir-metadata-runs", || {
        // 32 files with long names in a new directory, a few bytes each (open, write,
        // close): the server writes what each call changed in the FAT and the directory
        // as runs of sectors at the end of the call, one request each. Per file: its entries
        // at the create; its data, its FAT entry in each FAT and its entry at the close. A
        // sector per request took 8 or more per file.
        rt::mkdir("Dir Test/Runs").map_err(|_| "mkdir failed")?;
        let before = rt::file_stats().map_err(|_| "FileStats failed")?;
        for i in 0..32 {
            let bytes = format!("file {i}");
            put(
                &format!("Dir Test/Runs/long name file {i:02}.txt"),
                bytes.as_bytes(),
            )?;
        }
        let after = rt::file_stats().map_err(|_| "FileStats failed")?;
        let requests = after.disk_requests - before.disk_requests;
        println!("dirtest: 32 new files with long names: {requests} disk requests");
        if requests > 32 * 6 {
            return Err("too many disk requests");
        }
        let listed = rt::read_dir("Dir Test/Runs").map_err(|_| "listing failed")?;
        if listed.len() != 32 || get("Dir Test/Runs/long name file 31.txt")? != b"file 31" {
            return Err("the files read back wrong");
        }
        Ok(())
    });
    c.run("dir-long-paths", || {
        // Paths up to 255 bytes (POSIX's PATH_MAX of 256 with its NUL), components up to
        // 255: in the IPC buffer, 32 words a path. Before issue 10's change: 40 bytes.
        rt::mkdir(DEEP_DIR).map_err(|_| "mkdir of a 129-byte path failed")?;
        put(DEEP_FILE, DEEP_BYTES)?;
        if get(DEEP_FILE)? != DEEP_BYTES {
            return Err("the 255-byte path reads back wrong");
        }
        match rt::stat(DEEP_FILE) {
            Ok(s) if s.size == DEEP_BYTES.len() as u64 => {}
            _ => return Err("stat of the 255-byte path is wrong"),
        }
        let name = DEEP_FILE.rsplit('/').next().unwrap_or("");
        let listed = rt::read_dir(DEEP_DIR).map_err(|_| "listing the deep directory failed")?;
        if !listed.iter().any(|e| e.name == name) {
            return Err("the 125-byte name is not listed");
        }
        // A rename between two paths of 255 bytes (the whole message), and back.
        let other = DEEP_FILE.replace("long name", "long nome");
        rt::rename(DEEP_FILE, &other).map_err(|_| "rename of two 255-byte paths failed")?;
        fails(rt::stat(DEEP_FILE), Errno::ENOENT, "the old name stays")?;
        rt::rename(&other, DEEP_FILE).map_err(|_| "rename back failed")?;
        // One byte more: ENAMETOOLONG from every call that takes a path.
        let too_long = format!("{DEEP_FILE}x");
        fails(rt::open(&too_long, O_RDONLY), Errno::ENAMETOOLONG, "open")?;
        fails(rt::stat(&too_long), Errno::ENAMETOOLONG, "stat")?;
        fails(rt::unlink(&too_long), Errno::ENAMETOOLONG, "unlink")?;
        fails(rt::mkdir(&too_long), Errno::ENAMETOOLONG, "mkdir")?;
        fails(rt::rmdir(&too_long), Errno::ENAMETOOLONG, "rmdir")?;
        fails(rt::read_dir(&too_long), Errno::ENAMETOOLONG, "read_dir")?;
        fails(
            rt::rename(&too_long, "x"),
            Errno::ENAMETOOLONG,
            "rename from",
        )?;
        fails(
            rt::rename(DEEP_FILE, &too_long),
            Errno::ENAMETOOLONG,
            "rename to",
        )?;
        // Many components (128, the most 255 bytes hold) walk as far as they exist.
        let dots = "./".repeat(110);
        match rt::stat(&format!("{dots}Dir Test")) {
            Ok(s) if s.is_dir => Ok(()),
            _ => Err("110 `.` components do not lead to the directory"),
        }
    });
    c.run("dir-enospc", || {
        // The disk has little room: a file that fills it fails at its close, then mkdir
        // fails; once the file is gone, mkdir works again.
        rt::mkdir("Fill").map_err(|_| "mkdir failed")?;
        let fd =
            rt::open("Fill/filling the disk.bin", O_CREAT | O_RDWR).map_err(|_| "create failed")?;
        let chunk = vec![0x5au8; 64 << 10];
        let mut failed = None;
        for _ in 0..32 {
            if let Err(e) = rt::write(fd, &chunk) {
                failed = Some(e);
                break;
            }
        }
        let closed = rt::close(fd);
        println!("dirtest: filling the disk: write {failed:?}, close {closed:?}");
        if failed.or(closed.err()) != Some(Errno::ENOSPC) {
            return Err("filling the disk is not ENOSPC");
        }
        let mut made = 0;
        let last = loop {
            match rt::mkdir(&format!("Fill/directory {made}")) {
                Ok(()) if made < 200 => made += 1,
                other => break other,
            }
        };
        println!("dirtest: {made} directories, then mkdir = {last:?}");
        fails(last, Errno::ENOSPC, "mkdir on a full disk")?;
        rt::unlink("Fill/filling the disk.bin").map_err(|_| "unlink failed")?;
        rt::mkdir("Fill/after the space came back").map_err(|_| "mkdir after unlink failed")
    });
    println!("dirtest: {} failures", c.failures);
    c.failures
}

/// On a read-only disk: every change is `EROFS`, reading and listing work.
fn read_only(mut c: Checks) -> i32 {
    c.run("dir-erofs", || {
        fails(rt::rmdir("bin"), Errno::EROFS, "rmdir")?;
        fails(rt::rename("hello.txt", "other.txt"), Errno::EROFS, "rename")?;
        fails(
            rt::open("new file.txt", O_CREAT | O_RDWR),
            Errno::EROFS,
            "create",
        )?;
        fails(rt::unlink("hello.txt"), Errno::EROFS, "unlink")?;
        let list = rt::read_dir("/").map_err(|_| "read_dir failed")?;
        if !list.iter().any(|e| e.name == "bin" && e.is_dir) {
            return Err("the root lists no bin directory");
        }
        Ok(())
    });
    println!("dirtest: {} failures", c.failures);
    c.failures
}
