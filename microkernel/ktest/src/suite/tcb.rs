//! Threads: configure, start, registers, suspend/resume, delete, priorities and their limit,
//! per-thread TPIDR_EL0 and FP/SIMD registers.

use super::{
    Check, Env, OrFail, Outcome, bump, code, expect_eq, expect_err, expect_fails, expect_type, get,
    set,
};
use crate::alloc::{CNODE, VSPACE};
use crate::thread::Config;
use abi::object::{CapType, ObjectType, init_slots};
use abi::{Error, Invocation};
use core::arch::asm;
use libmk::{CNode, Cap, Endpoint, Frame, Message, Tcb, VSpace};

pub const CHECKS: &[Check] = &[
    ("new-is-inactive", new_is_inactive),
    ("start", start),
    ("write-registers", write_registers),
    ("read-registers", read_registers),
    ("read-registers-bad-count", read_registers_bad_count),
    ("suspend-resume", suspend_resume),
    ("suspend-leaves-queue", suspend_leaves_queue),
    ("delete-blocked-thread", delete_blocked_thread),
    ("delete-drops-its-caps", delete_drops_its_caps),
    ("priority-limit", priority_limit),
    ("configure-errors", configure_errors),
    ("not-a-tcb", not_a_tcb),
    ("tpidr-per-thread", tpidr_per_thread),
    ("fpsimd-per-thread", fpsimd_per_thread),
];

const INIT_TCB: Cap<Tcb> = Cap::from_cptr(init_slots::TCB);

fn new_is_inactive(env: &mut Env) -> Outcome {
    let t: Cap<Tcb> = env.obj(ObjectType::Tcb)?;
    expect_err(
        t.resume(),
        &[Error::IllegalOperation],
        "resume an unconfigured TCB",
    )?;
    expect_err(
        t.start(0x20_0000, 0x1000, 0),
        &[Error::IllegalOperation],
        "start an unconfigured TCB",
    )?;
    let e = env.endpoint()?;
    expect_err(
        e.nb_send(&Message::new(1, &[])),
        &[Error::WouldBlock],
        "the new TCB waits nowhere",
    )?;
    t.suspend().or_fail("suspend an inactive TCB")
}

/// Entered by `TcbStart`: x0 = the argument; `R[5]` holds its TCB.
extern "C" fn start_entry(arg: u64) -> ! {
    set(0, arg);
    set(1, 1);
    let _ = Cap::<Tcb>::from_cptr(get(5)).suspend();
    loop {
        libmk::yield_now();
    }
}

fn start(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let t = env.thread(Config::new(254), None)?;
    set(5, t.tcb.cptr());
    let pc = start_entry as extern "C" fn(u64) -> ! as usize as u64;
    t.tcb.start(pc, t.sp, 0xabcd_0123).or_fail("TcbStart")?;
    sync.settle()?;
    expect_eq(get(1), 1, "the started thread ran")?;
    expect_eq(get(0), 0xabcd_0123, "its x0")
}

/// Entered through `TcbWriteRegisters` + `TcbResume` with x0..x3 set; `R[5]` holds its TCB.
extern "C" fn regs_entry(a: u64, b: u64, c: u64, d: u64) -> ! {
    set(0, a);
    set(1, b);
    set(2, c);
    set(3, d);
    set(4, 1);
    let _ = Cap::<Tcb>::from_cptr(get(5)).suspend();
    loop {
        libmk::yield_now();
    }
}

fn regs_entry_pc() -> u64 {
    regs_entry as extern "C" fn(u64, u64, u64, u64) -> ! as usize as u64
}

fn write_registers(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let t = env.thread(Config::new(254), None)?;
    set(5, t.tcb.cptr());
    t.tcb
        .write_registers(&[regs_entry_pc(), t.sp, 11, 22, 33, 44])
        .or_fail("TcbWriteRegisters")?;
    sync.settle()?;
    expect_eq(get(4), 0, "the thread ran before TcbResume")?;
    t.tcb.resume().or_fail("TcbResume")?;
    sync.settle()?;
    expect_eq(get(4), 1, "the thread ran")?;
    expect_eq([get(0), get(1), get(2), get(3)], [11, 22, 33, 44], "x0..x3")
}

fn read_registers(env: &mut Env) -> Outcome {
    let t = env.thread(Config::new(254), None)?;
    let pc = regs_entry_pc();
    t.tcb
        .write_registers(&[pc, t.sp - 64, 0x100, 0x101, 0x102, 0x103])
        .or_fail("TcbWriteRegisters")?;
    let r = t.tcb.read_registers().or_fail("TcbReadRegisters (6)")?;
    expect_eq(
        [r[0], r[1], r[3], r[4], r[5]],
        [pc, t.sp - 64, 0x100, 0x101, 0x102],
        "pc, sp, x0, x1, x2",
    )?;
    let spsr = r[2];
    ensure!(
        spsr & 0xf == 0 && spsr & (1 << 7) == 0,
        "spsr {spsr:#x}: not EL0t with IRQs unmasked"
    );
    let buf = super::init_ipc_buffer();
    buf.mrs[6] = 0xdead;
    let all = libmk::invoke(t.tcb.cptr(), Invocation::TcbReadRegisters, &[34])
        .or_fail("TcbReadRegisters (34)")?;
    expect_eq(all.info().length, 34, "result count")?;
    expect_eq(all.mrs[3], 0x100, "x0 of the long read")?;
    expect_eq(buf.mrs[6], 0x103, "x3 (in the IPC buffer)")?;
    // Writing a kernel address or odd flags cannot leave EL0: only pc, sp, x0..x3 exist.
    t.tcb
        .write_registers(&[pc, t.sp, 1, 2])
        .or_fail("TcbWriteRegisters with 4 values")?;
    let r = t.tcb.read_registers().or_fail("TcbReadRegisters")?;
    expect_eq(
        [r[0], r[3], r[4]],
        [pc, 1, 2],
        "pc, x0, x1 after a short write",
    )?;
    expect_eq(r[5], 0x102, "x2, not written by the short write")
}

fn read_registers_bad_count(env: &mut Env) -> Outcome {
    let t = env.thread(Config::new(254), None)?;
    let want = &[Error::RangeError, Error::InvalidArgument];
    for n in [0, 35, u64::MAX] {
        expect_err(
            libmk::invoke(t.tcb.cptr(), Invocation::TcbReadRegisters, &[n]),
            want,
            "TcbReadRegisters with a bad count",
        )?;
    }
    expect_err(
        t.tcb.write_registers(&[0x20_0000]),
        want,
        "TcbWriteRegisters with one value",
    )
}

fn counter(_: u64) {
    bump(0);
}

fn suspend_resume(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let t = env.spawn(counter, 0, 254)?;
    t.tcb.suspend().or_fail("TcbSuspend")?;
    sync.settle()?;
    expect_eq(get(0), 0, "a suspended thread ran")?;
    t.tcb.resume().or_fail("TcbResume")?;
    sync.settle()?;
    expect_eq(get(0), 1, "runs of the resumed thread")
}

fn recv_waiter(e: u64) {
    let r = Cap::<Endpoint>::from_cptr(e).recv();
    set(0, code(&r));
    set(1, 1);
}

fn suspend_leaves_queue(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let t = env.spawn(recv_waiter, e.cptr(), 254)?;
    sync.settle()?;
    t.tcb.suspend().or_fail("TcbSuspend")?;
    expect_err(
        e.nb_send(&Message::new(1, &[])),
        &[Error::WouldBlock],
        "NBSend to a suspended receiver",
    )?;
    sync.settle()?;
    expect_eq(get(1), 0, "the suspended receiver returned")
}

fn delete_blocked_thread(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let t = env.spawn(recv_waiter, e.cptr(), 254)?;
    sync.settle()?;
    CNODE.delete(t.tcb.cptr()).or_fail("delete the TCB")?;
    expect_type(t.tcb.cptr(), CapType::Null, "the TCB's slot")?;
    expect_err(
        e.nb_send(&Message::new(1, &[])),
        &[Error::WouldBlock],
        "NBSend to a deleted receiver",
    )?;
    sync.settle()?;
    expect_eq(get(1), 0, "the deleted receiver returned")
}

fn delete_drops_its_caps(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(recv_waiter, e.cptr(), 254)?;
    let cfg = Config {
        fault_endpoint: Some(e),
        ..Config::new(254)
    };
    let holder = env.thread(cfg, None)?;
    sync.settle()?;
    CNODE
        .delete(e.cptr())
        .or_fail("delete init's endpoint capability")?;
    sync.settle()?;
    expect_eq(
        get(1),
        0,
        "the receiver woke though a TCB holds the endpoint as fault endpoint",
    )?;
    CNODE.delete(holder.tcb.cptr()).or_fail("delete the TCB")?;
    sync.settle()?;
    expect_eq(
        get(1),
        1,
        "the receiver woke when the TCB (the endpoint's last holder) went",
    )?;
    expect_eq(get(0), Error::ObjectDeleted.code(), "its Recv's error")
}

/// At priority 100: tries to raise another thread (`R[5]`) and itself above 100.
fn prio_worker(_: u64) {
    let other = Cap::<Tcb>::from_cptr(get(5));
    let me = Cap::<Tcb>::from_cptr(get(6));
    set(0, code(&other.set_priority(200)));
    set(1, code(&other.set_priority(100)));
    set(2, code(&me.set_priority(101)));
    set(3, code(&me.set_priority(50)));
    set(4, 1);
}

fn priority_limit(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let other = env.thread(Config::new(10), None)?;
    expect_fails(other.tcb.set_priority(256), "priority 256")?;
    expect_fails(other.tcb.set_priority(u64::MAX), "priority u64::MAX")?;
    let t = env.thread(Config::new(100), None)?;
    expect_fails(
        t.tcb.configure(CNODE, VSPACE, None, None, 256),
        "TcbConfigure with priority 256",
    )?;
    other
        .tcb
        .set_priority(255)
        .or_fail("init gives priority 255")?;
    set(5, other.tcb.cptr());
    set(6, t.tcb.cptr());
    t.run(prio_worker, 0).or_fail("start the worker")?;
    sync.settle()?;
    expect_eq(get(4), 1, "the worker finished")?;
    ensure!(
        get(0) != 0,
        "a priority-100 thread gave another thread priority 200"
    );
    expect_eq(get(1), 0, "error of giving priority 100 (its own)")?;
    ensure!(get(2) != 0, "a priority-100 thread raised itself to 101");
    expect_eq(get(3), 0, "error of lowering itself to 50")
}

fn configure_errors(env: &mut Env) -> Outcome {
    let t: Cap<Tcb> = env.obj(ObjectType::Tcb)?;
    let e = env.endpoint()?;
    let n = env.notification()?;
    let f = env.frame(12)?;
    let big = env.frame(14)?;
    let inv = &[Error::InvalidCapability];
    expect_err(
        t.configure(e.cast::<CNode>(), VSPACE, None, None, 1),
        inv,
        "cspace an endpoint",
    )?;
    expect_err(
        t.configure(CNODE, e.cast::<VSpace>(), None, None, 1),
        inv,
        "vspace an endpoint",
    )?;
    expect_err(
        t.configure(CNODE, VSPACE, Some((e.cast::<Frame>(), 0x10_0000)), None, 1),
        inv,
        "IPC buffer an endpoint",
    )?;
    expect_err(
        t.configure(CNODE, VSPACE, None, Some(n.cast::<Endpoint>()), 1),
        inv,
        "fault endpoint a notification",
    )?;
    expect_fails(
        t.configure(CNODE, VSPACE, Some((big, 0x10_0000)), None, 1),
        "IPC buffer a 16 KiB frame",
    )?;
    expect_fails(
        t.configure(CNODE, VSPACE, Some((f, 0x10_0010)), None, 1),
        "IPC buffer at an unaligned address",
    )?;
    let empty = env.slot()?;
    expect_err(
        t.configure(Cap::from_cptr(empty), VSPACE, None, None, 1),
        inv,
        "cspace an empty slot",
    )?;
    expect_err(
        t.resume(),
        &[Error::IllegalOperation],
        "resume after failed configures",
    )?;
    t.configure(CNODE, VSPACE, Some((f, 0x10_0000)), Some(e), 1)
        .or_fail("a good configure")
}

fn not_a_tcb(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let want = &[Error::IllegalOperation, Error::InvalidCapability];
    expect_err(e.cast::<Tcb>().resume(), want, "TcbResume on an endpoint")?;
    expect_err(
        e.cast::<Tcb>().set_priority(1),
        want,
        "TcbSetPriority on an endpoint",
    )?;
    let empty = env.slot()?;
    expect_err(
        Cap::<Tcb>::from_cptr(empty).suspend(),
        &[Error::InvalidCapability],
        "TcbSuspend on an empty slot",
    )?;
    expect_err(
        INIT_TCB.cast::<Endpoint>().nb_send(&Message::new(1, &[])),
        &[Error::InvalidCapability],
        "NBSend on a TCB",
    )
}

/// Notes whether the previous thread to get here was another one (a switch).
fn note_turn(me: u64) {
    let last = super::R[20].swap(me, core::sync::atomic::Ordering::SeqCst);
    if last != 0 && last != me {
        bump(21);
    }
}

fn tpidr_worker(me: u64) {
    let mine = 0x7000_0000 + me;
    for _ in 0..6 {
        let got: u64;
        // SAFETY: writes TPIDR_EL0 (no architectural effect), yields (`svc`, clobbering
        // x0..x8 as the ABI says) and reads it back.
        unsafe {
            asm!(
                "msr tpidr_el0, {v}",
                "mov x8, #17",
                "svc #0",
                "mrs {o}, tpidr_el0",
                v = in(reg) mine,
                o = out(reg) got,
                out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _,
                out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                options(nostack),
            )
        };
        note_turn(me);
        if got != mine {
            bump(me as usize);
        }
    }
    bump(10);
}

fn tpidr_per_thread(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    env.spawn(tpidr_worker, 1, 254)?;
    env.spawn(tpidr_worker, 2, 254)?;
    sync.settle()?;
    expect_eq(get(10), 2, "threads finished")?;
    expect_eq(
        [get(1), get(2)],
        [0, 0],
        "TPIDR_EL0 mismatches of threads 1 and 2",
    )?;
    ensure!(
        get(21) >= 2,
        "the threads did not take turns ({} switches)",
        get(21)
    );
    let mine: u64;
    // SAFETY: reads TPIDR_EL0.
    unsafe { asm!("mrs {}, tpidr_el0", out(reg) mine, options(nomem, nostack)) };
    expect_eq(
        mine,
        abi::bootinfo::INIT_IPC_BUFFER_VADDR,
        "init's own TPIDR_EL0",
    )
}

fn fpsimd_worker(me: u64) {
    for i in 0..6u64 {
        let v = (me << 32) | i;
        let (a, b): (u64, u64);
        // SAFETY: puts a value in d0 and d31, yields (`svc`, clobbering x0..x8 as the ABI
        // says; v0 and v31 are declared clobbered) and reads them back.
        unsafe {
            asm!(
                "fmov d0, {v}",
                "fmov d31, {v}",
                "mov x8, #17",
                "svc #0",
                "fmov {a}, d0",
                "fmov {b}, d31",
                v = in(reg) v,
                a = out(reg) a,
                b = out(reg) b,
                out("v0") _, out("v31") _,
                out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _,
                out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                options(nostack),
            )
        };
        note_turn(me);
        if a != v || b != v {
            bump(me as usize);
        }
    }
    bump(10);
}

fn fpsimd_per_thread(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    env.spawn(fpsimd_worker, 1, 254)?;
    env.spawn(fpsimd_worker, 2, 254)?;
    sync.settle()?;
    expect_eq(get(10), 2, "threads finished")?;
    expect_eq(
        [get(1), get(2)],
        [0, 0],
        "d0/d31 mismatches of threads 1 and 2",
    )?;
    ensure!(
        get(21) >= 2,
        "the threads did not take turns ({} switches)",
        get(21)
    );
    let x = core::hint::black_box(1.5f64) * 2.0;
    expect_eq(x, 3.0, "init's own FP arithmetic")
}
