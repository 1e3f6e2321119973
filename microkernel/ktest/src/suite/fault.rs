//! Faults: VmFault messages (address, ip, access, kind, badge) for reads, writes and
//! instruction fetches, reply-with-map and plain resume, bad map replies, UnknownSyscall,
//! UndefinedInstruction, alignment and other exceptions, threads without a fault endpoint,
//! and fault replies through saved replies (`SaveCaller`): map items, resumes, bad
//! items, deletion, and one handler holding several faulted threads answered out of order.

use super::{
    Check, Env, FAULT_BADGE, OrFail, Outcome, R, Sync, expect_eq, expect_err, expect_type, get, set,
};
use crate::alloc::{CNODE, PAGE, VSPACE};
use crate::thread::Config;
use abi::Error;
use abi::message::vm_fault::{self, Access, Kind};
use abi::message::{FaultLabel, fault_reply};
use abi::object::{CapRights, CapType, MapFlags};
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};
use libmk::{Cap, Message, Reply, SavedReply};

pub const CHECKS: &[Check] = &[
    ("vm-read-translation", vm_read_translation),
    ("vm-message-length", vm_message_length),
    ("vm-write-translation", vm_write_translation),
    ("vm-write-permission", vm_write_permission),
    ("vm-exec-translation", vm_exec_translation),
    ("vm-exec-permission", vm_exec_permission),
    ("reply-map", reply_map),
    ("reply-map-write", reply_map_write),
    ("reply-map-replaces", reply_map_replaces),
    ("reply-resume", reply_resume),
    ("reply-map-bad", reply_map_bad),
    ("unknown-syscall", unknown_syscall),
    ("undefined-instruction", undefined_instruction),
    ("pc-alignment", pc_alignment),
    ("brk-user-exception", brk_user_exception),
    ("no-handler-suspended", no_handler_suspended),
    ("no-handler-unknown-syscall", no_handler_unknown_syscall),
    ("saved-reply-map", saved_reply_map),
    ("saved-reply-map-other-vspace", saved_reply_map_other_vspace),
    ("saved-reply-resume", saved_reply_resume),
    ("saved-reply-map-bad", saved_reply_map_bad),
    ("saved-reply-deleted", saved_reply_deleted),
    (
        "saved-reply-faulter-suspended",
        saved_reply_faulter_suspended,
    ),
    ("saved-replies-out-of-order", saved_replies_out_of_order),
];

/// `R` indices the faulting threads use.
pub const IP: usize = 10;
pub const VAL: usize = 11;
pub const DONE: usize = 12;

/// Loads the `u64` at `addr`, noting the load's address in `R[IP]` first.
pub fn reader(addr: u64) {
    let v: u64;
    // SAFETY: the load may fault on purpose (the check arranged the mapping); the kernel
    // then blocks this thread until its handler replies. Nothing else is touched.
    unsafe {
        asm!(
            "adr {ip}, 2f",
            "str {ip}, [{cell}]",
            "2:",
            "ldr {v}, [{addr}]",
            ip = out(reg) _,
            cell = in(reg) R[IP].as_ptr(),
            addr = in(reg) addr,
            v = lateout(reg) v,
            options(nostack),
        )
    };
    set(VAL, v);
    set(DONE, 1);
}

/// Stores 0x5151 at `addr`, noting the store's address in `R[IP]` first.
pub fn writer(addr: u64) {
    // SAFETY: as `reader`, for a store to memory the check set aside.
    unsafe {
        asm!(
            "adr {ip}, 2f",
            "str {ip}, [{cell}]",
            "2:",
            "str {v}, [{addr}]",
            ip = out(reg) _,
            cell = in(reg) R[IP].as_ptr(),
            addr = in(reg) addr,
            v = in(reg) 0x5151u64,
            options(nostack),
        )
    };
    set(DONE, 1);
}

/// Branches to `target` (which faults); never comes back in these checks.
fn jumper(target: u64) {
    // SAFETY: the branch faults before any instruction at `target` runs, and the thread is
    // never resumed; all caller-saved registers are declared clobbered.
    unsafe { asm!("blr {t}", t = in(reg) target, clobber_abi("C")) };
    set(DONE, 1);
}

/// A thread with `sync.fault` as its fault endpoint, running `f(arg)`.
fn faulter(
    env: &mut Env,
    sync: &Sync,
    f: fn(u64),
    arg: u64,
) -> Result<crate::thread::Thread, super::Why> {
    let cfg = Config {
        fault_endpoint: Some(sync.fault),
        ..Config::new(254)
    };
    env.spawn_cfg(cfg, f, arg)
}

/// The exception class of an ESR.
fn ec(esr: u64) -> u64 {
    (esr >> 26) & 0x3f
}

/// Checks a VmFault message.
pub fn check_vm_fault(r: &Reply, addr: u64, ip: u64, access: Access, kind: Kind) -> Outcome {
    expect_eq(r.info().label, FaultLabel::VmFault as u64, "fault label")?;
    expect_eq(
        r.badge,
        FAULT_BADGE,
        "badge (of the fault endpoint capability)",
    )?;
    expect_eq(r.mrs[vm_fault::ADDRESS], addr, "fault address")?;
    expect_eq(r.mrs[vm_fault::IP], ip, "fault ip")?;
    expect_eq(
        Access::try_from(r.mrs[vm_fault::ACCESS]),
        Ok(access),
        "access",
    )?;
    expect_eq(Kind::try_from(r.mrs[vm_fault::KIND]), Ok(kind), "kind")?;
    let want_ec = if access == Access::Execute {
        0x20
    } else {
        0x24
    };
    expect_eq(ec(r.mrs[vm_fault::ESR]), want_ec, "ESR exception class")
}

fn vm_read_translation(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, reader, va + 8)?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 8, get(IP), Access::Read, Kind::Translation)?;
    sync.settle()?;
    expect_eq(get(DONE), 0, "the faulter went on without a reply")
}

fn vm_message_length(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, reader, va)?;
    let r = sync.fault_msg()?;
    expect_eq(r.info().label, FaultLabel::VmFault as u64, "fault label")?;
    expect_eq(
        r.info().length,
        vm_fault::LENGTH,
        "VmFault message length (abi::message::vm_fault::LENGTH)",
    )
}

fn vm_write_translation(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, writer, va + 0x18)?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 0x18, get(IP), Access::Write, Kind::Translation)
}

fn vm_write_permission(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (f, va) = env.mapped_frame(12, MapFlags::READ)?;
    faulter(env, &sync, writer, va + 0x20)?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 0x20, get(IP), Access::Write, Kind::Permission)?;
    VSPACE
        .protect(va, 0x1000, MapFlags::RW)
        .or_fail("VSpaceProtect to read-write")?;
    libmk::reply(&Message::new(fault_reply::RESUME, &[])).or_fail("Reply (resume)")?;
    sync.settle()?;
    expect_eq(
        get(DONE),
        1,
        "the writer finished after the protect and resume",
    )?;
    // SAFETY: `va` maps `f` readable in init's VSpace.
    let v = unsafe { ((va + 0x20) as *const u64).read_volatile() };
    expect_eq(v, 0x5151, "the value written")?;
    let _ = f;
    Ok(())
}

fn vm_exec_translation(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, jumper, va + 0x40)?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 0x40, va + 0x40, Access::Execute, Kind::Translation)
}

fn vm_exec_permission(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (_, va) = env.mapped_frame(12, MapFlags::RW)?;
    faulter(env, &sync, jumper, va)?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va, va, Access::Execute, Kind::Permission)
}

fn reply_map(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (f, data) = env.mapped_frame(12, MapFlags::RW)?;
    // SAFETY: `data` maps `f` read-write in init's VSpace.
    unsafe { ((data + 0x10) as *mut u64).write_volatile(0xfeed_f00d) };
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, reader, va + 0x10)?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 0x10, get(IP), Access::Read, Kind::Translation)?;
    sync.settle()?;
    expect_eq(get(DONE), 0, "the faulter went on before the reply")?;
    let item = [f.cptr(), 0, 1, va, MapFlags::READ.0];
    libmk::reply(&Message::new(fault_reply::REPLY_MAP, &item)).or_fail("Reply with a map item")?;
    sync.settle()?;
    expect_eq(
        (get(DONE), get(VAL)),
        (1, 0xfeed_f00d),
        "the faulter done, the value it read",
    )?;
    let (pa, flags) = VSPACE.query(va).or_fail("VSpaceQuery of the mapped page")?;
    expect_eq(
        pa,
        f.phys_addr().or_fail("FramePhysAddr")?.0,
        "the page's physical address",
    )?;
    expect_eq(
        flags.0 & MapFlags::RW.0,
        MapFlags::READ.0,
        "the page's rights",
    )
}

fn reply_map_write(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (f, data) = env.mapped_frame(14, MapFlags::RW)?;
    let va = env.a.va_reserve(2).or_fail("reserve addresses")?;
    faulter(env, &sync, writer, va + 0x1008)?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 0x1008, get(IP), Access::Write, Kind::Translation)?;
    // Pages 2 and 3 of the frame, at va and va + 4 KiB.
    let item = [f.cptr(), 2, 2, va, MapFlags::RW.0];
    libmk::reply(&Message::new(fault_reply::REPLY_MAP, &item)).or_fail("Reply with a map item")?;
    sync.settle()?;
    expect_eq(get(DONE), 1, "the writer finished")?;
    // SAFETY: `data` maps all four pages of `f` read-write in init's VSpace.
    let v = unsafe { ((data + 0x3008) as *const u64).read_volatile() };
    expect_eq(v, 0x5151, "the value in page 3 of the frame")
}

fn reply_resume(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (f, data) = env.mapped_frame(12, MapFlags::RW)?;
    // SAFETY: `data` maps `f` read-write in init's VSpace.
    unsafe { (data as *mut u64).write_volatile(0x0123_4567) };
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, reader, va)?;
    sync.fault_msg()?;
    f.map(VSPACE, va, MapFlags::READ, 0, 1)
        .or_fail("map the frame at the fault address")?;
    libmk::reply(&Message::new(fault_reply::RESUME, &[])).or_fail("Reply (resume)")?;
    sync.settle()?;
    expect_eq(
        (get(DONE), get(VAL)),
        (1, 0x0123_4567),
        "the faulter done, the value it read",
    )
}

fn reply_map_bad(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let f = env.frame(12)?;
    let e = env.endpoint()?;
    let empty = env.slot()?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, reader, va)?;
    sync.fault_msg()?;
    for (item, want, what) in [
        (
            [empty, 0, 1, va, MapFlags::READ.0],
            Error::InvalidCapability,
            "an empty frame slot",
        ),
        (
            [e.cptr(), 0, 1, va, MapFlags::READ.0],
            Error::InvalidCapability,
            "an endpoint as the frame",
        ),
        (
            [f.cptr(), 0, 1, va + 8, MapFlags::READ.0],
            Error::AlignmentError,
            "an unaligned address",
        ),
        (
            [f.cptr(), 1, 1, va, MapFlags::READ.0],
            Error::RangeError,
            "a page past the frame's end",
        ),
    ] {
        let r = libmk::reply(&Message::new(fault_reply::REPLY_MAP, &item));
        expect_err(r, &[want, Error::InvalidArgument], what)?;
        sync.settle()?;
        expect_eq(get(DONE), 0, "the faulter went on after a bad map reply")?;
    }
    let good = [f.cptr(), 0, 1, va, MapFlags::READ.0];
    libmk::reply(&Message::new(fault_reply::REPLY_MAP, &good))
        .or_fail("a good map reply after the bad ones")?;
    sync.settle()?;
    expect_eq(
        (get(DONE), get(VAL)),
        (1, 0),
        "the faulter done, the (zeroed) value it read",
    )
}

/// `svc` with number 999 and x0..x3 = 11, 22, 33, 44, noting its address in `R[IP]`.
fn bad_syscall(_: u64) {
    let ret: u64;
    // SAFETY: a system call the kernel does not know; it either reports a fault or returns
    // `InvalidSyscall` in x0. x1..x8 are declared clobbered.
    unsafe {
        asm!(
            "adr {ip}, 2f",
            "str {ip}, [{cell}]",
            "2:",
            "svc #0",
            ip = out(reg) _,
            cell = in(reg) R[IP].as_ptr(),
            inout("x0") 11u64 => ret,
            inout("x1") 22u64 => _,
            inout("x2") 33u64 => _,
            inout("x3") 44u64 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            inout("x8") 999u64 => _,
            options(nostack),
        )
    };
    set(VAL, ret);
    set(DONE, 1);
}

fn unknown_syscall(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    faulter(env, &sync, bad_syscall, 0)?;
    let r = sync.fault_msg()?;
    expect_eq(
        r.info().label,
        FaultLabel::UnknownSyscall as u64,
        "fault label",
    )?;
    expect_eq(r.mrs[0], 999, "MR0 (the number)")?;
    let ip = get(IP);
    ensure!(
        r.mrs[1] == ip || r.mrs[1] == ip + 4,
        "MR1 {:#x}: not the svc at {ip:#x} (or after it)",
        r.mrs[1]
    );
    expect_eq(
        [r.mrs[2], r.mrs[3], r.mrs[4], r.mrs[5]],
        [11, 22, 33, 44],
        "MR2..MR5 (x0..x3)",
    )
}

fn undefined(_: u64) {
    // SAFETY: `udf` raises an undefined-instruction exception; the check never resumes us.
    unsafe {
        asm!(
            "adr {ip}, 2f",
            "str {ip}, [{cell}]",
            "2:",
            "udf #0",
            ip = out(reg) _,
            cell = in(reg) R[IP].as_ptr(),
            options(nostack),
        )
    };
    set(DONE, 1);
}

fn undefined_instruction(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    faulter(env, &sync, undefined, 0)?;
    let r = sync.fault_msg()?;
    expect_eq(
        r.info().label,
        FaultLabel::UndefinedInstruction as u64,
        "fault label",
    )?;
    expect_eq(r.mrs[0], get(IP), "MR0 (the instruction's address)")?;
    expect_eq(ec(r.mrs[1]), 0, "ESR exception class (unknown reason)")?;
    sync.settle()?;
    expect_eq(get(DONE), 0, "the thread went on without a reply")
}

fn pc_alignment(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let target = (undefined as fn(u64) as usize as u64) + 2;
    faulter(env, &sync, jumper, target)?;
    let r = sync.fault_msg()?;
    expect_eq(
        r.info().label,
        FaultLabel::AlignmentFault as u64,
        "fault label",
    )?;
    expect_eq(ec(r.mrs[1]), 0x22, "ESR exception class (PC alignment)")?;
    ensure!(
        r.mrs[0] == target || r.mrs[2] == target,
        "neither MR0 {:#x} nor MR2 {:#x} is the misaligned pc {target:#x}",
        r.mrs[0],
        r.mrs[2]
    );
    Ok(())
}

fn breakpoint(_: u64) {
    // SAFETY: `brk` raises a breakpoint exception; the check never resumes us.
    unsafe {
        asm!(
            "adr {ip}, 2f",
            "str {ip}, [{cell}]",
            "2:",
            "brk #0x42",
            ip = out(reg) _,
            cell = in(reg) R[IP].as_ptr(),
            options(nostack),
        )
    };
    set(DONE, 1);
}

fn brk_user_exception(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    faulter(env, &sync, breakpoint, 0)?;
    let r = sync.fault_msg()?;
    expect_eq(
        r.info().label,
        FaultLabel::UserException as u64,
        "fault label",
    )?;
    expect_eq(r.mrs[0], get(IP), "MR0 (the instruction's address)")?;
    expect_eq(ec(r.mrs[1]), 0x3c, "ESR exception class (BRK)")
}

fn bystander(_: u64) {
    set(13, 1);
}

fn no_handler_suspended(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    let t = env.spawn(reader, va, 254)?;
    env.spawn(bystander, 0, 254)?;
    sync.settle()?;
    ensure!(get(IP) != 0, "the faulting thread never ran");
    expect_eq(get(DONE), 0, "the faulting thread went on past the fault")?;
    expect_eq(get(13), 1, "another thread ran after the fault")?;
    let regs = t
        .tcb
        .read_registers()
        .or_fail("TcbReadRegisters of the faulted thread")?;
    expect_eq(regs[0], get(IP), "its pc (the faulting load)")
}

fn no_handler_unknown_syscall(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    env.spawn(bad_syscall, 0, 254)?;
    sync.settle()?;
    expect_eq(
        (get(DONE), get(VAL)),
        (1, Error::InvalidSyscall.code()),
        "done, x0 of an unknown syscall without a fault endpoint",
    )
}

/// A map item replaces what is mapped at its address (how a pager resolves a write to a
/// copy-on-write page in two kernel entries): the faulter writes to a page mapped read-only,
/// the handler answers with another frame there, the write lands in the new frame and the
/// old one is untouched.
fn reply_map_replaces(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (old, old_data) = env.mapped_frame(12, MapFlags::RW)?;
    let (new, new_data) = env.mapped_frame(12, MapFlags::RW)?;
    let copy: libmk::Cap<libmk::Frame> =
        libmk::Cap::from_cptr(env.copy(old.cptr(), CapRights::ALL)?);
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    copy.map(VSPACE, va, MapFlags::READ, 0, 1)
        .or_fail("map the old frame read-only")?;
    faulter(env, &sync, writer, va + 0x10)?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 0x10, get(IP), Access::Write, Kind::Permission)?;
    let item = [new.cptr(), 0, 1, va, MapFlags::RW.0];
    libmk::reply(&Message::new(fault_reply::REPLY_MAP, &item))
        .or_fail("Reply with a map item over the read-only page")?;
    sync.settle()?;
    expect_eq(get(DONE), 1, "the writer finished")?;
    // SAFETY: both frames are mapped read-write in init's VSpace at `*_data`.
    let (o, n) = unsafe {
        (
            ((old_data + 0x10) as *const u64).read_volatile(),
            ((new_data + 0x10) as *const u64).read_volatile(),
        )
    };
    expect_eq(
        (o, n),
        (0, 0x5151),
        "the old frame's word, the new frame's word",
    )?;
    let (pa, _) = VSPACE.query(va).or_fail("query the address")?;
    let (new_pa, _) = new.phys_addr().or_fail("FramePhysAddr")?;
    expect_eq(pa, new_pa, "what is mapped at the address now")
}

// --- Saved fault replies ------------------------------------------------------------------

fn saved(slot: u64) -> Cap<SavedReply> {
    Cap::from_cptr(slot)
}

/// Saves the reply to the fault just received into a new slot.
fn save(env: &mut Env) -> Result<u64, super::Why> {
    let slot = env.slot()?;
    libmk::save_caller(slot).or_fail("SaveCaller of a faulted thread")?;
    expect_type(slot, CapType::Reply, "the saved reply's slot")?;
    Ok(slot)
}

/// A map item through a saved reply: the page appears and the faulting load is restarted
/// (it reads the new page's value, and runs once: the thread finishes normally).
fn saved_reply_map(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (f, data) = env.mapped_frame(12, MapFlags::RW)?;
    // SAFETY: `data` maps `f` read-write in init's VSpace.
    unsafe { ((data + 0x10) as *mut u64).write_volatile(0xfeed_5a7e) };
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, reader, va + 0x10)?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 0x10, get(IP), Access::Read, Kind::Translation)?;
    let slot = save(env)?;
    expect_err(
        libmk::reply(&Message::new(fault_reply::RESUME, &[])),
        &[Error::NoReplyTarget],
        "Reply after saving the fault's reply",
    )?;
    sync.settle()?;
    expect_eq(get(DONE), 0, "the faulter went on before the saved reply")?;
    let item = [f.cptr(), 0, 1, va, MapFlags::READ.0];
    saved(slot)
        .send(&Message::new(fault_reply::REPLY_MAP, &item))
        .or_fail("Send a map item on the saved reply")?;
    sync.settle()?;
    expect_eq(
        (get(DONE), get(VAL)),
        (1, 0xfeed_5a7e),
        "the faulter done, the value it read",
    )?;
    expect_type(slot, CapType::Null, "the saved reply after use")?;
    let (pa, flags) = VSPACE.query(va).or_fail("VSpaceQuery of the mapped page")?;
    expect_eq(
        (pa, flags.0 & MapFlags::RW.0),
        (f.phys_addr().or_fail("FramePhysAddr")?.0, MapFlags::READ.0),
        "the page's physical address and rights",
    )
}

/// The same for a thread in another address space: the map item goes into the faulter's
/// VSpace, not the replier's.
fn saved_reply_map_other_vspace(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (f, data) = env.mapped_frame(12, MapFlags::RW)?;
    // SAFETY: `data` maps `f` read-write in init's VSpace.
    unsafe { ((data + 0x18) as *mut u64).write_volatile(0x0f0e_15ed) };
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    let cfg = Config {
        fault_endpoint: Some(sync.fault),
        ..Config::new(254)
    };
    let (t, mut space) = env.foreign_thread(cfg)?;
    space
        .tables_for(&mut env.a, va, 1)
        .or_fail("tables in the other VSpace")?;
    t.run(reader, va + 0x18).or_fail("start the thread")?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 0x18, get(IP), Access::Read, Kind::Translation)?;
    let slot = save(env)?;
    let item = [f.cptr(), 0, 1, va, MapFlags::READ.0];
    saved(slot)
        .send(&Message::new(fault_reply::REPLY_MAP, &item))
        .or_fail("Send a map item on the saved reply")?;
    sync.settle()?;
    expect_eq(
        (get(DONE), get(VAL)),
        (1, 0x0f0e_15ed),
        "the faulter done, the value it read",
    )?;
    expect_err(
        VSPACE.query(va),
        &[Error::NotMapped],
        "the address in init's own VSpace",
    )?;
    let (pa, _) = space.vspace.query(va).or_fail("query the other VSpace")?;
    expect_eq(
        pa,
        f.phys_addr().or_fail("FramePhysAddr")?.0,
        "what the faulter's VSpace maps",
    )
}

fn saved_reply_resume(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (f, data) = env.mapped_frame(12, MapFlags::RW)?;
    // SAFETY: `data` maps `f` read-write in init's VSpace.
    unsafe { (data as *mut u64).write_volatile(0x0123_4567) };
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, reader, va)?;
    sync.fault_msg()?;
    let slot = save(env)?;
    f.map(VSPACE, va, MapFlags::READ, 0, 1)
        .or_fail("map the frame at the fault address")?;
    saved(slot)
        .send(&Message::new(fault_reply::RESUME, &[]))
        .or_fail("Send a resume on the saved reply")?;
    sync.settle()?;
    expect_eq(
        (get(DONE), get(VAL)),
        (1, 0x0123_4567),
        "the faulter done, the value it read",
    )
}

/// A bad map item through a saved reply fails with the mapping's error and changes
/// nothing: the capability stays, the faulter waits, a good item then works.
fn saved_reply_map_bad(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let f = env.frame(12)?;
    let empty = env.slot()?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    faulter(env, &sync, reader, va)?;
    sync.fault_msg()?;
    let slot = save(env)?;
    for (item, want, what) in [
        (
            [empty, 0, 1, va, MapFlags::READ.0],
            Error::InvalidCapability,
            "an empty frame slot",
        ),
        (
            [slot, 0, 1, va, MapFlags::READ.0],
            Error::InvalidCapability,
            "the saved reply itself as the frame",
        ),
        (
            [f.cptr(), 0, 1, va + 8, MapFlags::READ.0],
            Error::AlignmentError,
            "an unaligned address",
        ),
        (
            [f.cptr(), 1, 1, va, MapFlags::READ.0],
            Error::RangeError,
            "a page past the frame's end",
        ),
    ] {
        let r = saved(slot).send(&Message::new(fault_reply::REPLY_MAP, &item));
        expect_err(r, &[want, Error::InvalidArgument], what)?;
        expect_type(slot, CapType::Reply, "the saved reply after a bad map item")?;
        sync.settle()?;
        expect_eq(get(DONE), 0, "the faulter went on after a bad map reply")?;
    }
    let good = [f.cptr(), 0, 1, va, MapFlags::READ.0];
    saved(slot)
        .send(&Message::new(fault_reply::REPLY_MAP, &good))
        .or_fail("a good map item after the bad ones")?;
    sync.settle()?;
    expect_eq(get(DONE), 1, "the faulter done")?;
    expect_type(slot, CapType::Null, "the saved reply after use")
}

/// Deleting a faulted thread's saved reply leaves it stopped at the faulting instruction
/// (its registers untouched, as `ipc::wake_with_error` does for faults): resumed, it faults
/// again at the same place.
fn saved_reply_deleted(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    let t = faulter(env, &sync, reader, va + 0x20)?;
    sync.fault_msg()?;
    let slot = save(env)?;
    CNODE
        .delete(slot)
        .or_fail("CNodeDelete of the saved reply")?;
    sync.settle()?;
    expect_eq(
        get(DONE),
        0,
        "the faulter went on after its reply was deleted",
    )?;
    let regs = t.tcb.read_registers().or_fail("TcbReadRegisters")?;
    expect_eq(regs[0], get(IP), "its pc (the faulting load)")?;
    t.tcb.resume().or_fail("TcbResume the faulter")?;
    let r = sync.fault_msg()?;
    check_vm_fault(&r, va + 0x20, get(IP), Access::Read, Kind::Translation)
}

/// Suspending a faulted thread whose reply is saved empties the reply's slot: a later map
/// item through it fails and maps nothing.
fn saved_reply_faulter_suspended(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let f = env.frame(12)?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    let t = faulter(env, &sync, reader, va)?;
    sync.fault_msg()?;
    let slot = save(env)?;
    t.tcb.suspend().or_fail("TcbSuspend the faulter")?;
    expect_type(slot, CapType::Null, "the saved reply after the suspend")?;
    let item = [f.cptr(), 0, 1, va, MapFlags::READ.0];
    expect_err(
        saved(slot).send(&Message::new(fault_reply::REPLY_MAP, &item)),
        &[Error::InvalidCapability],
        "a map item through the emptied slot",
    )?;
    expect_err(VSPACE.query(va), &[Error::NotMapped], "the fault address")?;
    sync.settle()?;
    expect_eq(get(DONE), 0, "the suspended faulter ran")
}

/// Faulted threads of `saved_replies_out_of_order`.
const HELD: usize = 8;
/// Where they fault (page i for thread i) and what each read.
static HELD_BASE: AtomicU64 = AtomicU64::new(0);
static HELD_GOT: [AtomicU64; HELD] = [const { AtomicU64::new(0) }; HELD];

fn held_reader(i: u64) {
    let va = HELD_BASE.load(Ordering::SeqCst) + i * PAGE + 8 * i;
    // SAFETY: the page faults until the handler maps a frame there; then it is readable.
    let v = unsafe { core::ptr::read_volatile(va as *const u64) };
    HELD_GOT[i as usize % HELD].store(v, Ordering::SeqCst);
}

/// What a pager with pending faults does: one handler holds several faulted threads at
/// once (each fault's reply saved as it arrives, the handler receiving again), then answers
/// them in another order with map items; each thread resumes with its own page.
fn saved_replies_out_of_order(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let base = env.a.va_reserve(HELD as u64).or_fail("reserve addresses")?;
    HELD_BASE.store(base, Ordering::SeqCst);
    let mut frames = [0u64; HELD];
    for (i, fr) in frames.iter_mut().enumerate() {
        let (f, data) = env.mapped_frame(12, MapFlags::RW)?;
        // SAFETY: `data` maps `f` read-write in init's VSpace.
        unsafe { ((data + 8 * i as u64) as *mut u64).write_volatile(0xab00 + i as u64) };
        *fr = f.cptr();
        HELD_GOT[i].store(0, Ordering::SeqCst);
    }
    for i in 0..HELD as u64 {
        faulter(env, &sync, held_reader, i)?;
    }
    // Take every fault as it comes, keeping each reply.
    let mut slots = [0u64; HELD];
    for _ in 0..HELD {
        let r = sync.fault_msg()?;
        let addr = r.mrs[vm_fault::ADDRESS];
        let i = (addr.wrapping_sub(base) / PAGE) as usize;
        ensure!(
            i < HELD && slots[i] == 0 && addr == base + i as u64 * (PAGE + 8),
            "unexpected fault address {addr:#x}"
        );
        slots[i] = save(env)?;
    }
    sync.settle()?;
    ensure!(
        HELD_GOT.iter().all(|g| g.load(Ordering::SeqCst) == 0),
        "a faulted thread went on before its answer"
    );
    // Answer in the order 5, 2, 7, 4, 1, 6, 3, 0; after each, only the answered have run.
    for k in 0..HELD {
        let i = (5 + 5 * k) % HELD;
        let item = [frames[i], 0, 1, base + i as u64 * PAGE, MapFlags::READ.0];
        saved(slots[i])
            .send(&Message::new(fault_reply::REPLY_MAP, &item))
            .or_fail("Send a map item on a saved reply")?;
        sync.settle()?;
        for (j, g) in HELD_GOT.iter().enumerate() {
            let answered = (0..=k).any(|kk| (5 + 5 * kk) % HELD == j);
            let want = if answered { 0xab00 + j as u64 } else { 0 };
            expect_eq(g.load(Ordering::SeqCst), want, "what a faulted thread read")?;
        }
    }
    Ok(())
}
