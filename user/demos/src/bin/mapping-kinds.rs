//! Demo: the lecture's slide "Shared vs. Private Mapping" and its 2x2 table (private/shared
//! by file/anonymous). For each kind the demo maps one page, forks, lets the child write
//! word 0 and itself write word 1, then looks who sees which write: the writer, the other
//! side of the fork, an unrelated task that maps the same file (`kinds-peer`), `pread` of
//! the file, and the file after `munmap` and `close`. It prints what it observed as a table,
//! then the slide's table filled in from it. One `PASS`/`FAIL` line per kind; exits with the
//! number of failures.
#![no_std]
#![no_main]

use demos::mapping_kinds::{CHILD_MARK, FILE, PEER_SAW_CHILD, PEER_SAW_WRITER, WRITER_MARK};
use demos::{Checks, PAGE, peek, poke};
use rt::{
    MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, NO_FD, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ,
    PROT_WRITE, WaitStatus, println,
};

rt::entry!(main);

/// What the file holds before each file mapping: word `i` = `ORIGINAL + i`.
const ORIGINAL: u64 = 0x1000;

#[derive(Clone, Copy)]
struct Kind {
    shared: bool,
    file: bool,
}

impl Kind {
    fn name(self) -> &'static str {
        match (self.shared, self.file) {
            (false, true) => "private file",
            (true, true) => "shared file",
            (false, false) => "private anonymous",
            (true, false) => "shared anonymous",
        }
    }

    fn flags(self) -> u64 {
        let sharing = if self.shared { MAP_SHARED } else { MAP_PRIVATE };
        if self.file {
            sharing
        } else {
            sharing | MAP_ANONYMOUS
        }
    }
}

/// Who saw a write. `None`: there is no way to look (an anonymous mapping has no name and
/// no file).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// The task that wrote word 1 reads it back.
    writer: bool,
    /// The parent reads the word its forked child wrote (after the child ended).
    fork: bool,
    /// An unrelated task that maps the same file finds the writer's word.
    other: Option<bool>,
    /// `pread` of the file, while still mapped, returns the writer's word.
    pread: Option<bool>,
    /// After `munmap` and `close`, a new `open` + `pread` finds either word.
    file_changed: Option<bool>,
}

/// What the lecture says each kind does.
fn expected(k: Kind) -> Seen {
    let file = |b: bool| k.file.then_some(b);
    Seen {
        writer: true,
        fork: k.shared,
        other: file(k.shared),
        pread: file(k.shared),
        file_changed: file(k.shared),
    }
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("mapping-kinds: the slide's 2x2 table: private or shared, file or anonymous");
    println!("mapping-kinds: for each kind: map one page PROT_READ|PROT_WRITE; fork; the child");
    println!(
        "mapping-kinds: writes word 0 = {CHILD_MARK:#x} and exits; the parent writes word 1 = {WRITER_MARK:#x};"
    );
    println!("mapping-kinds: then who sees which write? (file mappings map {FILE}, whose word i");
    println!("mapping-kinds: starts as {ORIGINAL:#x} + i)");

    let kinds = [
        Kind {
            shared: false,
            file: true,
        },
        Kind {
            shared: true,
            file: true,
        },
        Kind {
            shared: false,
            file: false,
        },
        Kind {
            shared: true,
            file: false,
        },
    ];
    let mut rows: [Option<Seen>; 4] = [None; 4];
    for (row, &k) in rows.iter_mut().zip(&kinds) {
        println!();
        println!(
            "mapping-kinds: {} mapping: mmap(0, 4096, PROT_READ|PROT_WRITE, {}, {}, 0)",
            k.name(),
            flag_names(k),
            if k.file { "fd" } else { "-1" }
        );
        match observe(k) {
            Ok(seen) => {
                *row = Some(seen);
                c.check(
                    &id(k),
                    seen == expected(k),
                    "someone saw a write the lecture says they should not, or missed one",
                );
            }
            Err(why) => {
                c.check(&id(k), false, why);
            }
        }
    }
    let _ = rt::unlink(FILE);

    println!();
    println!("mapping-kinds: who saw the write (observed):");
    println!(
        "mapping-kinds:   {:<18}| {:<7}| {:<14}| {:<14}| {:<8}| {}",
        "mapping", "writer", "fork relative", "other process", "pread", "file changed"
    );
    for (k, row) in kinds.iter().zip(&rows) {
        match row {
            Some(s) => println!(
                "mapping-kinds:   {:<18}| {:<7}| {:<14}| {:<14}| {:<8}| {}",
                k.name(),
                yes(Some(s.writer)),
                yes(Some(s.fork)),
                yes(s.other),
                yes(s.pread),
                yes(s.file_changed)
            ),
            None => println!("mapping-kinds:   {:<18}| (failed)", k.name()),
        }
    }
    println!(
        "mapping-kinds:   (writer: the task that wrote reads it back; fork relative: the parent"
    );
    println!(
        "mapping-kinds:   reads what its forked child wrote; other process: a task started with"
    );
    println!(
        "mapping-kinds:   spawn maps the same file; pread: the file read with pread while mapped;"
    );
    println!("mapping-kinds:   file changed: open + pread after munmap and close find a write.");
    println!("mapping-kinds:   \"-\": an anonymous mapping has no name another task could open");
    println!("mapping-kinds:   and no file: only fork passes it on)");

    println!();
    println!("mapping-kinds: the slide's table, filled in from what was seen:");
    println!(
        "mapping-kinds:   {:<9}| {:<45}| {}",
        "", "File mapping", "Anonymous mapping"
    );
    for (i, sharing) in ["Private", "Shared"].iter().enumerate() {
        let file = cell(rows[i]);
        let anon = cell(rows[2 + i]);
        println!("mapping-kinds:   {sharing:<9}| {file:<45}| {anon}");
    }
    println!("mapping-kinds: {} failures", c.failures);
    c.failures
}

fn id(k: Kind) -> alloc::string::String {
    alloc::format!(
        "kinds-{}-{}",
        if k.shared { "shared" } else { "private" },
        if k.file { "file" } else { "anon" }
    )
}

extern crate alloc;

fn flag_names(k: Kind) -> &'static str {
    match (k.shared, k.file) {
        (false, true) => "MAP_PRIVATE",
        (true, true) => "MAP_SHARED",
        (false, false) => "MAP_PRIVATE|MAP_ANONYMOUS",
        (true, false) => "MAP_SHARED|MAP_ANONYMOUS",
    }
}

fn yes(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

/// One cell of the slide's table: who sees a write, and what happens to the file.
fn cell(seen: Option<Seen>) -> alloc::string::String {
    let Some(s) = seen else {
        return "(failed)".into();
    };
    let mut text = alloc::string::String::from(if s.fork || s.other == Some(true) {
        "all mappers see writes"
    } else {
        "writer only (copy-on-write)"
    });
    match s.file_changed {
        Some(true) => text.push_str("; file changes"),
        Some(false) => text.push_str("; file unchanged"),
        None => {}
    }
    text
}

/// Maps one page of kind `k`, has a forked child and this task write, and looks.
fn observe(k: Kind) -> Result<Seen, &'static str> {
    let fd = if k.file {
        let fd = rt::open(FILE, O_RDWR | O_CREAT | O_TRUNC).map_err(|_| "open failed")?;
        let mut page = [0u8; PAGE as usize];
        for (i, w) in page.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&(ORIGINAL + i as u64).to_le_bytes());
        }
        if rt::pwrite(fd, &page, 0) != Ok(page.len()) {
            return Err("writing the file failed");
        }
        fd
    } else {
        NO_FD
    };
    let a =
        rt::mmap(0, PAGE, PROT_READ | PROT_WRITE, k.flags(), fd, 0).map_err(|_| "mmap failed")?;
    // Read once, so that both sides of the fork start from the same resident page.
    let before = peek(a);
    println!("mapping-kinds:   mapped at {a:#x}; word 0 = {before:#x}");

    let child = rt::fork().map_err(|_| "fork failed")?;
    if child == 0 {
        poke(a, CHILD_MARK);
        let own = peek(a) == CHILD_MARK;
        rt::exit(i32::from(own));
    }
    let child_saw_own = matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 1)));
    let w0 = peek(a);
    println!(
        "mapping-kinds:   the child wrote word 0 (and read it back: {}); the parent reads {w0:#x}",
        yes(Some(child_saw_own))
    );
    poke(a + 8, WRITER_MARK);
    let writer = peek(a + 8) == WRITER_MARK && child_saw_own;
    println!(
        "mapping-kinds:   the parent wrote word 1 and reads back {:#x}",
        peek(a + 8)
    );

    let (mut other, mut pread, mut file_changed) = (None, None, None);
    if k.file {
        other = Some(match rt::spawn("kinds-peer").and_then(rt::wait) {
            Ok((_, WaitStatus::Exited, saw)) if saw <= 3 => {
                // The peer finds the child's word exactly when it finds the writer's: both
                // reached the file's page, or neither did.
                let (child, writer) = (
                    saw as i32 & PEER_SAW_CHILD != 0,
                    saw as i32 & PEER_SAW_WRITER != 0,
                );
                if child != writer {
                    return Err("kinds-peer saw one write and not the other");
                }
                writer
            }
            _ => return Err("kinds-peer failed"),
        });
        let mut w = [0u8; 8];
        rt::pread(fd, &mut w, 8).map_err(|_| "pread failed")?;
        let got = u64::from_le_bytes(w);
        println!("mapping-kinds:   pread(fd, 8 bytes, offset 8) = {got:#x}");
        pread = Some(got == WRITER_MARK);
    }
    rt::munmap(a, PAGE).map_err(|_| "munmap failed")?;
    if k.file {
        rt::close(fd).map_err(|_| "close failed")?;
        let fd = rt::open(FILE, O_RDONLY).map_err(|_| "reopen failed")?;
        let mut w = [0u8; 16];
        rt::pread(fd, &mut w, 0).map_err(|_| "pread failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        let (f0, f1) = (
            u64::from_le_bytes(w[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(w[8..].try_into().unwrap_or_default()),
        );
        println!(
            "mapping-kinds:   after munmap, close, open: the file's words 0, 1 = {f0:#x}, {f1:#x}"
        );
        file_changed = Some(f0 != ORIGINAL || f1 != ORIGINAL + 1);
    }
    Ok(Seen {
        writer,
        fork: w0 == CHILD_MARK,
        other,
        pread,
        file_changed,
    })
}
