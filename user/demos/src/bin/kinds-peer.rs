//! `mapping-kinds`' unrelated peer: a task started with `spawn` (it shares nothing with
//! `mapping-kinds` but the file's name) maps `KINDS.DAT` shared and read-only and reports,
//! in its exit status, which of the two marks it finds there (`demos::mapping_kinds`).
#![no_std]
#![no_main]

use demos::mapping_kinds::{CHILD_MARK, FILE, PEER_SAW_CHILD, PEER_SAW_WRITER, WRITER_MARK};
use demos::{PAGE, peek};
use rt::{MAP_SHARED, O_RDONLY, PROT_READ, println};

rt::entry!(main);

fn main() -> i32 {
    let Ok(fd) = rt::open(FILE, O_RDONLY) else {
        println!("kinds-peer: cannot open {FILE}");
        return -1;
    };
    let Ok(a) = rt::mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0) else {
        println!("kinds-peer: cannot map {FILE}");
        return -1;
    };
    let (w0, w1) = (peek(a), peek(a + 8));
    println!(
        "kinds-peer:   (another task: open + mmap of {FILE}: word 0 = {w0:#x}, word 1 = {w1:#x})"
    );
    let _ = rt::munmap(a, PAGE);
    let _ = rt::close(fd);
    let mut saw = 0;
    if w0 == CHILD_MARK {
        saw |= PEER_SAW_CHILD;
    }
    if w1 == WRITER_MARK {
        saw |= PEER_SAW_WRITER;
    }
    saw
}
