//! The console's line discipline and descriptors 0..2, driven by scenario `console-read`,
//! which types on the serial line after each of this program's prompts (`conread: type
//! ...`): backspace, Ctrl-U, Ctrl-D (a partial line, then end of input), a line longer
//! than the server keeps, Ctrl-C ending a looping child that is the foreground task (its
//! wait status says so), Ctrl-C ending a read, a reader killed while it waits (the server
//! drops it and the next line comes here), bad descriptors, the foreground rule, and a
//! task's unfinished output line: bounded, and out when the task ends.
#![no_std]
#![no_main]

use abi::message::NOTIFICATION_LABEL;
use demos::{Checks, settled};
use libmk::Message;
use rt::ipc::Client;
use rt::proto::console::{LINE_MAX, READERS_MAX};
use rt::proto::file::READ_MAX;
use rt::proto::{Errno, Label, ServerControl, WaitStatus, pid, task_slots};
use rt::{print, println};

rt::entry!(main);

/// Prompts with `what` (the scenario types when it sees it) and reads one line.
fn ask(what: &str, buf: &mut [u8]) -> Result<usize, Errno> {
    println!("conread: type {what}");
    rt::read(0, buf)
}

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    let mut buf = [0u8; 1024];

    let r = ask("abx, backspace, d, Enter", &mut buf);
    let got = r.map(|n| &buf[..n]);
    println!("conread: read {got:?}");
    c.check(
        "console-backspace",
        got == Ok(b"abd\n".as_slice()),
        "backspace did not erase the x",
    );

    let r = ask("junk, Ctrl-U, ok, Enter", &mut buf);
    c.check(
        "console-ctrl-u",
        r.map(|n| &buf[..n]) == Ok(b"ok\n".as_slice()),
        "Ctrl-U did not clear the line",
    );

    let r = ask("abc, Ctrl-D", &mut buf);
    c.check(
        "console-ctrl-d-partial",
        r.map(|n| &buf[..n]) == Ok(b"abc".as_slice()),
        "Ctrl-D did not hand over the partial line without a newline",
    );

    let r = ask("Ctrl-D on an empty line", &mut buf);
    c.check(
        "console-eof",
        r == Ok(0),
        "Ctrl-D on an empty line is not end of input",
    );

    // 600 bytes typed: the server keeps LINE_MAX - 1 and the newline; one read gives at
    // most READ_MAX, the next the rest of the line.
    let first = ask("a line of 600 x", &mut buf);
    let second = rt::read(0, &mut buf[READ_MAX..]);
    let total = first.unwrap_or(0) + second.unwrap_or(0);
    let whole = &buf[..total.min(buf.len())];
    println!("conread: long line read as {first:?} + {second:?} bytes");
    c.check(
        "console-long-line",
        first == Ok(READ_MAX)
            && total == LINE_MAX
            && whole[..LINE_MAX - 1].iter().all(|&b| b == b'x')
            && whole[LINE_MAX - 1] == b'\n',
        "the long line was not cut at the server's bound",
    );

    // Bad descriptors: EBADF from whichever server owns the number, never a crash.
    let bad = [
        rt::write(99, b"x"),
        rt::read(99, &mut buf),
        rt::write(70_000, b"x"),
        rt::write(u64::MAX, b"x"),
    ];
    println!("conread: bad descriptors: {bad:?}");
    c.check(
        "console-ebadf",
        bad.iter().all(|r| *r == Err(Errno::EBADF))
            && rt::lseek(1, 0, rt::Whence::Set) == Err(Errno::ESPIPE),
        "a bad descriptor was not EBADF",
    );

    foreground_rule(&mut c);
    ctrl_c_ends_the_foreground(&mut c);
    ctrl_c_ends_a_read(&mut c);
    forged(&mut c);
    dead_reader(&mut c, &mut buf);
    readers_bounded(&mut c);
    unfinished_line(&mut c);

    println!("conread: {} failures", c.failures);
    // Printed without a newline, right before the end: the server sends it out when init
    // tells it the task ended, before the machine powers off.
    print!("conread: last words");
    c.failures
}

/// The session's program starts as the foreground task (init names it); only the
/// foreground task (or anyone, when there is none) may name the foreground.
fn foreground_rule(c: &mut Checks) {
    let me = rt::getpid();
    let first = rt::console::stats().map(|s| s.foreground);
    c.check(
        "console-session-foreground",
        first == Ok(me),
        "the session's program is not the foreground task",
    );
    let mine = rt::console::set_foreground(me);
    match rt::fork() {
        Ok(0) => {
            let stolen = rt::console::set_foreground(rt::getpid());
            rt::exit(i32::from(stolen == Err(Errno::EPERM)));
        }
        Ok(child) => {
            let refused = matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 1)));
            let cleared = rt::console::set_foreground(0);
            c.check(
                "console-foreground-eperm",
                mine.is_ok() && refused && cleared.is_ok(),
                "another task took the foreground",
            );
        }
        Err(e) => {
            println!("conread: fork failed: {e}");
            c.check("console-foreground-eperm", false, "fork failed");
        }
    }
}

/// Ctrl-C ends a child that loops without reading, once it is the foreground task.
fn ctrl_c_ends_the_foreground(c: &mut Checks) {
    let child = match rt::fork() {
        Ok(0) => loop {
            rt::sched_yield();
        },
        Ok(child) => child,
        Err(_) => {
            c.check("console-ctrl-c", false, "fork failed");
            return;
        }
    };
    let set = rt::console::set_foreground(child);
    println!("conread: type Ctrl-C to end the looping task {child}");
    let ended = rt::wait(child);
    println!("conread: the looping task: {ended:?}");
    let stats = rt::console::stats();
    c.check(
        "console-ctrl-c",
        set.is_ok()
            && matches!(ended, Ok((p, WaitStatus::Killed, _)) if p == child)
            && stats.is_ok_and(|s| s.foreground == 0 && s.interrupts == 1),
        "Ctrl-C did not end the foreground task",
    );
}

/// Ctrl-C while a child waits in `read` (not the foreground: it is not ended): `EINTR`.
/// The prompt comes once the server holds the child's read (Ctrl-C is an event, not
/// input: typed before the read, it would find no reader). The foreground task named is
/// vm, which Ctrl-C must not end (init refuses: the console server says so), and vm still
/// serves (the next checks fork).
fn ctrl_c_ends_a_read(c: &mut Checks) {
    let child = match rt::fork() {
        Ok(0) => {
            let mut b = [0u8; 16];
            let r = rt::read(0, &mut b);
            rt::exit(i32::from(r == Err(Errno::EINTR)))
        }
        Ok(child) => child,
        Err(_) => {
            c.check("console-read-eintr", false, "fork failed");
            return;
        }
    };
    let named = rt::console::set_foreground(pid::VM);
    let waiting = settled(&1, || rt::console::stats().map_or(0, |s| s.readers));
    println!("conread: type Ctrl-C during the child's read ({waiting} waiting)");
    let ended = rt::wait(child);
    let after = rt::console::stats().map(|s| s.foreground);
    c.check(
        "console-read-eintr",
        named.is_ok()
            && waiting == 1
            && matches!(ended, Ok((_, WaitStatus::Exited, 1)))
            && after == Ok(0),
        "Ctrl-C did not end the read with EINTR",
    );
}

/// What only init or the UART may send, sent by a task: refused, nothing changed.
fn forged(c: &mut Checks) {
    let console = Client::at(task_slots::CONSOLE);
    let exit = ServerControl::task_exit(&console, rt::getpid());
    let sync = ServerControl::sync_all(&console);
    // A notification's label from a task: the server reads the UART (nothing there) and
    // answers with an error.
    let notify = console
        .0
        .call(&Message::new(NOTIFICATION_LABEL, &[]))
        .map(|r| r.mrs[0]);
    // A `Write` saying 400 bytes follow in a message of none.
    let short = console
        .0
        .call(&Message::new(Label::Write as u64, &[1, u64::MAX, 400, 400]))
        .map(|r| r.mrs[0]);
    println!(
        "conread: forged: TaskExit {exit:?}, SyncAll {sync:?}, notification {notify:?}, short write {short:?}"
    );
    c.check(
        "console-forged",
        exit == Err(Errno::EPERM)
            && sync == Err(Errno::EPERM)
            && notify == Ok(Errno::EINVAL as u64)
            && short == Ok(Errno::EINVAL as u64),
        "the console server took a forged request",
    );
}

/// A reader killed while it waits: the server forgets it (no saved reply left), and the
/// next line goes to the next reader.
fn dead_reader(c: &mut Checks, buf: &mut [u8]) {
    let child = match rt::fork() {
        Ok(0) => {
            let mut b = [0u8; 16];
            let _ = rt::read(0, &mut b);
            rt::exit(0)
        }
        Ok(child) => child,
        Err(_) => {
            c.check("console-dead-reader", false, "fork failed");
            return;
        }
    };
    let waiting = settled(&1, || rt::console::stats().map_or(0, |s| s.readers));
    let killed = rt::kill(child);
    let reaped = rt::wait(child);
    let left = settled(&0, || rt::console::stats().map_or(9, |s| s.readers));
    println!("conread: readers while the child waited {waiting}, after its end {left}");
    let r = ask("still, Enter", buf);
    c.check(
        "console-dead-reader",
        waiting == 1
            && killed.is_ok()
            && matches!(reaped, Ok((_, WaitStatus::Killed, _)))
            && left == 0
            && r.map(|n| &buf[..n]) == Ok(b"still\n".as_slice()),
        "a killed reader was left behind, or took the next line",
    );
}

/// Tasks reading when nothing is typed: the server keeps at most `READERS_MAX` of them
/// waiting (a saved reply each); one more is `EAGAIN` at once. Killed, they leave nothing.
fn readers_bounded(c: &mut Checks) {
    let mut children = [0u64; READERS_MAX];
    for child in &mut children {
        match rt::fork() {
            Ok(0) => {
                let mut b = [0u8; 16];
                let _ = rt::read(0, &mut b);
                rt::exit(0)
            }
            Ok(pid) => *child = pid,
            Err(e) => println!("conread: fork failed: {e}"),
        }
    }
    let waiting = settled(&(READERS_MAX as u64), || {
        rt::console::stats().map_or(0, |s| s.readers)
    });
    let mut b = [0u8; 16];
    let one_more = rt::read(0, &mut b);
    for &child in &children {
        let _ = rt::kill(child);
        let _ = rt::wait(child);
    }
    let left = settled(&0, || rt::console::stats().map_or(99, |s| s.readers));
    println!("conread: {waiting} readers waiting, one more: {one_more:?}, after their end {left}");
    c.check(
        "console-readers-bounded",
        waiting == READERS_MAX as u64 && one_more == Err(Errno::EAGAIN) && left == 0,
        "the server kept more readers than its bound, or kept dead ones",
    );
}

/// A task that writes without a newline makes the server hold at most LINE_MAX bytes: the
/// rest goes out in pieces.
fn unfinished_line(c: &mut Checks) {
    let chunk = [b'y'; 1000];
    let wrote = rt::write(1, &chunk).and_then(|a| rt::write(1, &chunk).map(|b| a + b));
    let held = rt::console::stats().map(|s| s.pending_bytes);
    println!();
    println!("conread: wrote {wrote:?} bytes without a newline, the server held {held:?}");
    c.check(
        "console-bounded-line",
        wrote == Ok(2000) && held.is_ok_and(|h| h < LINE_MAX as u64),
        "the server held more than a line",
    );
}
