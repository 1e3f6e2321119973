//! Host tests of the line discipline and the output lines.

use crate::discipline::BELL;
use crate::{Discipline, Key, Outbox, Taken};
use alloc::vec::Vec;
use proto::console::{INPUT_MAX, LINE_MAX, PENDING_MAX};

extern crate std;

/// Types `bytes`; the echo and the last key's effect.
fn typed(d: &mut Discipline, bytes: &[u8]) -> (Vec<u8>, Key) {
    let mut echo = Vec::new();
    let mut last = Key::Edited;
    for &b in bytes {
        last = d.key(b, &mut echo);
    }
    (echo, last)
}

fn bytes(t: Option<Taken>) -> Vec<u8> {
    match t {
        Some(Taken::Bytes(b)) => b,
        other => panic!("expected bytes, got {other:?}"),
    }
}

#[test]
fn enter_hands_over_a_line_with_backspace_and_ctrl_u_applied() {
    let mut d = Discipline::new();
    let (echo, key) = typed(&mut d, b"abx\x7fd\r");
    assert_eq!(key, Key::Ready);
    assert_eq!(echo, b"abx\x08 \x08d\n");
    assert_eq!(bytes(d.take(100)), b"abd\n");
    assert_eq!(d.take(100), None);
    typed(&mut d, b"junk\x15ok\n");
    assert_eq!(bytes(d.take(100)), b"ok\n");
    // Backspace on an empty line erases nothing; a UTF-8 character goes whole.
    let (echo, _) = typed(&mut d, "\x7fé\x7f\n".as_bytes());
    assert_eq!(echo, "é\x08 \x08\n".as_bytes());
    assert_eq!(bytes(d.take(100)), b"\n");
}

#[test]
fn ctrl_d_is_end_of_input_on_an_empty_line_and_hands_over_a_partial_one() {
    let mut d = Discipline::new();
    assert_eq!(typed(&mut d, b"\x04").1, Key::Ready);
    assert_eq!(d.take(10), Some(Taken::End));
    typed(&mut d, b"abc\x04");
    assert_eq!(bytes(d.take(10)), b"abc");
}

#[test]
fn ctrl_c_drops_the_line_and_interrupts() {
    let mut d = Discipline::new();
    let (echo, key) = typed(&mut d, b"abc\x03");
    assert_eq!(key, Key::Interrupt);
    assert!(echo.ends_with(b"^C\n"));
    assert!(!d.has_input());
    typed(&mut d, b"x\n");
    assert_eq!(bytes(d.take(10)), b"x\n");
}

#[test]
fn a_short_read_leaves_the_rest_of_the_line_and_untake_puts_it_back() {
    let mut d = Discipline::new();
    typed(&mut d, b"hello\nworld\n");
    let first = d.take(3);
    assert_eq!(first, Some(Taken::Bytes(b"hel".to_vec())));
    d.untake(first.unwrap());
    assert_eq!(bytes(d.take(100)), b"hello\n");
    assert_eq!(d.input_bytes(), 6);
    let t = d.take(100).unwrap();
    d.untake(t);
    assert_eq!(bytes(d.take(100)), b"world\n");
    assert_eq!(d.input_bytes(), 0);
}

#[test]
fn lines_and_input_are_bounded() {
    let mut d = Discipline::new();
    let long = [b'a'; 2 * LINE_MAX];
    let (echo, _) = typed(&mut d, &long);
    assert_eq!(echo.iter().filter(|&&b| b == BELL).count(), LINE_MAX + 1);
    typed(&mut d, b"\n");
    assert_eq!(bytes(d.take(usize::MAX)).len(), LINE_MAX);
    // Lines nobody reads: no more than INPUT_MAX bytes are kept.
    for _ in 0..2 * INPUT_MAX / LINE_MAX {
        typed(&mut d, &long);
        typed(&mut d, b"\n");
    }
    assert!(d.input_bytes() <= INPUT_MAX);
}

#[test]
fn output_goes_out_a_whole_line_at_a_time_per_task() {
    let mut o = Outbox::new();
    let mut out: Vec<Vec<u8>> = Vec::new();
    o.write(10, b"one ", &mut |l| out.push(l.to_vec()));
    o.write(11, b"other\n", &mut |l| out.push(l.to_vec()));
    o.write(10, b"two\nthree", &mut |l| out.push(l.to_vec()));
    assert_eq!(out, [b"other\n".to_vec(), b"one two\n".to_vec()]);
    assert_eq!(o.pending(), (1, 5));
    o.flush(10, &mut |l| out.push(l.to_vec()));
    assert_eq!(out.last().unwrap(), b"three");
    assert_eq!(o.pending(), (0, 0));
}

#[test]
fn output_is_bounded_per_task_and_in_all() {
    let mut o = Outbox::new();
    let mut out: Vec<Vec<u8>> = Vec::new();
    o.write(10, &[b'x'; 3 * LINE_MAX + 1], &mut |l| out.push(l.to_vec()));
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|l| l.len() == LINE_MAX));
    assert_eq!(o.pending(), (1, 1));
    for pid in 100..100 + 2 * PENDING_MAX as u64 {
        o.write(pid, b"partial", &mut |l| out.push(l.to_vec()));
    }
    assert!(o.pending().0 <= PENDING_MAX);
    // The oldest went first: pid 10's byte.
    assert_eq!(out[3], b"x");
    o.flush_all(&mut |l| out.push(l.to_vec()));
    assert_eq!(o.pending(), (0, 0));
}
