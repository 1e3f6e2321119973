//! The lecture's slides "Shared Memory: Example" and "Shared Memory" (mapping it at
//! different or at the same address), on this system: POSIX shared memory objects served by
//! the shm server, mapped by vm. An unrelated task (`shmpeer`, started with `spawn`, not
//! `fork`: it shares nothing with this one but the object's name) opens and maps what this
//! task wrote. Which part `shmpeer` plays is the size of the object `/shm-step` (so that
//! telling it needs no shared memory itself). One `PASS`/`FAIL` line per check; exits with
//! the number of failures.
#![no_std]
#![no_main]

use demos::{Checks, peek, poke};
use rt::{
    Errno, MAP_FIXED, MAP_SHARED, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE,
    WaitStatus, println,
};

rt::entry!(main);

use demos::shm_demo::{LIST_ADDR_WRITER as LIST_ADDR, NODE_BYTES, NODES, SAME_ADDR};

fn main() -> i32 {
    let mut c = Checks::default();
    println!("shm: POSIX shared memory between unrelated tasks (the shm server, mapped by vm)");
    // Left over from an earlier run in the same boot: start clean.
    for name in ["/shm1", "/list", "/same", "/shm-step"] {
        let _ = rt::shm_unlink(name);
    }

    // The slide's program, line by line.
    println!("shm: int fd = shm_open(\"/shm1\", O_CREAT | O_EXCL | O_RDWR, 0600);");
    let fd = rt::shm_open("/shm1", O_CREAT | O_EXCL | O_RDWR, 0o600);
    println!("shm:   -> {}", demos::Mapped(fd));
    c.run("shm-open-create", || {
        let fd = fd.map_err(|_| "shm_open failed")?;
        match rt::fstat(fd) {
            Ok(s) if s.size == 0 => Ok(()),
            Ok(_) => Err("a new object does not have size 0"),
            Err(_) => Err("fstat failed"),
        }
    });
    let fd = fd.unwrap_or(u64::MAX);
    println!("shm: ftruncate(fd, 4096); // set shmem size");
    c.run("shm-ftruncate", || {
        rt::ftruncate(fd, 4096).map_err(|_| "ftruncate failed")?;
        match rt::fstat(fd) {
            Ok(s) if s.size == 4096 => Ok(()),
            _ => Err("fstat does not say 4096"),
        }
    });
    println!("shm: int *p = (int *) mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);");
    let p = rt::mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    println!("shm:   -> {}", demos::Mapped(p));
    println!("shm: for (int i = 0; i < 1024; i++) p[i] = i;  close(fd);");
    c.run("shm-slide-example", || {
        let p = p.map_err(|_| "mmap of the shm descriptor failed")?;
        for i in 0..1024u32 {
            poke_i32(p + 4 * u64::from(i), i as i32);
        }
        rt::close(fd).map_err(|_| "close failed")?;
        // The mapping outlives the descriptor.
        if peek_i32(p + 4 * 1023) != 1023 {
            return Err("the mapping changed at close");
        }
        Ok(())
    });

    println!("shm: an unrelated task (spawned, not forked) opens \"/shm1\", maps it and reads:");
    c.check(
        "shm-unrelated-task-reads",
        peer(1),
        "shmpeer did not see 0..1023",
    );
    c.run("shm-writes-go-both-ways", || {
        let p = p.map_err(|_| "no mapping")?;
        // shmpeer wrote -1 into p[0] through its own mapping: the same frame.
        match peek_i32(p) {
            -1 => {
                println!("shm: p[0] is now -1: shmpeer's write, seen here without any copy");
                Ok(())
            }
            _ => Err("shmpeer's write to p[0] is not visible here"),
        }
    });

    // The slide "Shared Memory": mapping at different addresses or at the same one.
    println!(
        "shm: a linked list in \"/list\", mapped here at {LIST_ADDR:#x}, its next pointers absolute addresses"
    );
    c.run("shm-list-written", || {
        let at = map_new("/list", LIST_ADDR)?;
        build_list(at);
        Ok(())
    });
    println!("shm: shmpeer maps \"/list\" at another address and looks at the pointers:");
    c.check(
        "shm-different-address-pointers-break",
        peer(2),
        "shmpeer did not find the pointers broken",
    );
    println!(
        "shm: \"/same\" mapped at the agreed address {SAME_ADDR:#x} (MAP_FIXED) in both tasks:"
    );
    c.run("shm-same-written", || {
        let at = map_new("/same", SAME_ADDR)?;
        build_list(at);
        Ok(())
    });
    c.check(
        "shm-same-address-pointers-work",
        peer(3),
        "shmpeer could not follow the pointers",
    );

    // shm_unlink: the name goes, the mapping stays.
    println!("shm: shm_unlink(\"/shm1\"): the name goes; this task's mapping stays");
    c.run("shm-unlink", || {
        rt::shm_unlink("/shm1").map_err(|_| "shm_unlink failed")?;
        if rt::shm_open("/shm1", O_RDWR, 0) != Err(Errno::ENOENT) {
            return Err("the name is still there");
        }
        if let Ok(p) = p
            && peek_i32(p + 4 * 1023) != 1023
        {
            return Err("the mapping lost its contents");
        }
        Ok(())
    });
    c.check(
        "shm-unlink-seen-by-others",
        peer(4),
        "shmpeer still found \"/shm1\"",
    );
    c.run("shm-name-reused", || {
        // A new object may take the name: it is a different, empty one.
        let fd = rt::shm_open("/shm1", O_CREAT | O_EXCL | O_RDWR, 0o600)
            .map_err(|_| "could not create it again")?;
        let size = rt::fstat(fd).map_err(|_| "fstat failed")?.size;
        rt::close(fd).map_err(|_| "close failed")?;
        rt::shm_unlink("/shm1").map_err(|_| "unlink failed")?;
        if size != 0 {
            return Err("the new object is not empty");
        }
        Ok(())
    });

    errors(&mut c);
    for name in ["/list", "/same", "/shm-step"] {
        let _ = rt::shm_unlink(name);
    }
    c.failures
}

/// The error paths, each as POSIX names it.
fn errors(c: &mut Checks) {
    c.check(
        "shm-enoent",
        rt::shm_open("/nope", O_RDWR, 0) == Err(Errno::ENOENT),
        "opening a missing object without O_CREAT is not ENOENT",
    );
    let fd = rt::shm_open("/dup", O_CREAT | O_EXCL | O_RDWR, 0o600);
    c.check(
        "shm-eexist",
        fd.is_ok() && rt::shm_open("/dup", O_CREAT | O_EXCL | O_RDWR, 0o600) == Err(Errno::EEXIST),
        "creating an existing object with O_EXCL is not EEXIST",
    );
    c.check(
        "shm-einval-name",
        rt::shm_open("noslash", O_CREAT | O_RDWR, 0o600) == Err(Errno::EINVAL)
            && rt::shm_open("/a/b", O_CREAT | O_RDWR, 0o600) == Err(Errno::EINVAL),
        "a name without a leading '/', or with another '/', is not EINVAL",
    );
    c.check(
        "shm-ebadf",
        rt::fstat(rt::proto::shm::FIRST_FD + 200) == Err(Errno::EBADF),
        "fstat of a descriptor never opened is not EBADF",
    );
    let ro = rt::shm_open("/dup", O_RDONLY, 0);
    c.check(
        "shm-eacces",
        ro.is_ok_and(|ro| {
            rt::mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == Err(Errno::EACCES)
                && rt::ftruncate(ro, 4096) == Err(Errno::EINVAL)
        }),
        "a writable shared mapping of a read-only descriptor is not EACCES",
    );
    for fd in [fd, ro].into_iter().flatten() {
        let _ = rt::close(fd);
    }
    let _ = rt::shm_unlink("/dup");
}

/// Runs `shmpeer` for part `step` and waits for it: whether it exited with 0.
fn peer(step: u64) -> bool {
    let ready = rt::shm_open("/shm-step", O_CREAT | O_RDWR, 0o600)
        .and_then(|fd| rt::ftruncate(fd, step).and_then(|()| rt::close(fd)));
    if ready.is_err() {
        println!("shm: could not tell shmpeer its part");
        return false;
    }
    match rt::spawn("shmpeer").and_then(rt::wait) {
        Ok((_, WaitStatus::Exited, 0)) => true,
        Ok((_, how, value)) => {
            println!("shm: shmpeer ended {how:?} ({value:#x})");
            false
        }
        Err(e) => {
            println!("shm: could not run shmpeer: {e}");
            false
        }
    }
}

/// Creates object `name` of one page and maps it shared at exactly `at`.
fn map_new(name: &str, at: u64) -> Result<u64, &'static str> {
    let fd = rt::shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600).map_err(|_| "shm_open failed")?;
    rt::ftruncate(fd, 4096).map_err(|_| "ftruncate failed")?;
    let p = rt::mmap(
        at,
        4096,
        PROT_READ | PROT_WRITE,
        MAP_SHARED | MAP_FIXED,
        fd,
        0,
    );
    rt::close(fd).map_err(|_| "close failed")?;
    p.map_err(|_| "mmap failed")
}

/// Nodes with values 10, 20, 30, 40, each pointing at the next by its address here.
fn build_list(at: u64) {
    for i in 0..NODES {
        let node = at + i * NODE_BYTES;
        poke(node, 10 * (i + 1));
        let next = if i + 1 < NODES { node + NODE_BYTES } else { 0 };
        poke(node + 8, next);
    }
    println!(
        "shm: list at {at:#x}: values 10, 20, 30, 40; head->next = {:#x}",
        peek(at + 8)
    );
}

fn poke_i32(addr: u64, v: i32) {
    // SAFETY: `addr` is 4-aligned inside the shared mapping this task made (one page), which
    // no Rust reference covers; a fault ends the task, as for `demos::poke`.
    unsafe { core::ptr::write_volatile(addr as *mut i32, v) }
}

fn peek_i32(addr: u64) -> i32 {
    // SAFETY: as for `poke_i32`.
    unsafe { core::ptr::read_volatile(addr as *const i32) }
}
