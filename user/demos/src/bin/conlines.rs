//! Two tasks print at once, each line in three pieces (`print!`, `print!`, `println!`) with
//! work between them, so that the scheduler switches tasks in the middle of lines: the
//! console server must still send each line out whole. Scenario `console-lines`'s judge
//! reads every `conlines: task` line on the console and checks that each is one task's
//! line, whole ([`LINES`] of each task, in order).
#![no_std]
#![no_main]

use demos::Checks;
use rt::proto::WaitStatus;
use rt::{print, println};

rt::entry!(main);

/// Lines each task prints.
const LINES: u32 = 150;

/// Some work between the pieces of a line (a time slice ends in it now and then).
fn work(seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..20_000 {
        x = core::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

/// Task `tag`'s lines: `conlines: task <tag> line <n> <tag x 40>`.
fn print_lines(tag: char) -> u64 {
    let mut x = 0;
    for n in 0..LINES {
        print!("conlines: task {tag} ");
        x ^= work(u64::from(n));
        print!("line {n:03} ");
        x ^= work(x);
        let mut fill = [0u8; 40];
        fill.fill(tag as u8);
        println!("{}", core::str::from_utf8(&fill).unwrap_or("?"));
    }
    x
}

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    let mut children = [0u64; 2];
    for (i, tag) in ['A', 'B'].into_iter().enumerate() {
        match rt::fork() {
            Ok(0) => {
                let x = print_lines(tag);
                rt::exit(i32::from(x == 42));
            }
            Ok(pid) => children[i] = pid,
            Err(e) => println!("conlines: fork failed: {e}"),
        }
    }
    let ended = children.map(rt::wait);
    c.check(
        "conlines-both-printed",
        ended
            .iter()
            .all(|r| matches!(r, Ok((_, WaitStatus::Exited, _)))),
        "a printing task did not exit",
    );
    println!("conlines: {} failures", c.failures);
    c.failures
}
