//! Tests mmap, munmap and mprotect through the runtime, every error path, the faults vm
//! turns into `SEGV` (seen through `wait`), shared anonymous memory across fork, the zero
//! page, copy-on-write around fork and exec, and that 100 children give back every page.
//! One `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

use demos::{Checks, Delta, PAGE, anon, peek, poke, prefault, shared_anon, stats};
use rt::proto::{MMAP_TOP, USER_END, USER_MIN};
use rt::{
    Errno, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, NO_FD, PROT_NONE, PROT_READ,
    PROT_WRITE, WaitStatus, println,
};

rt::entry!(main);

const RW: u64 = PROT_READ | PROT_WRITE;
const PRIVATE: u64 = MAP_PRIVATE | MAP_ANONYMOUS;
/// A free address for hints (the middle of the mmap area; nothing goes there by itself).
const HINT: u64 = 0x10_0000_0000;
/// Children forked and reaped by `mmap-reclaim-100`.
const CHILDREN: u64 = 100;

type Check = fn() -> Result<(), &'static str>;

const CHECKS: &[(&str, Check)] = &[
    ("mmap-hint-exact", hint_exact),
    ("mmap-hint-taken", hint_taken),
    ("mmap-null-placement", null_placement),
    ("mmap-fixed-replaces", fixed_replaces),
    ("mmap-rounds-up", rounds_up),
    ("mmap-einval-len0", einval_len0),
    ("mmap-einval-fixed-misaligned", einval_fixed_misaligned),
    ("mmap-einval-offset", einval_offset),
    ("mmap-einval-flags", einval_flags),
    ("mmap-einval-prot", einval_prot),
    ("mmap-enomem-too-long", enomem_too_long),
    ("munmap-errors", munmap_errors),
    ("munmap-partial", munmap_partial),
    ("mprotect-errors", mprotect_errors),
    ("mprotect-keeps-data", mprotect_keeps_data),
    ("mmap-prot-none-segv", prot_none_segv),
    ("mprotect-none-segv", mprotect_none_segv),
    ("mprotect-ro-write-segv", mprotect_ro_write_segv),
    ("segv-unmapped", segv_unmapped),
    ("segv-null", segv_null),
    ("shared-anon-fork", shared_anon_fork),
    ("zero-page-shared", zero_page_shared),
    ("faults-served-by-vm", faults_served),
    ("cow-sole-owner-no-copy", cow_sole_owner),
    ("fork-exec-copies-little", fork_exec_copies_little),
    ("vmmap-lists", vmmap_lists),
    ("reclaim-100-children", reclaim_100),
];

fn main() -> i32 {
    prefault();
    let mut c = Checks::default();
    for (name, check) in CHECKS {
        c.run(name, *check);
    }
    c.failures
}

fn map(addr: u64, len: u64, prot: u64, flags: u64) -> Result<u64, Errno> {
    rt::mmap(addr, len, prot, flags, NO_FD, 0)
}

fn ok<T>(r: Result<T, Errno>, why: &'static str) -> Result<T, &'static str> {
    r.map_err(|e| {
        println!("mmaptest: {why}: {e}");
        why
    })
}

fn expect(r: Result<u64, Errno>, want: Errno, why: &'static str) -> Result<(), &'static str> {
    match r {
        Err(e) if e == want => Ok(()),
        other => {
            println!("mmaptest: {why}: got {other:?}");
            Err(why)
        }
    }
}

/// Forks a child that runs `f` (which must not return); waits for it: how it ended and the
/// fault address or status.
fn in_child(f: impl FnOnce()) -> Result<(WaitStatus, u64), &'static str> {
    let child = ok(rt::fork(), "fork failed")?;
    if child == 0 {
        f();
        rt::exit(0);
    }
    match rt::wait(child) {
        Ok((pid, how, value)) if pid == child => Ok((how, value)),
        Ok(_) => Err("wait returned another child"),
        Err(_) => Err("wait failed"),
    }
}

/// A child doing `f` is killed with SEGV exactly at `addr`.
fn segv_at(addr: u64, f: impl FnOnce()) -> Result<(), &'static str> {
    match in_child(f)? {
        (WaitStatus::Segv, a) if a == addr => Ok(()),
        (how, v) => {
            println!("mmaptest: wanted SEGV at {addr:#x}, the child ended {how:?} {v:#x}");
            Err("the child did not end with SEGV at the address")
        }
    }
}

/// A free hint is honoured exactly.
fn hint_exact() -> Result<(), &'static str> {
    let a = ok(map(HINT, 3 * PAGE, RW, PRIVATE), "mmap failed")?;
    if a != HINT {
        return Err("a free hint was not honoured exactly");
    }
    poke(a + 2 * PAGE, 1);
    ok(rt::munmap(a, 3 * PAGE), "munmap failed")
}

/// A taken hint: the mapping goes elsewhere, without touching the one there.
fn hint_taken() -> Result<(), &'static str> {
    let a = ok(map(HINT, 2 * PAGE, RW, PRIVATE), "mmap failed")?;
    poke(a, 11);
    let b = ok(
        map(HINT + PAGE, 2 * PAGE, RW, PRIVATE),
        "second mmap failed",
    )?;
    let overlaps = b < a + 2 * PAGE && a < b + 2 * PAGE;
    let kept = peek(a) == 11;
    let _ = rt::munmap(a, 2 * PAGE);
    let _ = rt::munmap(b, 2 * PAGE);
    if a != HINT || overlaps || !kept {
        return Err("a mapping at a taken hint overlapped the one there");
    }
    Ok(())
}

/// `addr = NULL`: vm places the mapping, page aligned, in the mmap area, without overlap.
fn null_placement() -> Result<(), &'static str> {
    let a = ok(map(0, 4 * PAGE, RW, PRIVATE), "mmap failed")?;
    let b = ok(map(0, 4 * PAGE, RW, PRIVATE), "second mmap failed")?;
    let _ = rt::munmap(a, 4 * PAGE);
    let _ = rt::munmap(b, 4 * PAGE);
    let inside = |x: u64| x.is_multiple_of(PAGE) && x >= USER_MIN && x + 4 * PAGE <= MMAP_TOP;
    if !inside(a) || !inside(b) || (b < a + 4 * PAGE && a < b + 4 * PAGE) {
        return Err("NULL placement gave a bad or overlapping address");
    }
    Ok(())
}

/// `MAP_FIXED` over part of a mapping replaces those pages (fresh zeroes), keeps the rest.
fn fixed_replaces() -> Result<(), &'static str> {
    let a = ok(map(0, 3 * PAGE, RW, PRIVATE), "mmap failed")?;
    for p in 0..3 {
        poke(a + p * PAGE, 0x70 + p);
    }
    let b = ok(
        map(a + PAGE, PAGE, RW, PRIVATE | MAP_FIXED),
        "mmap MAP_FIXED failed",
    )?;
    let ok_ = b == a + PAGE && peek(a) == 0x70 && peek(a + PAGE) == 0 && peek(a + 2 * PAGE) == 0x72;
    // MAP_FIXED at a free address is just a mapping there.
    let c = ok(
        map(HINT + 64 * PAGE, PAGE, RW, PRIVATE | MAP_FIXED),
        "mmap MAP_FIXED at a free address failed",
    )?;
    let _ = rt::munmap(a, 3 * PAGE);
    let _ = rt::munmap(c, PAGE);
    if !ok_ || c != HINT + 64 * PAGE {
        return Err("MAP_FIXED did not replace exactly the pages asked for");
    }
    Ok(())
}

/// A length of 5000 bytes maps two whole pages (the hint right after is free, the one at the
/// second page is not); munmap rounds up too.
fn rounds_up() -> Result<(), &'static str> {
    let a = ok(map(HINT, 5000, RW, PRIVATE), "mmap failed")?;
    poke(a + 2 * PAGE - 8, 5);
    let second_taken = ok(map(a + PAGE, PAGE, RW, PRIVATE), "mmap failed")?;
    let third_free = ok(map(a + 2 * PAGE, PAGE, RW, PRIVATE), "mmap failed")?;
    let _ = rt::munmap(second_taken, PAGE);
    let _ = rt::munmap(third_free, PAGE);
    ok(rt::munmap(a, 5000), "munmap failed")?;
    let again = ok(map(a + PAGE, PAGE, RW, PRIVATE), "mmap failed")?;
    let _ = rt::munmap(again, PAGE);
    if a != HINT || second_taken == a + PAGE || third_free != a + 2 * PAGE || again != a + PAGE {
        return Err("lengths were not rounded up to whole pages");
    }
    Ok(())
}

fn einval_len0() -> Result<(), &'static str> {
    expect(map(0, 0, RW, PRIVATE), Errno::EINVAL, "mmap of length 0")
}

fn einval_fixed_misaligned() -> Result<(), &'static str> {
    expect(
        map(HINT + 100, PAGE, RW, PRIVATE | MAP_FIXED),
        Errno::EINVAL,
        "MAP_FIXED at a misaligned address",
    )
}

fn einval_offset() -> Result<(), &'static str> {
    expect(
        rt::mmap(0, PAGE, RW, PRIVATE, NO_FD, 100),
        Errno::EINVAL,
        "mmap with a misaligned offset",
    )
}

fn einval_flags() -> Result<(), &'static str> {
    expect(
        map(0, PAGE, RW, MAP_ANONYMOUS),
        Errno::EINVAL,
        "neither MAP_PRIVATE nor MAP_SHARED",
    )?;
    expect(
        map(0, PAGE, RW, MAP_ANONYMOUS | MAP_PRIVATE | MAP_SHARED),
        Errno::EINVAL,
        "both MAP_PRIVATE and MAP_SHARED",
    )
}

fn einval_prot() -> Result<(), &'static str> {
    expect(
        map(0, PAGE, 0x8, PRIVATE),
        Errno::EINVAL,
        "an unknown PROT bit",
    )
}

/// More than the address space: `ENOMEM`.
fn enomem_too_long() -> Result<(), &'static str> {
    expect(
        map(0, USER_END, RW, PRIVATE),
        Errno::ENOMEM,
        "mmap longer than the address space",
    )?;
    expect(
        map(0, u64::MAX, RW, PRIVATE),
        Errno::ENOMEM,
        "mmap of length 2^64 - 1",
    )
}

fn munmap_errors() -> Result<(), &'static str> {
    let e = |r: Result<(), Errno>| r.err();
    if e(rt::munmap(HINT + 1, PAGE)) != Some(Errno::EINVAL) {
        return Err("munmap of a misaligned address did not fail with EINVAL");
    }
    if e(rt::munmap(HINT, 0)) != Some(Errno::EINVAL) {
        return Err("munmap of length 0 did not fail with EINVAL");
    }
    if e(rt::munmap(USER_END - PAGE, 2 * PAGE)) != Some(Errno::EINVAL) {
        return Err("munmap past the end of the address space did not fail with EINVAL");
    }
    // Nothing mapped there: not an error (POSIX).
    ok(
        rt::munmap(HINT, 16 * PAGE),
        "munmap of an unmapped range failed",
    )
}

/// munmap of the middle page: the pages around it stay, the hole faults.
fn munmap_partial() -> Result<(), &'static str> {
    let a = ok(map(0, 3 * PAGE, RW, PRIVATE), "mmap failed")?;
    poke(a, 1);
    poke(a + 2 * PAGE, 3);
    ok(
        rt::munmap(a + PAGE, PAGE),
        "munmap of the middle page failed",
    )?;
    let kept = peek(a) == 1 && peek(a + 2 * PAGE) == 3;
    let hole = segv_at(a + PAGE + 16, || {
        peek(a + PAGE + 16);
    });
    let _ = rt::munmap(a, 3 * PAGE);
    if !kept {
        return Err("the pages around the hole lost their contents");
    }
    hole
}

fn mprotect_errors() -> Result<(), &'static str> {
    let a = ok(map(0, 2 * PAGE, RW, PRIVATE), "mmap failed")?;
    let e = |r: Result<(), Errno>| r.err();
    let misaligned = e(rt::mprotect(a + 1, PAGE, PROT_READ));
    let bad_prot = e(rt::mprotect(a, PAGE, 0x8));
    // A range running past the mapping's end: ENOMEM, and nothing changes.
    let past = e(rt::mprotect(a, 3 * PAGE, PROT_READ));
    let unmapped = e(rt::mprotect(HINT, PAGE, PROT_READ));
    poke(a + PAGE, 9);
    let _ = rt::munmap(a, 2 * PAGE);
    if misaligned != Some(Errno::EINVAL) || bad_prot != Some(Errno::EINVAL) {
        return Err("a misaligned address or unknown PROT bit did not fail with EINVAL");
    }
    if past != Some(Errno::ENOMEM) || unmapped != Some(Errno::ENOMEM) {
        return Err("mprotect of unmapped pages did not fail with ENOMEM");
    }
    Ok(())
}

/// RW → NONE → RW keeps the page's contents.
fn mprotect_keeps_data() -> Result<(), &'static str> {
    let a = ok(map(0, PAGE, RW, PRIVATE), "mmap failed")?;
    poke(a, 0x1234);
    ok(rt::mprotect(a, PAGE, PROT_NONE), "mprotect NONE failed")?;
    ok(rt::mprotect(a, PAGE, PROT_READ), "mprotect READ failed")?;
    let v = peek(a);
    ok(rt::mprotect(a, PAGE, RW), "mprotect RW failed")?;
    poke(a, v + 1);
    let w = peek(a);
    let _ = rt::munmap(a, PAGE);
    if v != 0x1234 || w != 0x1235 {
        return Err("the page lost its contents across mprotect");
    }
    Ok(())
}

/// A `PROT_NONE` mapping: any touch is SEGV.
fn prot_none_segv() -> Result<(), &'static str> {
    let a = ok(map(0, PAGE, PROT_NONE, PRIVATE), "mmap failed")?;
    let r = segv_at(a + 8, || {
        peek(a + 8);
    });
    let _ = rt::munmap(a, PAGE);
    r
}

/// A written page made `PROT_NONE`: a read is SEGV.
fn mprotect_none_segv() -> Result<(), &'static str> {
    let a = ok(map(0, PAGE, RW, PRIVATE), "mmap failed")?;
    poke(a, 1);
    ok(rt::mprotect(a, PAGE, PROT_NONE), "mprotect failed")?;
    let r = segv_at(a + 24, || {
        peek(a + 24);
    });
    let _ = rt::munmap(a, PAGE);
    r
}

/// RW → READ: reading works, a write is SEGV at the written address.
fn mprotect_ro_write_segv() -> Result<(), &'static str> {
    let a = ok(map(0, 2 * PAGE, RW, PRIVATE), "mmap failed")?;
    poke(a + PAGE, 7);
    ok(rt::mprotect(a + PAGE, PAGE, PROT_READ), "mprotect failed")?;
    let r = segv_at(a + PAGE + 40, || poke(a + PAGE + 40, 8));
    let v = peek(a + PAGE);
    // The first page kept its rights.
    poke(a, 1);
    let _ = rt::munmap(a, 2 * PAGE);
    r?;
    if v != 7 {
        return Err("the read-only page lost its contents");
    }
    Ok(())
}

/// A child reads a page that was unmapped: SEGV at that exact address.
fn segv_unmapped() -> Result<(), &'static str> {
    let a = ok(map(0, PAGE, RW, PRIVATE), "mmap failed")?;
    poke(a, 1);
    ok(rt::munmap(a, PAGE), "munmap failed")?;
    segv_at(a + 0x128, || {
        peek(a + 0x128);
    })
}

/// A null pointer (well, 0x10) is SEGV: the first 2 MiB are never mapped.
fn segv_null() -> Result<(), &'static str> {
    segv_at(0x10, || {
        peek(0x10);
    })
}

/// `MAP_SHARED | MAP_ANONYMOUS` stays shared across fork, both ways.
fn shared_anon_fork() -> Result<(), &'static str> {
    let s = ok(shared_anon(2, RW), "mmap failed")?;
    let p = ok(anon(1, RW), "mmap failed")?;
    poke(s, 0x11);
    poke(p, 0x11);
    // Word 1: the child's progress; word 2: the parent's answer.
    poke(s + 8, 0);
    poke(s + 16, 0);
    let child = ok(rt::fork(), "fork failed")?;
    if child == 0 {
        // Sees the parent's write from before fork; writes both mappings.
        let saw = peek(s) == 0x11;
        poke(s + PAGE, 0x22);
        poke(p, 0x22);
        poke(s + 8, 1);
        // Waits for the parent's write after fork.
        while peek(s + 16) == 0 {
            rt::sched_yield();
        }
        rt::exit(if saw && peek(s + 16) == 0x33 { 0 } else { 1 });
    }
    while peek(s + 8) == 0 {
        rt::sched_yield();
    }
    let saw_child = peek(s + PAGE) == 0x22;
    let private_kept = peek(p) == 0x11;
    poke(s + 16, 0x33);
    let ended = rt::wait(child);
    let _ = rt::munmap(s, 2 * PAGE);
    let _ = rt::munmap(p, PAGE);
    if !saw_child {
        return Err("the parent does not see the child's write to shared memory");
    }
    if !private_kept {
        return Err("the parent sees the child's write to private memory");
    }
    match ended {
        Ok((_, WaitStatus::Exited, 0)) => Ok(()),
        _ => Err("the child did not see the parent's writes to shared memory"),
    }
}

/// Reads of never-written pages map one zero frame: no memory used.
fn zero_page_shared() -> Result<(), &'static str> {
    let a = ok(anon(8, RW), "mmap failed")?;
    let s0 = stats();
    let zeroes = (0..8).all(|p| peek(a + p * PAGE + 64) == 0);
    let s1 = stats();
    let _ = rt::munmap(a, 8 * PAGE);
    let d = Delta::between(&s0, &s1);
    if !zeroes || d.zero_page_maps != 8 || d.pages_in_use != 0 {
        println!("mmaptest: 8 reads: {d}");
        return Err("reads of untouched pages did not share the zero frame");
    }
    Ok(())
}

/// Each first touch is one fault served by vm (counted), each page one page supplied.
fn faults_served() -> Result<(), &'static str> {
    let a = ok(anon(5, RW), "mmap failed")?;
    let s0 = stats();
    for p in 0..5 {
        poke(a + p * PAGE, p);
    }
    for p in 0..5 {
        poke(a + p * PAGE + 8, p);
    }
    let s1 = stats();
    let _ = rt::munmap(a, 5 * PAGE);
    let d = Delta::between(&s0, &s1);
    if d.faults != 5 || d.pages_zero_filled != 5 || d.pages_in_use != 5 {
        println!("mmaptest: 5 pages written twice: {d}");
        return Err("the counters do not show one fault and one page per page");
    }
    Ok(())
}

/// After a fork whose child has ended, a write to a formerly shared page just gets write
/// access back: a fault, no copy.
fn cow_sole_owner() -> Result<(), &'static str> {
    let a = ok(anon(2, RW), "mmap failed")?;
    poke(a, 1);
    poke(a + PAGE, 2);
    match in_child(|| {})? {
        (WaitStatus::Exited, 0) => {}
        _ => return Err("the child did not exit with 0"),
    }
    let s0 = stats();
    poke(a + PAGE, 3);
    let s1 = stats();
    let _ = rt::munmap(a, 2 * PAGE);
    let d = Delta::between(&s0, &s1);
    if d.faults != 1 || d.pages_copied != 0 || d.pages_in_use != 0 {
        println!("mmaptest: write after the child ended: {d}");
        return Err("a page nobody else shares was copied");
    }
    Ok(())
}

/// fork then exec at once: the parent's 64 resident pages are not copied; only a page or
/// two of stack is.
fn fork_exec_copies_little() -> Result<(), &'static str> {
    let a = ok(anon(64, RW), "mmap failed")?;
    for p in 0..64 {
        poke(a + p * PAGE, p);
    }
    let s0 = stats();
    let child = ok(rt::fork(), "fork failed")?;
    if child == 0 {
        let _ = rt::exec("hello");
        rt::exit(99);
    }
    let ended = rt::wait(child);
    let s1 = stats();
    let _ = rt::munmap(a, 64 * PAGE);
    let d = Delta::between(&s0, &s1);
    println!("mmaptest: fork + exec of hello with 64 resident pages: {d}");
    match ended {
        Ok((p, WaitStatus::Exited, 3)) if p == child => {}
        _ => return Err("the exec'd child did not exit with 3"),
    }
    if d.pages_copied > 4 {
        return Err("fork followed by exec copied more than 4 pages");
    }
    Ok(())
}

fn vmmap_lists() -> Result<(), &'static str> {
    let a = ok(map(HINT, 4 * PAGE, RW, PRIVATE), "mmap failed")?;
    poke(a, 1);
    poke(a + PAGE, 1);
    let r = ok(rt::vmmap(), "vmmap failed");
    let _ = rt::munmap(a, 4 * PAGE);
    r
}

/// 100 children (each touching pages, some killed by SEGV) give back every page: vm's pages
/// in use and chunks end where they started.
fn reclaim_100() -> Result<(), &'static str> {
    let a = ok(anon(4, RW), "mmap failed")?;
    for p in 0..4 {
        poke(a + p * PAGE, p);
    }
    let round = |i: u64| -> Result<(), &'static str> {
        let child = ok(rt::fork(), "fork failed")?;
        if child == 0 {
            // Copies two shared pages, touches four fresh ones.
            poke(a, 10);
            poke(a + PAGE, 11);
            if let Ok(b) = anon(4, RW) {
                for p in 0..4 {
                    poke(b + p * PAGE, p);
                }
            }
            if i % 10 == 9 {
                peek(0x10);
            }
            rt::exit(0);
        }
        match rt::wait(child) {
            Ok((_, WaitStatus::Exited, 0)) if i % 10 != 9 => Ok(()),
            Ok((_, WaitStatus::Segv, 0x10)) if i % 10 == 9 => Ok(()),
            _ => Err("a child did not end as it should"),
        }
    };
    // One round first, so that this task's own stack pages are already there.
    round(0)?;
    let s0 = stats();
    for i in 0..CHILDREN {
        round(i)?;
    }
    let s1 = stats();
    let _ = rt::munmap(a, 4 * PAGE);
    println!(
        "mmaptest: {CHILDREN} children: pages in use {} -> {}, chunks {} -> {}",
        s0.pages_in_use, s1.pages_in_use, s0.chunks, s1.chunks
    );
    if s1.pages_in_use != s0.pages_in_use || s1.chunks != s0.chunks {
        return Err("ended children did not give back every page");
    }
    Ok(())
}
