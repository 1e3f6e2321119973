//! The built-ins: commands the shell runs itself, each `fn(shell, argv, input, out) ->
//! status`. Their output goes to `out` (descriptor 1, or the file of a `>`), their messages
//! to descriptor 2.

use crate::out::Out;
use crate::outln;
use crate::shell::{self, STATUS_USAGE, Shell};
use alloc::string::String;
use rt::file::O_RDONLY;
use rt::{Errno, RegionKind, TaskState, eprintln};

type Builtin = fn(&mut Shell, &[&str], u64, &mut Out) -> i32;

/// Every built-in: its name, what `help` says of it, and the function.
const BUILTINS: &[(&str, &str, Builtin)] = &[
    ("help", "this list", help),
    (
        "cd",
        "cd [dir]: change the working directory (/ without dir)",
        cd,
    ),
    ("pwd", "the working directory", pwd),
    (
        "ls",
        "ls [dir...]: a directory's entries (sizes in bytes)",
        ls,
    ),
    (
        "cat",
        "cat [file...]: files (or the input) to the output",
        cat,
    ),
    ("echo", "echo [word...]: the words", echo),
    ("rm", "rm file...: remove files", rm),
    ("mkdir", "mkdir dir...: make directories", mkdir),
    ("rmdir", "rmdir dir...: remove empty directories", rmdir),
    (
        "ps",
        "the tasks: pid, parent, state, resident pages, program",
        ps,
    ),
    (
        "kill",
        "kill pid...: end tasks (your own children and theirs)",
        kill,
    ),
    (
        "vmmap",
        "vmmap [pid]: a task's regions (the shell's without pid)",
        vmmap,
    ),
    (
        "stats",
        "the counters of vm, zero (its chunks), the file server and shm",
        stats,
    ),
    (
        "free",
        "memory in KiB: what init gave each server, what it uses, what is free",
        free,
    ),
    (
        "time",
        "time cmd [arg...]: instructions and kernel entries of a command",
        time,
    ),
    ("jobs", "background tasks not yet ended", jobs),
    ("exit", "exit [status]: leave the shell", exit),
    (
        "poweroff",
        "end every task, write files back, power off",
        poweroff,
    ),
];

pub fn is_builtin(name: &str) -> bool {
    BUILTINS.iter().any(|(n, _, _)| *n == name)
}

/// Runs built-in `argv[0]`.
pub fn run(sh: &mut Shell, argv: &[&str], input: u64, out: &mut Out) -> i32 {
    match BUILTINS.iter().find(|(n, _, _)| Some(n) == argv.first()) {
        Some((_, _, f)) => f(sh, argv, input, out),
        None => shell::STATUS_NOT_FOUND,
    }
}

fn help(_: &mut Shell, _: &[&str], _: u64, out: &mut Out) -> i32 {
    outln!(out, "Built-ins:");
    for (name, what, _) in BUILTINS {
        outln!(out, "  {name:9} {what}");
    }
    outln!(
        out,
        "Any other word runs the program bin/<word> with its arguments (ls /bin)."
    );
    outln!(
        out,
        "  cmd & runs it in the background; a ; b one after the other; $? the last status,"
    );
    outln!(
        out,
        "  $$ the shell's pid, $! the last background task's; > file, >> file, < file."
    );
    outln!(
        out,
        "  Ctrl-C ends the command running, Ctrl-D (on an empty line) ends the shell."
    );
    0
}

fn cd(_: &mut Shell, argv: &[&str], _: u64, _: &mut Out) -> i32 {
    let dir = argv.get(1).copied().unwrap_or("/");
    match rt::chdir(dir) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cd: {dir}: {e:?}");
            1
        }
    }
}

fn pwd(_: &mut Shell, _: &[&str], _: u64, out: &mut Out) -> i32 {
    outln!(out, "{}", rt::getcwd());
    0
}

fn ls(_: &mut Shell, argv: &[&str], _: u64, out: &mut Out) -> i32 {
    let dirs: &[&str] = if argv.len() > 1 { &argv[1..] } else { &["."] };
    let mut status = 0;
    for dir in dirs {
        if dirs.len() > 1 {
            outln!(out, "{dir}:");
        }
        let listing = match rt::opendir(dir) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("ls: {dir}: {e:?}");
                status = 1;
                continue;
            }
        };
        for entry in listing {
            match entry {
                Ok(e) if e.is_dir => outln!(out, "{:>9} {}/", "-", e.name),
                Ok(e) => outln!(out, "{:>9} {}", e.size, e.name),
                Err(e) => {
                    eprintln!("ls: {dir}: {e:?}");
                    status = 1;
                }
            }
        }
    }
    status
}

/// Copies descriptor `fd` to `out` until its end.
fn copy(fd: u64, out: &mut Out) -> Result<(), Errno> {
    let mut buf = [0u8; 4096];
    loop {
        let n = if fd == 0 {
            rt::console::read(fd, &mut buf)?
        } else {
            rt::read(fd, &mut buf)?
        };
        if n == 0 {
            return Ok(());
        }
        out.bytes(&buf[..n.min(buf.len())]);
        if let Some(e) = out.error {
            return Err(e);
        }
    }
}

fn cat(_: &mut Shell, argv: &[&str], input: u64, out: &mut Out) -> i32 {
    if argv.len() == 1 {
        return match copy(input, out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cat: {e:?}");
                1
            }
        };
    }
    let mut status = 0;
    for name in &argv[1..] {
        let fd = match rt::open(name, O_RDONLY) {
            Ok(fd) => fd,
            Err(e) => {
                eprintln!("cat: {name}: {e:?}");
                status = 1;
                continue;
            }
        };
        if let Err(e) = copy(fd, out) {
            eprintln!("cat: {name}: {e:?}");
            status = 1;
        }
        let _ = rt::close(fd);
    }
    status
}

fn echo(_: &mut Shell, argv: &[&str], _: u64, out: &mut Out) -> i32 {
    let mut line = String::new();
    for (i, word) in argv.iter().skip(1).enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(word);
    }
    outln!(out, "{line}");
    0
}

/// Runs `f` on every argument, reporting failures as `cmd: name: error`.
fn each(argv: &[&str], f: fn(&str) -> Result<(), Errno>) -> i32 {
    if argv.len() < 2 {
        eprintln!("usage: {} name...", argv[0]);
        return STATUS_USAGE;
    }
    let mut status = 0;
    for name in &argv[1..] {
        if let Err(e) = f(name) {
            eprintln!("{}: {name}: {e:?}", argv[0]);
            status = 1;
        }
    }
    status
}

fn rm(_: &mut Shell, argv: &[&str], _: u64, _: &mut Out) -> i32 {
    each(argv, rt::unlink)
}

fn mkdir(_: &mut Shell, argv: &[&str], _: u64, _: &mut Out) -> i32 {
    each(argv, rt::mkdir)
}

fn rmdir(_: &mut Shell, argv: &[&str], _: u64, _: &mut Out) -> i32 {
    each(argv, rt::rmdir)
}

/// A pid argument, or the usage message.
fn pid_arg(cmd: &str, arg: &str) -> Option<u64> {
    match arg.parse::<u64>() {
        Ok(pid) => Some(pid),
        Err(_) => {
            eprintln!("{cmd}: {arg}: not a pid");
            None
        }
    }
}

fn ps(_: &mut Shell, _: &[&str], _: u64, out: &mut Out) -> i32 {
    outln!(out, "  PID PARENT STATE    PAGES PROGRAM");
    let mut from = 0;
    // At most as many calls as init has tasks (1,024), each giving a higher pid.
    for _ in 0..=1024 {
        let t = match rt::task_at(from) {
            Ok(t) => t,
            Err(Errno::ESRCH) => return 0,
            Err(e) => {
                eprintln!("ps: {e:?}");
                return 1;
            }
        };
        let (state, pages) = match t.state {
            TaskState::Running => (
                "running",
                rt::space_info(t.pid)
                    .map_or(String::from("-"), |s| alloc::format!("{}", s.resident)),
            ),
            TaskState::Zombie => ("ended", String::from("-")),
        };
        outln!(
            out,
            "{:5} {:6} {:7} {:>6} {}",
            t.pid,
            t.parent,
            state,
            pages,
            t.name
        );
        match t.pid.checked_add(1) {
            Some(next) => from = next,
            None => return 0,
        }
    }
    0
}

fn kill(_: &mut Shell, argv: &[&str], _: u64, _: &mut Out) -> i32 {
    if argv.len() < 2 {
        eprintln!("usage: kill pid...");
        return STATUS_USAGE;
    }
    let mut status = 0;
    for arg in &argv[1..] {
        let Some(pid) = pid_arg("kill", arg) else {
            status = 1;
            continue;
        };
        if let Err(e) = rt::kill(pid) {
            eprintln!("kill: {pid}: {e:?}");
            status = 1;
        }
    }
    status
}

fn vmmap(_: &mut Shell, argv: &[&str], _: u64, out: &mut Out) -> i32 {
    let pid = match argv.get(1) {
        None => rt::getpid(),
        Some(arg) => match pid_arg("vmmap", arg) {
            Some(pid) => pid,
            None => return STATUS_USAGE,
        },
    };
    let info = match rt::space_info(pid) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("vmmap: {pid}: {e:?}");
            return 1;
        }
    };
    let name = rt::task_at(pid)
        .ok()
        .filter(|t| t.pid == pid)
        .map_or(String::new(), |t| String::from(t.name.as_str()));
    outln!(
        out,
        "vmmap {pid} {name}: {} regions, {} pages resident",
        info.regions,
        info.resident
    );
    let mut from = 0;
    // One call per region; a task has at most 65,530.
    for _ in 0..=info.regions.max(65_536) {
        let r = match rt::region_at(pid, from) {
            Ok(r) => r,
            Err(Errno::ENOENT) => return 0,
            Err(e) => {
                eprintln!("vmmap: {pid}: {e:?}");
                return 1;
            }
        };
        let p = |bit, c| if r.prot & bit != 0 { c } else { '-' };
        let kind = match r.kind {
            RegionKind::Anon => "anon",
            RegionKind::Image => "image",
            RegionKind::Frame => "frame",
            RegionKind::File => "file",
            RegionKind::Shm => "shm",
            RegionKind::SharedAnon => "anon",
        };
        outln!(
            out,
            "  {:#014x}-{:#014x} {}{}{}{} {:5} {:6} pages resident",
            r.start,
            r.end,
            p(rt::PROT_READ, 'r'),
            p(rt::PROT_WRITE, 'w'),
            p(rt::PROT_EXEC, 'x'),
            if r.shared { 's' } else { 'p' },
            kind,
            r.resident
        );
        if r.end <= from {
            eprintln!("vmmap: vm answered a region that does not move on");
            return 1;
        }
        from = r.end;
    }
    0
}

fn stats(_: &mut Shell, _: &[&str], _: u64, out: &mut Out) -> i32 {
    let mut status = 0;
    match rt::vm_stats() {
        Ok(v) => {
            outln!(
                out,
                "vm:    {} faults, {} pages in use, {} zero-filled, {} copied, {} zero-page maps, {} KiB heap",
                v.faults,
                v.pages_in_use,
                v.pages_zero_filled,
                v.pages_copied,
                v.zero_page_maps,
                v.heap_bytes / 1024
            );
            outln!(
                out,
                "zero:  {} chunks of 2 MiB given to vm ({} pages)",
                v.chunks,
                v.chunks * rt::proto::CHUNK_PAGES
            );
        }
        Err(e) => {
            eprintln!("stats: vm: {e:?}");
            status = 1;
        }
    }
    match rt::file_stats() {
        Ok(f) => {
            outln!(
                out,
                "file:  {} object pages ({} requests), {} blocks read, {} sectors read, {} written",
                f.object_pages,
                f.object_requests,
                f.blocks_read,
                f.sectors_read,
                f.sectors_written
            );
            outln!(
                out,
                "       cache: {} of {} blocks, {} hits, {} misses, {} evicted, {} written back",
                f.cached,
                f.budget,
                f.hits,
                f.misses,
                f.evicted,
                f.written_back
            );
        }
        Err(e) => outln!(out, "file:  {e:?}"),
    }
    match rt::shm::descriptors() {
        Ok(d) => outln!(out, "shm:   {} descriptors, {} objects", d.fds, d.objects),
        Err(e) => outln!(out, "shm:   {e:?}"),
    }
    status
}

fn free(_: &mut Shell, _: &[&str], _: u64, out: &mut Out) -> i32 {
    let m = match rt::memory() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("free: init: {e:?}");
            return 1;
        }
    };
    let vm = rt::vm_stats().ok();
    let file = rt::file_stats().ok();
    let kib = |bytes: u64| bytes / 1024;
    // One row: what the server was given, what its counters say it uses, the rest.
    let row = |out: &mut Out, what: &str, budget: u64, used: Option<u64>| match used {
        Some(used) => outln!(
            out,
            "{what:11} {:>9} {:>9} {:>9}",
            kib(budget),
            kib(used),
            kib(budget.saturating_sub(used))
        ),
        None => outln!(out, "{what:11} {:>9} {:>9} {:>9}", kib(budget), "-", "-"),
    };
    outln!(out, "KiB           budget      used      free");
    outln!(out, "{:11} {:>9}", "ram", kib(m.ram));
    outln!(
        out,
        "{:11} {:>9} {:>9} {:>9}",
        "init",
        "-",
        "-",
        kib(m.init_free)
    );
    row(out, "zero", m.zero, vm.map(|v| v.chunks << 21));
    row(
        out,
        "vm pages",
        m.zero.min(vm.map_or(0, |v| v.chunks << 21)),
        vm.map(|v| v.pages_in_use * 4096),
    );
    row(out, "vm heap", m.vm_heap, vm.map(|v| v.heap_bytes));
    row(out, "vm tables", m.vm_tables, None);
    match file {
        Some(f) => row(out, "file cache", f.budget << 16, Some(f.cached << 16)),
        None => outln!(out, "{:11} {:>9}", "file cache", "-"),
    }
    row(out, "file heap", m.file_heap, None);
    row(out, "shm", m.shm, None);
    0
}

/// `time cmd [arg...]` in a pipeline or the background (alone on a line, the shell runs
/// it with the line's redirections: `Shell::run_timed`).
fn time(sh: &mut Shell, argv: &[&str], _: u64, _: &mut Out) -> i32 {
    if argv.len() < 2 {
        eprintln!("usage: time cmd [arg...]");
        return STATUS_USAGE;
    }
    let c = sh::Command {
        argv: argv.iter().map(|w| String::from(*w)).collect(),
        input: None,
        output: None,
    };
    sh.run_timed(&c)
}

fn jobs(sh: &mut Shell, _: &[&str], _: u64, out: &mut Out) -> i32 {
    for (pid, name) in sh.jobs() {
        outln!(out, "[{pid}] {name}");
    }
    0
}

fn exit(sh: &mut Shell, argv: &[&str], _: u64, _: &mut Out) -> i32 {
    let status = match argv.get(1).map(|s| s.parse::<i32>()) {
        None => sh.status,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("exit: {}: not a number", argv[1]);
            return STATUS_USAGE;
        }
    };
    sh.exit = Some(status);
    status
}

fn poweroff(_: &mut Shell, _: &[&str], _: u64, _: &mut Out) -> i32 {
    match rt::shutdown() {
        Err(Errno::EPERM) => {
            eprintln!("poweroff: only the session's first program may (this shell is not)");
            1
        }
        Err(e) => {
            eprintln!("poweroff: {e:?}");
            1
        }
        Ok(never) => match never {},
    }
}
