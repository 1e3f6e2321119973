//! Arguments and environment (issue 11): argv and the environment travel through `spawn`
//! and `exec` to the new program's `main`, `fork` keeps them, the limits are `E2BIG`, and
//! init refuses forged argument areas (lengths and counts it must not trust) with an errno
//! and serves on. Run as `run=argtest,one,two` (boot scenario `proc-argv`); the copies it
//! starts take a mode as `argv[1]` and check what they got, exiting 0 when it is right.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use demos::{Checks, poke};
use rt::ipc::Client;
use rt::proto::args::{ARG_MAX, MAGIC, MAX_ARGS};
use rt::proto::{Errno, Name, ProcRequest, USER_ARGS_OUT, task_slots};
use rt::{WaitStatus, println};

rt::entry!(main);

const PROC: Client = Client::at(task_slots::PROC);

fn main(args: &[&str]) -> i32 {
    match args.get(1).copied() {
        Some("child") => child_checks(args),
        Some("grandchild") => exit_if(
            rt::env("K") == Some("V"),
            "the environment was not inherited",
        ),
        Some("spawn-inherit") => inherit(),
        Some("execed") => exit_if(
            args == ["argtest", "execed", "x y"] && rt::environ().eq(["E=1"]),
            "exec's argv or environment",
        ),
        Some("fork-then-execv") => {
            let e = rt::execv("argtest", &["argtest", "exec-keeps-env"]);
            println!("argtest: execv failed: {e:?}");
            1
        }
        Some("exec-keeps-env") => exit_if(
            rt::env("KEEP") == Some("yes"),
            "exec dropped the environment",
        ),
        Some("long") => exit_if(
            args.len() == 2 + 1 && args[2].len() == ARG_MAX - 1 - "argtest\0long\0".len(),
            "the longest argv did not arrive whole",
        ),
        Some("many") => exit_if(
            args.len() == MAX_ARGS,
            "the most strings did not all arrive",
        ),
        _ => session(args),
    }
}

/// Exits 0 when `ok`, else prints why and exits 1.
fn exit_if(ok: bool, why: &str) -> i32 {
    if !ok {
        println!(
            "argtest: in pid {}: {why}: argv {:?}",
            rt::getpid(),
            rt::args().collect::<Vec<_>>()
        );
    }
    i32::from(!ok)
}

fn child_checks(args: &[&str]) -> i32 {
    exit_if(
        args == ["argtest", "child", "a b", "é", ""]
            && rt::environ().eq(["K=V", "X=1"])
            && rt::env("X") == Some("1")
            && rt::env("NONE").is_none(),
        "spawn's argv or environment",
    )
}

/// With K=V in its environment: spawns a grandchild with `spawnv` (the environment
/// inherited) and exits with its status.
fn inherit() -> i32 {
    match rt::spawnv("argtest", &["argtest", "grandchild"]).and_then(rt::wait) {
        Ok((_, WaitStatus::Exited, s)) => s as i32,
        _ => 1,
    }
}

/// Waits for `pid` and says whether it exited with 0.
fn exited_0(pid: Result<u64, Errno>) -> Result<(), &'static str> {
    match pid.and_then(rt::wait) {
        Ok((_, WaitStatus::Exited, 0)) => Ok(()),
        Ok(_) => Err("the program did not find what it was given"),
        Err(_) => Err("spawn or wait failed"),
    }
}

/// Writes `bytes` into the outgoing argument area directly (as a program that skips the
/// runtime would), a word at a time.
fn put_raw(bytes: &[u8]) {
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        poke(USER_ARGS_OUT + 8 * i as u64, u64::from_le_bytes(w));
    }
}

/// An area: the header's four words, then the bytes.
fn raw_area(argc: u32, envc: u32, len: u32, magic: u32, strings: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    for w in [argc, envc, len, magic] {
        a.extend_from_slice(&w.to_le_bytes());
    }
    a.extend_from_slice(strings);
    a
}

fn name(s: &str) -> Name {
    match Name::new(s) {
        Ok(n) => n,
        Err(_) => rt::stop(),
    }
}

fn session(args: &[&str]) -> i32 {
    let mut c = Checks::default();
    println!("argtest: my argv: {args:?}");
    c.check(
        "argv-boot",
        args == ["argtest", "one", "two"] && rt::environ().count() == 0,
        "run=argtest,one,two did not give argv [argtest, one, two] and no environment",
    );
    c.check(
        "argv-accessors",
        rt::args().eq(args.iter().copied()) && rt::env("HOME").is_none(),
        "rt::args() differs from main's argv",
    );
    c.run("argv-spawn", || {
        exited_0(rt::spawnve(
            "argtest",
            &["argtest", "child", "a b", "é", ""],
            &["K=V", "X=1"],
        ))
    });
    c.run("argv-spawn-env-inherited", || {
        exited_0(rt::spawnve(
            "argtest",
            &["argtest", "spawn-inherit"],
            &["K=V"],
        ))
    });
    c.run("argv-exec", || {
        let pid = rt::fork();
        if pid == Ok(0) {
            let e = rt::execve("argtest", &["argtest", "execed", "x y"], &["E=1"]);
            println!("argtest: execve failed: {e:?}");
            rt::exit(1);
        }
        exited_0(pid)
    });
    c.run("argv-exec-keeps-env", || {
        // A task with KEEP=yes (spawned so) execs with execv: the environment stays.
        exited_0(rt::spawnve(
            "argtest",
            &["argtest", "fork-then-execv"],
            &["KEEP=yes"],
        ))
    });
    c.run("argv-fork-keeps", || {
        let pid = rt::fork();
        if pid == Ok(0) {
            rt::exit(i32::from(!rt::args().eq(["argtest", "one", "two"])));
        }
        exited_0(pid)
    });
    c.run("argv-exec-failure-keeps", || {
        // A failed exec leaves the caller as it was, its arguments too.
        match rt::execv("no-such-program", &["no-such-program", "z"]) {
            Err(Errno::ENOENT) if rt::args().eq(["argtest", "one", "two"]) => Ok(()),
            _ => Err("a failed exec was not ENOENT with the arguments kept"),
        }
    });
    c.run("argv-arg-max", || {
        // Exactly ARG_MAX bytes (each string with its NUL) arrive; one more is E2BIG.
        let fill = "a".repeat(ARG_MAX - 1 - "argtest\0long\0".len());
        exited_0(rt::spawnve("argtest", &["argtest", "long", &fill], &[]))?;
        let over = String::from(fill.as_str()) + "a";
        match rt::spawnve("argtest", &["argtest", "long", &over], &[]) {
            Err(Errno::E2BIG) => Ok(()),
            _ => Err("one byte past ARG_MAX was not E2BIG"),
        }
    });
    c.run("argv-max-args", || {
        let mut many = vec!["m"; MAX_ARGS];
        many[0] = "argtest";
        many[1] = "many";
        exited_0(rt::spawnv("argtest", &many))?;
        let mut more = many.clone();
        more.push("m");
        match (
            rt::spawnv("argtest", &more),
            rt::spawnve("argtest", &many, &["A=1"]),
        ) {
            (Err(Errno::E2BIG), Err(Errno::E2BIG)) => Ok(()),
            _ => Err("more than MAX_ARGS strings was not E2BIG"),
        }
    });
    c.run("argv-bad-strings", || {
        let e = [
            rt::spawnv("argtest", &[]),
            rt::spawnv("argtest", &["a\0b"]),
            rt::spawnve("argtest", &["argtest"], &["NOEQUALS"]),
            rt::spawnve("argtest", &["argtest"], &["=v"]),
        ];
        if e.iter().all(|r| *r == Err(Errno::EINVAL)) {
            Ok(())
        } else {
            Err("an empty argv, a NUL or a bad environment string was not EINVAL")
        }
    });
    forged(&mut c);
    println!("argtest: {} failures", c.failures);
    c.failures
}

/// Argument areas written past the runtime, as an attacker would: init must answer each
/// with an errno and serve on.
fn forged(c: &mut Checks) {
    let good = b"argtest\0child\0";
    let big = vec![b'b'; 5000];
    let mut big_strings = big.clone();
    big_strings.push(0);
    let mut many = Vec::new();
    for _ in 0..MAX_ARGS + 1 {
        many.extend_from_slice(b"m\0");
    }
    let cases: [(&str, Vec<u8>, Errno); 11] = [
        (
            "huge length",
            raw_area(2, 0, u32::MAX, MAGIC, good),
            Errno::E2BIG,
        ),
        (
            "length past the area",
            raw_area(2, 0, 9000, MAGIC, good),
            Errno::E2BIG,
        ),
        (
            "huge count",
            raw_area(u32::MAX, 0, 14, MAGIC, good),
            Errno::E2BIG,
        ),
        (
            "huge environment count",
            raw_area(2, u32::MAX - 1, 14, MAGIC, good),
            Errno::E2BIG,
        ),
        (
            "5000 bytes of strings",
            raw_area(1, 0, 5001, MAGIC, &big_strings),
            Errno::E2BIG,
        ),
        (
            "257 strings",
            raw_area(MAX_ARGS as u32 + 1, 0, many.len() as u32, MAGIC, &many),
            Errno::E2BIG,
        ),
        (
            "count above the NULs",
            raw_area(3, 0, 14, MAGIC, good),
            Errno::EINVAL,
        ),
        (
            "length cutting a string",
            raw_area(2, 0, 12, MAGIC, good),
            Errno::EINVAL,
        ),
        ("no magic word", raw_area(2, 0, 14, 0, good), Errno::EINVAL),
        (
            "not UTF-8",
            raw_area(1, 0, 3, MAGIC, b"\xff\xfe\0"),
            Errno::EINVAL,
        ),
        ("no argv", raw_area(0, 1, 4, MAGIC, b"A=1\0"), Errno::EINVAL),
    ];
    let mut ok = true;
    for (what, area, want) in &cases {
        put_raw(area);
        let spawn = ProcRequest::spawn_args(&PROC, name("argtest"));
        put_raw(area);
        let exec = ProcRequest::exec_args(&PROC, name("argtest"));
        if spawn != Err(*want) || exec != Err(*want) {
            println!("argtest: forged area ({what}): spawn {spawn:?}, exec {exec:?}, want {want}");
            ok = false;
        }
    }
    c.check(
        "argv-forged-areas",
        ok,
        "init accepted a forged argument area or answered it with the wrong errno",
    );
    // The area a task gave up: init reads its own mapping of the frame, never the task's
    // address space, so unmapping it (or mapping something else there) changes nothing.
    c.run("argv-area-unmapped", || {
        let pid = rt::fork();
        if pid == Ok(0) {
            put_raw(&raw_area(2, 0, u32::MAX, MAGIC, good));
            let gone = rt::munmap(USER_ARGS_OUT, rt::proto::args::AREA_BYTES as u64);
            let other = rt::mmap(
                USER_ARGS_OUT,
                rt::proto::args::AREA_BYTES as u64,
                rt::PROT_READ | rt::PROT_WRITE,
                rt::MAP_PRIVATE | rt::MAP_ANONYMOUS | rt::MAP_FIXED,
                rt::NO_FD,
                0,
            );
            if other.is_ok() {
                put_raw(&raw_area(2, 0, 14, MAGIC, good));
            }
            let r = ProcRequest::spawn_args(&PROC, name("argtest"));
            rt::exit(i32::from(!(gone.is_ok() && r == Err(Errno::E2BIG))));
        }
        exited_0(pid)
    });
    c.run("argv-init-serves-on", || {
        exited_0(rt::spawnve(
            "argtest",
            &["argtest", "child", "a b", "é", ""],
            &["K=V", "X=1"],
        ))
    });
}
