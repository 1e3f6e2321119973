//! The shell's loop: the prompt, reading a line, and running what it says.

use crate::builtins;
use crate::out::Out;
use alloc::string::String;
use alloc::vec::Vec;
use rt::file::{O_APPEND, O_RDONLY, O_WRONLY};
use rt::{Errno, WaitStatus, eprintln, print, println};
use rt::{O_CREAT, O_TRUNC};
use sh::{Command, Pipeline, Vars};

/// The longest line the shell takes, newline included; a longer one is refused whole
/// ("line too long", status 2). The console itself keeps at most 511 bytes of a line.
pub const LINE_MAX: usize = 256;

/// At most this many background tasks are remembered (`jobs`); init allows a task 128
/// children.
const JOBS_MAX: usize = 64;

/// `$?` of a task that was killed (Ctrl-C or `kill`), as a shell reports SIGINT: 128 + 2.
pub const STATUS_KILLED: i32 = 130;
/// `$?` of a task vm stopped for a bad access (128 + SIGSEGV).
pub const STATUS_SEGV: i32 = 139;
/// `$?` of a task whose pager could not supply a page (128 + SIGBUS).
pub const STATUS_BUS: i32 = 135;
/// `$?` of a command that was not found.
pub const STATUS_NOT_FOUND: i32 = 127;
/// `$?` of a program that could not be started.
pub const STATUS_CANNOT_RUN: i32 = 126;
/// `$?` of a line the shell refused (syntax, too long) and of a built-in's bad usage.
pub const STATUS_USAGE: i32 = 2;

/// The shell's state.
pub struct Shell {
    /// `$?`.
    pub status: i32,
    /// `$!`.
    last_background: Option<u64>,
    /// Background tasks not yet reported ended: pid, the command's name.
    jobs: Vec<(u64, String)>,
    /// Background tasks that ended while the shell waited for a foreground one: reported
    /// at the next prompt.
    ended: Vec<(u64, WaitStatus, u64)>,
    /// Set by `exit`: the shell ends with this status.
    pub exit: Option<i32>,
    /// Whether this shell has the console: it was the foreground task when it started (the
    /// session's program, or a shell started in the foreground by one). Only then do its
    /// foreground pipelines take the console; a shell in the background leaves it alone.
    terminal: bool,
}

/// One line read at the prompt.
enum Line {
    Text(String),
    /// Ctrl-D on an empty line, or no console.
    End,
    /// Ctrl-C: a new prompt.
    Interrupted,
    /// Longer than [`LINE_MAX`]: its length.
    TooLong(usize),
}

/// `sh` reads lines at its prompt until Ctrl-D (or `exit`); `sh -c 'line'` runs one line.
/// Its status: the last command's (`exit n`: n).
pub fn main(args: &[&str]) -> i32 {
    let mut sh = Shell {
        status: 0,
        last_background: None,
        jobs: Vec::new(),
        ended: Vec::new(),
        exit: None,
        terminal: false,
    };
    // Ctrl-C must end the shell's commands, not the shell: a shell that is the console's
    // foreground task when it starts gives it away, and its foreground pipelines take it
    // (`ENODEV`: no console, no matter).
    sh.terminal = rt::console::stats().is_ok_and(|s| s.foreground == rt::getpid());
    if sh.terminal {
        let _ = rt::console::set_foreground(0);
    }
    if let [_, "-c", line, ..] = args {
        sh.run_line(line);
        return sh.exit.unwrap_or(sh.status);
    }
    // A prompt only for a person typing (not for `sh < script` or `... | sh`).
    let prompt = !rt::file::redirected(0);
    if prompt {
        println!("sh: type help for the commands, Ctrl-D to leave");
    }
    let mut input = Reader {
        pending: Vec::new(),
        ended: false,
    };
    loop {
        sh.reap();
        if prompt {
            print!("sh:{}$ ", rt::getcwd());
        }
        match input.line() {
            Line::Text(line) => sh.run_line(&line),
            Line::End => {
                if prompt {
                    println!();
                }
                break;
            }
            // The console echoed `^C` and a newline.
            Line::Interrupted => {}
            Line::TooLong(n) => {
                eprintln!(
                    "sh: line too long ({n} bytes, at most {} taken)",
                    LINE_MAX - 1
                );
                sh.status = STATUS_USAGE;
            }
        }
        if let Some(status) = sh.exit {
            return status;
        }
    }
    sh.status
}

/// Lines from descriptor 0: the console hands one typed line (with its newline) a read, in
/// pieces of at most 464 bytes, or the text before a Ctrl-D without one; a file or a pipe
/// (`sh < script`, `... | sh`) hands many lines a read, kept here until asked for.
struct Reader {
    pending: Vec<u8>,
    /// The input has ended (the rest of `pending` is the last line).
    ended: bool,
}

impl Reader {
    /// The next line.
    fn line(&mut self) -> Line {
        const PIECE: usize = rt::proto::file::READ_MAX;
        let mut piece = [0u8; PIECE];
        // Bytes of an over-long line dropped so far.
        let mut dropped = 0usize;
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let rest = self.pending.split_off(at + 1);
                let line = core::mem::replace(&mut self.pending, rest);
                if dropped > 0 || line.len() > LINE_MAX {
                    return Line::TooLong(dropped + line.len() - 1);
                }
                return Line::Text(text(line));
            }
            if self.ended {
                if self.pending.is_empty() && dropped == 0 {
                    return Line::End;
                }
                let line = core::mem::take(&mut self.pending);
                if dropped > 0 || line.len() >= LINE_MAX {
                    return Line::TooLong(dropped + line.len());
                }
                return Line::Text(text(line));
            }
            // A line longer than the shell takes: its bytes are dropped up to its newline.
            if self.pending.len() >= LINE_MAX {
                dropped += self.pending.len();
                self.pending.clear();
            }
            let n = match rt::console::read(0, &mut piece) {
                Ok(n) => n.min(PIECE),
                Err(Errno::EINTR) => {
                    self.pending.clear();
                    return Line::Interrupted;
                }
                // No console (or it failed): nothing more will come.
                Err(_) => 0,
            };
            if n == 0 {
                self.ended = true;
                continue;
            }
            if self.pending.try_reserve(n).is_err() {
                dropped += n;
                continue;
            }
            self.pending.extend_from_slice(&piece[..n]);
            // The console's Ctrl-D hands a line without its newline: it is a line.
            if n < PIECE && piece[n - 1] != b'\n' && !rt::file::redirected(0) {
                self.pending.push(b'\n');
            }
        }
    }
}

/// A line's bytes as text (invalid UTF-8 replaced).
fn text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

impl Shell {
    fn vars(&self) -> Vars {
        Vars {
            status: self.status,
            pid: rt::getpid(),
            last_background: self.last_background,
        }
    }

    /// Parses and runs one line; `$?` is the last foreground pipeline's status. The whole
    /// line is checked first (a syntax error runs nothing); then each pipeline is parsed
    /// again just before it runs, so that `$?` in it is the status of the one before.
    pub fn run_line(&mut self, line: &str) {
        if let Err(e) = sh::parse(line, &self.vars()) {
            eprintln!("sh: {e}");
            self.status = STATUS_USAGE;
            return;
        }
        for piece in sh::pipelines(line) {
            let Ok(pipelines) = sh::parse(piece, &self.vars()) else {
                continue;
            };
            for p in &pipelines {
                self.run_pipeline(p);
                if self.exit.is_some() {
                    return;
                }
            }
        }
    }

    /// Reports background tasks that ended (without waiting for any).
    fn reap(&mut self) {
        let mut ended = core::mem::take(&mut self.ended);
        for _ in 0..=self.jobs.len() {
            match rt::try_wait(u64::MAX) {
                Ok(Some(r)) => ended.push(r),
                _ => break,
            }
        }
        for (pid, how, value) in ended {
            let name = match self.jobs.iter().position(|(p, _)| *p == pid) {
                Some(i) => self.jobs.swap_remove(i).1,
                None => String::from("?"),
            };
            println!("[{pid}] done: {name} ({})", describe(how, value));
        }
    }

    fn run_pipeline(&mut self, p: &Pipeline) {
        let Some(first) = p.commands.first() else {
            return;
        };
        let name = first.argv[0].as_str();
        if p.commands.len() == 1 && !p.background {
            if name == "time" && first.argv.len() > 1 {
                self.status = self.run_timed(first);
                return;
            }
            // A built-in alone runs in the shell (`cd` must change the shell's directory).
            if builtins::is_builtin(name) {
                self.status = self.run_builtin_here(first);
                return;
            }
        }
        let pids = match self.start_all(p) {
            Ok(pids) => pids,
            Err(status) => {
                self.status = status;
                return;
            }
        };
        if p.background {
            if let Some(&(last, _)) = pids.last() {
                println!("[{last}] {}", line_of(p));
                self.last_background = Some(last);
            }
            for (pid, name) in pids {
                if self.jobs.len() < JOBS_MAX {
                    self.jobs.push((pid, name));
                }
            }
            self.status = 0;
        } else {
            self.status = self.wait_all(&pids);
        }
    }

    /// `time cmd [arg...]`: runs the command (with the line's redirections) and prints,
    /// on descriptor 2, the time it took, the kernel entries meanwhile and the PMU's
    /// instructions retired (the whole system's: every task and server on this CPU; QEMU
    /// counts instructions only under `-icount`, as `make bench` runs it, so `make run`
    /// shows the cycle counter, which follows QEMU's clock).
    pub fn run_timed(&mut self, c: &Command) -> i32 {
        let inner = Pipeline {
            commands: alloc::vec![Command {
                argv: c.argv[1..].to_vec(),
                input: c.input.clone(),
                output: c.output.clone(),
            }],
            background: false,
        };
        let (entries_before, _) = libmk::debug_counters();
        let (ticks_before, freq) = libmk::virtual_counter();
        let cycles_before = libmk::cycle_counter();
        let before = libmk::instructions_retired();
        self.run_pipeline(&inner);
        let after = libmk::instructions_retired();
        let cycles = libmk::cycle_counter().wrapping_sub(cycles_before);
        let (ticks_after, _) = libmk::virtual_counter();
        let (entries_after, _) = libmk::debug_counters();
        let micros = u128::from(ticks_after.wrapping_sub(ticks_before)) * 1_000_000
            / u128::from(freq.max(1));
        let instructions = libmk::instructions_between(before, after);
        let counted = if instructions == 0 {
            String::from("instructions not counted (QEMU counts them under -icount)")
        } else {
            alloc::format!("{instructions} instructions")
        };
        eprintln!(
            "time: {micros} us, {} kernel entries, {cycles} cycles, {counted}",
            entries_after.wrapping_sub(entries_before)
        );
        self.status
    }

    /// The background tasks not yet reported ended.
    pub fn jobs(&self) -> &[(u64, String)] {
        &self.jobs
    }

    /// A built-in in the shell itself, its output redirected if asked.
    fn run_builtin_here(&mut self, c: &Command) -> i32 {
        let out_fd = match &c.output {
            None => 1,
            Some(o) => match open_output(&o.path, o.append) {
                Ok(fd) => fd,
                Err(status) => return status,
            },
        };
        let in_fd = match &c.input {
            None => 0,
            Some(path) => match rt::open(path, O_RDONLY) {
                Ok(fd) => fd,
                Err(e) => {
                    eprintln!("sh: {path}: {e:?}");
                    if out_fd != 1 {
                        let _ = rt::close(out_fd);
                    }
                    return 1;
                }
            },
        };
        let argv: Vec<&str> = c.argv.iter().map(String::as_str).collect();
        let mut out = Out::new(out_fd);
        let status = builtins::run(self, &argv, in_fd, &mut out);
        let written = out.finish();
        if out_fd != 1 {
            let _ = rt::close(out_fd);
        }
        if in_fd != 0 {
            let _ = rt::close(in_fd);
        }
        match written {
            Err(e) if status == 0 => {
                eprintln!("sh: {}: write error: {e:?}", argv[0]);
                1
            }
            _ => status,
        }
    }

    /// Starts every command of `p` as a task of its own (a `fork` of the shell that sets
    /// up its descriptors 0 and 1, then `exec`s the program or runs the built-in), joined
    /// by pipes: the pids and names, in order, or the status to report (what had started
    /// is ended then).
    fn start_all(&mut self, p: &Pipeline) -> Result<Vec<(u64, String)>, i32> {
        let mut pids: Vec<(u64, String)> = Vec::new();
        // The read end of the pipe from the previous command.
        let mut prev: Option<u64> = None;
        let last = p.commands.len() - 1;
        let mut failed = None;
        for (i, c) in p.commands.iter().enumerate() {
            let name = c.argv[0].as_str();
            let program = if builtins::is_builtin(name) {
                None
            } else if let Some(program) = program_name(name) {
                Some(program)
            } else {
                eprintln!("sh: {name}: not found");
                failed = Some(STATUS_NOT_FOUND);
                break;
            };
            let pipe = if i < last {
                match rt::file::pipe() {
                    Ok(fds) => Some(fds),
                    Err(e) => {
                        eprintln!("sh: pipe: {e:?}");
                        failed = Some(STATUS_CANNOT_RUN);
                        break;
                    }
                }
            } else {
                None
            };
            let plumbing = Plumbing {
                input: prev,
                output: pipe.map(|[_, w]| w),
                close: pipe.map(|[r, _]| r),
                foreground: self.terminal && !p.background && i == 0,
            };
            let started = rt::fork();
            if started == Ok(0) {
                rt::exit(self.child(c, program.as_deref(), plumbing));
            }
            // The parent keeps only the read end the next command takes.
            if let Some(fd) = prev.take() {
                let _ = rt::close(fd);
            }
            if let Some([r, w]) = pipe {
                let _ = rt::close(w);
                prev = Some(r);
            }
            match started {
                Ok(pid) => pids.push((pid, String::from(name))),
                Err(e) => {
                    eprintln!("sh: {name}: cannot start: {e:?}");
                    failed = Some(STATUS_CANNOT_RUN);
                    break;
                }
            }
        }
        if let Some(fd) = prev {
            let _ = rt::close(fd);
        }
        match failed {
            None => Ok(pids),
            Some(status) => {
                for (pid, _) in &pids {
                    let _ = rt::kill(*pid);
                }
                let _ = self.wait_all(&pids);
                Err(status)
            }
        }
    }

    /// In the forked child: descriptors 0 and 1 as the pipeline and the redirections say,
    /// then the program (`exec`, which returns only on failure) or the built-in. The
    /// status to exit with.
    fn child(&mut self, c: &Command, program: Option<&str>, plumbing: Plumbing) -> i32 {
        // A foreground task names itself the console's foreground task (Ctrl-C ends it),
        // not the shell for it: a child that has ended already can never be named.
        if plumbing.foreground {
            let _ = rt::console::set_foreground(rt::getpid());
        }
        if let Err(status) = plumb(c, &plumbing) {
            return status;
        }
        let name = c.argv[0].as_str();
        match program {
            None => {
                let argv: Vec<&str> = c.argv.iter().map(String::as_str).collect();
                let mut out = Out::new(1);
                let status = builtins::run(self, &argv, 0, &mut out);
                match out.finish() {
                    // A reader that is gone ends a writer quietly (as SIGPIPE would).
                    Err(Errno::EPIPE) => 1,
                    Err(e) if status == 0 => {
                        eprintln!("sh: {name}: write error: {e:?}");
                        1
                    }
                    _ => status,
                }
            }
            Some(program) => {
                let argv: Vec<&str> = c.argv.iter().map(String::as_str).collect();
                exec_failed(name, rt::execv(program, &argv).err())
            }
        }
    }

    /// Waits for every task of a foreground pipeline: the last one's status. When one is
    /// killed (Ctrl-C ends the first, the foreground task), the others are ended too, as a
    /// terminal's interrupt reaches a whole pipeline. A background task that ends
    /// meanwhile is reported at the next prompt.
    fn wait_all(&mut self, pids: &[(u64, String)]) -> i32 {
        let mut left: Vec<(u64, &str)> = pids.iter().map(|(p, n)| (*p, n.as_str())).collect();
        let last = pids.last().map_or(0, |(p, _)| *p);
        let mut status = 0;
        while !left.is_empty() {
            let (pid, how, value) = match rt::wait(u64::MAX) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("sh: wait: {e:?}");
                    return STATUS_CANNOT_RUN;
                }
            };
            let Some(i) = left.iter().position(|(p, _)| *p == pid) else {
                // A background task: reported at the prompt.
                self.ended.push((pid, how, value));
                continue;
            };
            let (_, name) = left.swap_remove(i);
            if matches!(how, WaitStatus::Segv | WaitStatus::Bus) {
                eprintln!("sh: {name}: {}", describe(how, value));
            }
            if pid == last {
                status = status_of(how, value);
            }
            if how == WaitStatus::Killed {
                for (p, _) in &left {
                    let _ = rt::kill(*p);
                }
            }
        }
        status
    }
}

/// A child's descriptors: the pipe it reads (0) and writes (1), the other end of its
/// output pipe (closed in the child), whether it is the foreground task (the pipeline's
/// first: it names itself before its program prints anything, so that whoever sees the
/// program's first words may type Ctrl-C).
#[derive(Clone, Copy)]
struct Plumbing {
    input: Option<u64>,
    output: Option<u64>,
    close: Option<u64>,
    foreground: bool,
}

/// Sets up a child's 0 and 1: the pipes first, the command's own `<` and `>` over them.
fn plumb(c: &Command, p: &Plumbing) -> Result<(), i32> {
    let onto = |fd: u64, to: u64| -> Result<(), i32> {
        let r = rt::file::dup2(fd, to);
        let _ = rt::close(fd);
        r.map(drop).map_err(|e| {
            eprintln!("sh: dup2: {e:?}");
            STATUS_CANNOT_RUN
        })
    };
    if let Some(fd) = p.close {
        let _ = rt::close(fd);
    }
    if let Some(fd) = p.input {
        onto(fd, 0)?;
    }
    if let Some(fd) = p.output {
        onto(fd, 1)?;
    }
    if let Some(path) = &c.input {
        let fd = rt::open(path, O_RDONLY).map_err(|e| {
            eprintln!("sh: {path}: {e:?}");
            1
        })?;
        onto(fd, 0)?;
    }
    if let Some(o) = &c.output {
        onto(open_output(&o.path, o.append)?, 1)?;
    }
    Ok(())
}

/// A pipeline as the words of its commands, for the background notice.
fn line_of(p: &Pipeline) -> String {
    let mut line = String::new();
    for (i, c) in p.commands.iter().enumerate() {
        if i > 0 {
            line.push_str(" | ");
        }
        line.push_str(&c.argv.join(" "));
    }
    line
}

/// The program a command's first word names: `hello`, `bin/hello`, `/bin/hello` and
/// `./hello` in `/bin` are all `bin/hello`. `None` for a name outside `bin/`.
pub fn program_name(word: &str) -> Option<String> {
    if !word.contains('/') {
        return Some(String::from(word));
    }
    let path = rt::proto::path::join(&rt::getcwd(), word);
    let rest = path.strip_prefix("/bin/")?;
    (!rest.is_empty() && !rest.contains('/')).then(|| String::from(rest))
}

/// What a failed `exec` of `name` prints; the status the child ends with.
fn exec_failed(name: &str, e: Option<Errno>) -> i32 {
    match e {
        Some(Errno::ENOENT | Errno::ENAMETOOLONG | Errno::EINVAL) => {
            eprintln!("sh: {name}: not found");
            STATUS_NOT_FOUND
        }
        Some(e) => {
            eprintln!("sh: {name}: cannot run: {e:?}");
            STATUS_CANNOT_RUN
        }
        None => STATUS_CANNOT_RUN,
    }
}

/// `$?` for how a task ended.
pub fn status_of(how: WaitStatus, value: u64) -> i32 {
    match how {
        WaitStatus::Exited => value as i32,
        WaitStatus::Killed => STATUS_KILLED,
        WaitStatus::Segv => STATUS_SEGV,
        WaitStatus::Bus => STATUS_BUS,
    }
}

/// How a task ended, in words.
fn describe(how: WaitStatus, value: u64) -> String {
    match how {
        WaitStatus::Exited => alloc::format!("exit {}", value as i32),
        WaitStatus::Killed => String::from("killed"),
        WaitStatus::Segv => alloc::format!("segmentation fault at {value:#x}"),
        WaitStatus::Bus => alloc::format!("bus error at {value:#x}"),
    }
}

/// Opens the file of a `>` (created, emptied) or `>>` (created, appended to).
pub fn open_output(path: &str, append: bool) -> Result<u64, i32> {
    let flags = O_WRONLY | O_CREAT | if append { O_APPEND } else { O_TRUNC };
    rt::open(path, flags).map_err(|e| {
        eprintln!("sh: {path}: {e:?}");
        1
    })
}
