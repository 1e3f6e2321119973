//! System call dispatch (numbers and convention: `abi::syscall`).

use crate::invoke::{self, Outcome};
use crate::object::Obj;
use crate::object::tcb::TcbRef;
use crate::{ipc, kprintln, platform, sched};
use abi::message::{IpcBuffer, MsgInfo, REGISTER_MRS};
use abi::syscall::{PUTSTR_REGS, unpack_putstr};
use abi::{Error, Syscall};
use kernel_core::cap::Cap;

/// Performs the system call of thread `t` (its registers are in its TCB).
pub fn handle(t: TcbRef) {
    let ctx = &t.get().ctx;
    let (number, x0, x1) = (ctx.x[8], ctx.x[0], ctx.x[1]);
    let Ok(syscall) = Syscall::try_from(number) else {
        crate::fault::unknown_syscall(t, number);
        return;
    };
    let result =
        match syscall {
            Syscall::DebugPutStr => put_str(t),
            Syscall::DebugPowerOff => match invoke::lookup(t, x0) {
                Ok((_, Cap::PowerControl)) => {
                    kprintln!("kernel: power off requested by user space");
                    platform::power_off()
                }
                Ok(_) | Err(_) => Err(Error::InvalidCapability),
            },
            Syscall::DebugTicks => {
                let c = &mut t.get().ctx;
                c.x[1] = crate::arch::timer::ticks();
                c.x[2] = crate::arch::timer::TICK_HZ;
                Ok(())
            }
            // An empty slot in range is type Null (0), not an error.
            Syscall::DebugCapType => t.get().cspace_slot(x0).map(|slot| {
                t.get().ctx.x[1] = slot.get().cap().cap_type() as u64;
            }),
            Syscall::DebugCounters => {
                let c = sched::cpu();
                let (entries, switches) = (c.entries, c.space_switches);
                let ctx = &mut t.get().ctx;
                ctx.x[1] = entries;
                ctx.x[2] = switches;
                Ok(())
            }
            Syscall::Send | Syscall::NBSend | Syscall::Call => {
                invoke::lookup(t, x0).and_then(|(slot, cap)| {
                    let blocking = syscall != Syscall::NBSend;
                    ipc::send(t, slot, cap, blocking, syscall == Syscall::Call)
                })
            }
            Syscall::Recv | Syscall::NBRecv => invoke::lookup(t, x0)
                .and_then(|(_, cap)| ipc::recv(t, cap, syscall == Syscall::Recv)),
            Syscall::Reply => ipc::reply(t),
            Syscall::SaveCaller => t.get().cspace_slot(x0).and_then(|slot| {
                if slot.get().is_empty() {
                    ipc::save_caller(t, slot)
                } else {
                    Err(Error::SlotOccupied)
                }
            }),
            Syscall::ReplyRecv => {
                // The reply may fail (no caller, or a bad map item): then nothing is received,
                // so the server sees the error and can fix its reply.
                match ipc::reply(t) {
                    Ok(()) | Err(Error::NoReplyTarget) => {
                        invoke::lookup(t, x0).and_then(|(_, cap)| ipc::recv(t, cap, true))
                    }
                    Err(e) => Err(e),
                }
            }
            Syscall::Yield => {
                sched::yield_current();
                Ok(())
            }
            Syscall::Signal => invoke::lookup(t, x0).and_then(|(_, cap)| ipc::signal(cap)),
            Syscall::Wait | Syscall::Poll => invoke::lookup(t, x0)
                .and_then(|(_, cap)| ipc::wait(t, cap, syscall == Syscall::Wait)),
            Syscall::Invoke => match invoke::invoke(t, x0, x1) {
                Ok(Outcome::Done { results, count }) => {
                    write_results(t, &results[..count]);
                    Ok(())
                }
                Ok(Outcome::Restart) => {
                    // Re-execute the `svc` once the pending interrupt has been taken.
                    t.get().ctx.elr -= 4;
                    return;
                }
                Err(e) => Err(e),
            },
        };
    if let Err(e) = result {
        ipc::set_result(t, Err(e));
    } else if blocking_left_result(syscall) {
        ipc::set_result(t, Ok(()));
    }
}

/// Calls whose success result is written when they complete (by the IPC code), not here.
fn blocking_left_result(s: Syscall) -> bool {
    !matches!(
        s,
        Syscall::Send
            | Syscall::Call
            | Syscall::Recv
            | Syscall::NBRecv
            | Syscall::ReplyRecv
            | Syscall::Wait
            | Syscall::Poll
            | Syscall::NBSend
    )
}

/// Results of an invocation: MR0..MR5 in registers, the rest in the IPC buffer.
fn write_results(t: TcbRef, results: &[u64]) {
    let tcb = t.get();
    let n = results.len().min(REGISTER_MRS);
    tcb.ctx.x[2..2 + n].copy_from_slice(&results[..n]);
    if results.len() > REGISTER_MRS
        && let Some(buf) = Obj::<IpcBuffer>::from_link(tcb.ipc_buffer)
    {
        buf.get().mrs[REGISTER_MRS..results.len()].copy_from_slice(&results[REGISTER_MRS..]);
    }
    tcb.ctx.x[1] = MsgInfo::new(0, results.len()).encode();
}

fn put_str(t: TcbRef) -> Result<(), Error> {
    if !matches!(invoke::lookup(t, t.get().ctx.x[0]), Ok((_, Cap::Console))) {
        return Err(Error::InvalidCapability);
    }
    let ctx = &t.get().ctx;
    let mut regs = [0u64; PUTSTR_REGS];
    regs.copy_from_slice(&ctx.x[2..2 + PUTSTR_REGS]);
    let (bytes, len) = unpack_putstr(ctx.x[1], &regs).ok_or(Error::InvalidArgument)?;
    crate::console::write_bytes(&bytes[..len]);
    Ok(())
}
