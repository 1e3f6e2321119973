//! `Invoke`: operations on capabilities. The message is decoded and checked by
//! `kernel_core::decode` (everything that needs no kernel state); this file looks up the
//! capabilities the request names, checks what depends on them, and only then performs the
//! operation.

use crate::arch::exception::UserContext;
use crate::delete;
use crate::object::cnode::{self, SlotRef, Slots};
use crate::object::tcb::{self, State, Tcb, TcbRef};
use crate::object::{Obj, irq, timer, untyped, vspace};
use crate::sched;
use abi::Error;
use abi::message::{IpcBuffer, MAX_MRS, MsgInfo, REGISTER_MRS};
use abi::object::CapRights;
use kernel_core::cap::{Cap, Derivation, derive};
use kernel_core::decode::{Request, decode};
use kernel_core::mdb;

/// What an invocation returns besides success: result words, or "restart me".
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per call on the kernel stack; the kernel has no heap to box into"
)]
pub enum Outcome {
    Done {
        results: [u64; MAX_MRS],
        count: usize,
    },
    /// Interrupted at a preemption point: re-execute the `svc` after the interrupt.
    Restart,
}

fn done() -> Result<Outcome, Error> {
    Ok(Outcome::Done {
        results: [0; MAX_MRS],
        count: 0,
    })
}

fn results(values: &[u64]) -> Result<Outcome, Error> {
    let mut results = [0; MAX_MRS];
    results[..values.len()].copy_from_slice(values);
    Ok(Outcome::Done {
        results,
        count: values.len(),
    })
}

/// The capability at `cptr` in the thread's CSpace, with its slot.
pub fn lookup(t: TcbRef, cptr: u64) -> Result<(SlotRef, Cap), Error> {
    let slot = t.get().cspace_slot(cptr)?;
    match slot.get().cap() {
        Cap::Null | Cap::Zombie { .. } => Err(Error::InvalidCapability),
        cap => Ok((slot, cap)),
    }
}

/// A CNode capability at `cptr` (as an argument).
fn lookup_cnode(t: TcbRef, cptr: u64) -> Result<Cap, Error> {
    match lookup(t, cptr)? {
        (_, cap @ Cap::CNode { .. }) => Ok(cap),
        _ => Err(Error::InvalidCapability),
    }
}

/// The message registers of an invocation: MR0..MR5 from the registers, the rest from the
/// caller's IPC buffer.
fn message(t: TcbRef, info: MsgInfo) -> [u64; MAX_MRS] {
    let mut mrs = [0; MAX_MRS];
    let ctx = &t.get().ctx;
    mrs[..REGISTER_MRS].copy_from_slice(&ctx.x[2..2 + REGISTER_MRS]);
    if info.length > REGISTER_MRS
        && let Some(buf) = Obj::<IpcBuffer>::from_link(t.get().ipc_buffer)
    {
        mrs[REGISTER_MRS..info.length].copy_from_slice(&buf.get().mrs[REGISTER_MRS..info.length]);
    }
    mrs
}

/// Performs `Invoke` for thread `t` on the capability at `cptr`.
pub fn invoke(t: TcbRef, cptr: u64, info_word: u64) -> Result<Outcome, Error> {
    let info = MsgInfo::decode(info_word).ok_or(Error::InvalidArgument)?;
    let (slot, cap) = lookup(t, cptr)?;
    let length = if info.length > REGISTER_MRS && t.get().ipc_buffer == 0 {
        REGISTER_MRS
    } else {
        info.length
    };
    let request = if length <= REGISTER_MRS {
        // The common case: the registers alone (no 64-word message to zero and copy).
        let mut mrs = [0u64; REGISTER_MRS];
        mrs.copy_from_slice(&t.get().ctx.x[2..2 + REGISTER_MRS]);
        decode(cap.cap_type(), info, &mrs[..length])?
    } else {
        let mrs = message(t, info);
        decode(cap.cap_type(), info, &mrs[..length])?
    };
    perform(t, slot, cap, request)
}

fn perform(t: TcbRef, slot: SlotRef, cap: Cap, request: Request) -> Result<Outcome, Error> {
    match request {
        Request::UntypedRetype {
            ty,
            size_bits,
            obj_bits,
            dest_cnode,
            dest_index,
            count,
        } => {
            let dest = lookup_cnode(t, dest_cnode)?;
            let made = untyped::retype(slot, ty, size_bits, obj_bits, dest, dest_index, count)?;
            if made < count {
                // Preempted: restart for the rest, with the arguments (MR3 dest_index, MR4
                // count, in x5 and x6) moved past the objects already made.
                let x = &mut t.get().ctx.x;
                x[5] = dest_index + made;
                x[6] = count - made;
                return Ok(Outcome::Restart);
            }
            done()
        }
        Request::CNodeCopy {
            dest_index,
            src_cnode,
            src_index,
            rights,
        } => copy(
            t,
            cap,
            dest_index,
            src_cnode,
            src_index,
            Derivation::Copy { rights },
        ),
        Request::CNodeMint {
            dest_index,
            src_cnode,
            src_index,
            rights,
            badge,
        } => copy(
            t,
            cap,
            dest_index,
            src_cnode,
            src_index,
            Derivation::Mint { rights, badge },
        ),
        Request::CNodeMove {
            dest_index,
            src_cnode,
            src_index,
        } => {
            let src = cnode::slot_in(lookup_cnode(t, src_cnode)?, src_index)?;
            let dest = cnode::empty_slot_in(cap, dest_index)?;
            if src.get().is_empty() {
                return Err(Error::InvalidCapability);
            }
            if src != dest {
                delete::move_cap(src, dest);
            }
            done()
        }
        Request::CNodeDelete { index } => {
            delete::delete(cnode::slot_in(cap, index)?);
            done()
        }
        Request::CNodeRevoke { index } => match delete::revoke(cnode::slot_in(cap, index)?) {
            Ok(()) => done(),
            Err(()) => Ok(Outcome::Restart),
        },
        Request::TcbConfigure {
            cspace,
            vspace,
            ipc_buffer,
            fault_endpoint,
            priority,
        } => configure(t, cap, cspace, vspace, ipc_buffer, fault_endpoint, priority),
        Request::TcbSetPriority { priority } => {
            let target = tcb_of(cap)?;
            check_priority(t, priority)?;
            sched::set_priority(target, u64::from(priority));
            done()
        }
        Request::TcbReadRegisters { count } => read_registers(t, tcb_of(cap)?, count),
        Request::TcbWriteRegisters { values, count } => {
            let target = tcb_of(cap)?;
            let ctx = &mut target.get().ctx;
            write_registers(ctx, &values[..count]);
            done()
        }
        Request::TcbResume => {
            resume(tcb_of(cap)?)?;
            done()
        }
        Request::TcbSuspend => {
            delete::suspend(tcb_of(cap)?);
            done()
        }
        Request::TcbStart { pc, sp, arg } => {
            let target = tcb_of(cap)?;
            runnable_config(target)?;
            write_registers(&mut target.get().ctx, &[pc, sp, arg]);
            resume(target)?;
            done()
        }
        Request::TcbBindNotification { notification } => {
            let target = tcb_of(cap)?;
            let (_, n) = lookup(t, notification)?;
            let Cap::Notification { obj, rights, .. } = n else {
                return Err(Error::InvalidCapability);
            };
            if !rights.contains(CapRights::READ) {
                return Err(Error::InsufficientRights);
            }
            let ntfn = Obj::<crate::object::notification::Notification>::from_pa(obj);
            if target.get().bound_notification != 0 || ntfn.get().bound != 0 {
                return Err(Error::IllegalOperation);
            }
            target.get().bound_notification = ntfn.kva();
            ntfn.get().bound = target.kva();
            done()
        }
        Request::TcbUnbindNotification => {
            let target = tcb_of(cap)?;
            let Some(n) = Obj::<crate::object::notification::Notification>::from_link(
                target.get().bound_notification,
            ) else {
                return Err(Error::IllegalOperation);
            };
            n.get().bound = 0;
            target.get().bound_notification = 0;
            done()
        }
        Request::VSpaceMapTable {
            table,
            vaddr,
            level,
        } => {
            let Cap::VSpace { obj } = cap else {
                return Err(Error::InvalidCapability);
            };
            let (_, pt) = lookup(t, table)?;
            let Cap::PageTable { obj: pt } = pt else {
                return Err(Error::InvalidCapability);
            };
            vspace::map_table(obj, pt, vaddr, level)?;
            done()
        }
        Request::VSpaceUnmap { vaddr, size } => {
            let Cap::VSpace { obj } = cap else {
                return Err(Error::InvalidCapability);
            };
            vspace::unmap_range(obj, vaddr, size)?;
            done()
        }
        Request::VSpaceProtect { vaddr, size, flags } => {
            let Cap::VSpace { obj } = cap else {
                return Err(Error::InvalidCapability);
            };
            vspace::protect_range(obj, vaddr, size, flags)?;
            done()
        }
        Request::VSpaceQuery { vaddr } => {
            let Cap::VSpace { obj } = cap else {
                return Err(Error::InvalidCapability);
            };
            let (pa, flags) = vspace::query(obj, vaddr)?;
            results(&[pa, flags.0])
        }
        Request::PageTableUnmap => {
            let Cap::PageTable { obj } = cap else {
                return Err(Error::InvalidCapability);
            };
            vspace::detach_table(obj);
            done()
        }
        Request::FrameMap {
            vspace: vs,
            vaddr,
            flags,
            first_page,
            page_count,
        } => {
            let (_, v) = lookup(t, vs)?;
            let Cap::VSpace { obj } = v else {
                return Err(Error::InvalidCapability);
            };
            vspace::map_frame(slot, obj, vaddr, flags, first_page, page_count, false)?;
            done()
        }
        Request::FrameUnmap => {
            vspace::unmap_all(slot);
            done()
        }
        Request::FramePhysAddr => {
            let Cap::Frame {
                base, size_bits, ..
            } = cap
            else {
                return Err(Error::InvalidCapability);
            };
            results(&[base, 1 << size_bits])
        }
        Request::IrqControlGet {
            intid,
            dest_cnode,
            dest_index,
        } => {
            let dest = cnode::empty_slot_in(lookup_cnode(t, dest_cnode)?, dest_index)?;
            irq::claim(intid)?;
            delete::insert(Some(slot), dest, Cap::IrqHandler { intid });
            done()
        }
        Request::IrqHandlerSetNotification { notification } => {
            let Cap::IrqHandler { intid } = cap else {
                return Err(Error::InvalidCapability);
            };
            let (_, n) = lookup(t, notification)?;
            let Cap::Notification { obj, badge, rights } = n else {
                return Err(Error::InvalidCapability);
            };
            if !rights.contains(CapRights::WRITE) {
                return Err(Error::InsufficientRights);
            }
            irq::set_notification(
                intid,
                Obj::<crate::object::notification::Notification>::from_pa(obj).kva(),
                badge,
            );
            done()
        }
        Request::IrqHandlerAck => {
            let Cap::IrqHandler { intid } = cap else {
                return Err(Error::InvalidCapability);
            };
            irq::ack(intid);
            done()
        }
        Request::IrqHandlerClear => {
            let Cap::IrqHandler { intid } = cap else {
                return Err(Error::InvalidCapability);
            };
            irq::clear(intid);
            done()
        }
        Request::TimerArm {
            notification,
            bits,
            deadline,
        } => {
            let Cap::Timer { obj } = cap else {
                return Err(Error::InvalidCapability);
            };
            let (_, n) = lookup(t, notification)?;
            let Cap::Notification {
                obj: ntfn, rights, ..
            } = n
            else {
                return Err(Error::InvalidCapability);
            };
            if !rights.contains(CapRights::WRITE) {
                return Err(Error::InsufficientRights);
            }
            timer::arm(
                Obj::from_pa(obj),
                Obj::from_pa(ntfn),
                bits,
                deadline,
                crate::arch::timer::ticks(),
            );
            done()
        }
        Request::TimerDisarm => {
            let Cap::Timer { obj } = cap else {
                return Err(Error::InvalidCapability);
            };
            results(&[u64::from(timer::disarm(Obj::from_pa(obj)))])
        }
    }
}

fn tcb_of(cap: Cap) -> Result<TcbRef, Error> {
    match cap {
        Cap::Tcb { obj } => Ok(Obj::from_pa(obj)),
        _ => Err(Error::InvalidCapability),
    }
}

/// `CNodeCopy`/`CNodeMint` into slot `dest_index` of the CNode `cap`.
fn copy(
    t: TcbRef,
    cap: Cap,
    dest_index: u64,
    src_cnode: u64,
    src_index: u64,
    how: Derivation,
) -> Result<Outcome, Error> {
    let src = cnode::slot_in(lookup_cnode(t, src_cnode)?, src_index)?;
    let dest = cnode::empty_slot_in(cap, dest_index)?;
    let src_cap = src.get().cap();
    if matches!(src_cap, Cap::Untyped { .. }) && mdb::has_children(&Slots, src) {
        return Err(Error::RevokeFirst);
    }
    let (new, flags) = derive(&src_cap, how)?;
    mdb::insert_child(&mut Slots, src, dest, new, flags);
    done()
}

/// A thread may not give a priority above its own.
fn check_priority(caller: TcbRef, priority: u8) -> Result<(), Error> {
    if u64::from(priority) > caller.get().priority {
        Err(Error::RangeError)
    } else {
        Ok(())
    }
}

/// `TcbConfigure`: copies the capabilities into the TCB's slots.
fn configure(
    t: TcbRef,
    cap: Cap,
    cspace: u64,
    vspace_cptr: u64,
    ipc_buffer: Option<(u64, u64)>,
    fault_endpoint: Option<u64>,
    priority: u8,
) -> Result<Outcome, Error> {
    let target = tcb_of(cap)?;
    check_priority(t, priority)?;
    let (cs_slot, cs) = lookup(t, cspace)?;
    let (vs_slot, vs) = lookup(t, vspace_cptr)?;
    if !matches!(cs, Cap::CNode { .. }) || !matches!(vs, Cap::VSpace { .. }) {
        return Err(Error::InvalidCapability);
    }
    let buffer = match ipc_buffer {
        Some((cptr, _vaddr)) => {
            let (s, c) = lookup(t, cptr)?;
            match c {
                Cap::Frame {
                    size_bits: 12,
                    device: false,
                    rights,
                    ..
                } if rights.contains(CapRights(3)) => Some((s, c)),
                Cap::Frame { .. } => return Err(Error::InvalidArgument),
                _ => return Err(Error::InvalidCapability),
            }
        }
        None => None,
    };
    let fault = match fault_endpoint {
        Some(cptr) => match lookup(t, cptr)? {
            (s, c @ Cap::Endpoint { .. }) => Some((s, c)),
            _ => return Err(Error::InvalidCapability),
        },
        None => None,
    };
    // All checked: replace the TCB's capabilities.
    let new = [
        (tcb::slot::CSPACE, Some((cs_slot, cs))),
        (tcb::slot::VSPACE, Some((vs_slot, vs))),
        (tcb::slot::IPC_BUFFER, buffer),
        (tcb::slot::FAULT_ENDPOINT, fault),
    ];
    for (which, source) in new {
        let dest = Tcb::slot_ref(target, which);
        delete::delete(dest);
        if let Some((src, src_cap)) = source {
            let (copy, flags) = derive(
                &src_cap,
                Derivation::Copy {
                    rights: CapRights::ALL,
                },
            )?;
            mdb::insert_child(&mut Slots, src, dest, copy, flags);
        }
    }
    target.get().refresh();
    target.get().ipc_buffer = match buffer {
        Some((_, Cap::Frame { base, .. })) => Obj::<IpcBuffer>::from_pa(base).kva(),
        _ => 0,
    };
    sched::set_priority(target, u64::from(priority));
    done()
}

/// A thread can run only with a CSpace and a VSpace.
fn runnable_config(target: TcbRef) -> Result<(), Error> {
    let tcb = target.get();
    match (tcb.cap_in(tcb::slot::CSPACE), tcb.cap_in(tcb::slot::VSPACE)) {
        (Cap::CNode { .. }, Cap::VSpace { .. }) => Ok(()),
        _ => Err(Error::IllegalOperation),
    }
}

fn resume(target: TcbRef) -> Result<(), Error> {
    runnable_config(target)?;
    if target.get().state == State::Inactive {
        sched::make_ready(target);
    }
    Ok(())
}

/// Sets pc, sp, x0.. of a thread. The saved PSTATE is reset to EL0 with interrupts
/// enabled, whatever the thread had, so no write can raise its privilege.
fn write_registers(ctx: &mut UserContext, values: &[u64]) {
    for (i, &v) in values.iter().enumerate() {
        match i {
            0 => ctx.elr = v,
            1 => ctx.sp = v,
            n => ctx.x[n - 2] = v,
        }
    }
    ctx.spsr = 0;
}

/// pc, sp, spsr, x0..x30: the first `count`.
fn read_registers(t: TcbRef, target: TcbRef, count: usize) -> Result<Outcome, Error> {
    let ctx = &target.get().ctx;
    let mut all = [0u64; 34];
    all[0] = ctx.elr;
    all[1] = ctx.sp;
    all[2] = ctx.spsr;
    all[3..].copy_from_slice(&ctx.x);
    let count = if count > REGISTER_MRS && t.get().ipc_buffer == 0 {
        REGISTER_MRS
    } else {
        count
    };
    results(&all[..count])
}
