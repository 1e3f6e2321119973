//! Decoding an `Invoke`: the label, length and every argument checked that can be checked
//! without kernel state (seL4's decode step), giving a typed [`Request`]. What needs state
//! (slots, rights, sizes of the objects named) the kernel checks next, before it performs
//! anything.

use abi::message::NULL_CPTR;
use abi::object::{CapRights, CapType, MAX_PRIORITY, MapFlags, ObjectType};
use abi::{Error, Invocation, MsgInfo};

use crate::elf::USER_VA_END;
use crate::pte::PAGE_SIZE;
use crate::untyped::MAX_RETYPE_COUNT;

/// Registers `TcbReadRegisters` can return: pc, sp, spsr, x0..x30.
pub const MAX_READ_REGISTERS: usize = 34;
/// Values `TcbWriteRegisters` takes: pc, sp, x0..x3 (at least pc and sp).
pub const MIN_WRITE_REGISTERS: usize = 2;
pub const MAX_WRITE_REGISTERS: usize = 6;
/// Interrupts a user handler may take: PPIs and SPIs (GICv2/v3 INTIDs 16..1019). SGIs are
/// the kernel's; 1020..1023 are special.
pub const FIRST_USER_INTID: u32 = 16;
pub const END_USER_INTID: u32 = 1020;

/// Most arguments any invocation reads.
const MAX_ARGS: usize = 6;

/// A decoded invocation. CPtrs (`*_cnode`, `cspace`, `notification`, ...) and indices are
/// still unchecked slot numbers; everything else is valid on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `obj_bits`: log2 of each object's size.
    UntypedRetype {
        ty: ObjectType,
        size_bits: u64,
        obj_bits: u32,
        dest_cnode: u64,
        dest_index: u64,
        count: u64,
    },
    CNodeCopy {
        dest_index: u64,
        src_cnode: u64,
        src_index: u64,
        rights: CapRights,
    },
    CNodeMint {
        dest_index: u64,
        src_cnode: u64,
        src_index: u64,
        rights: CapRights,
        badge: u64,
    },
    CNodeMove {
        dest_index: u64,
        src_cnode: u64,
        src_index: u64,
    },
    CNodeDelete {
        index: u64,
    },
    CNodeRevoke {
        index: u64,
    },
    /// `ipc_buffer`: (frame CPtr, page-aligned user address), or none.
    TcbConfigure {
        cspace: u64,
        vspace: u64,
        ipc_buffer: Option<(u64, u64)>,
        fault_endpoint: Option<u64>,
        priority: u8,
    },
    TcbSetPriority {
        priority: u8,
    },
    TcbReadRegisters {
        count: usize,
    },
    /// `values[..count]`: pc, sp, x0, x1, x2, x3; the rest are 0.
    TcbWriteRegisters {
        values: [u64; MAX_WRITE_REGISTERS],
        count: usize,
    },
    TcbResume,
    TcbSuspend,
    TcbStart {
        pc: u64,
        sp: u64,
        arg: u64,
    },
    TcbBindNotification {
        notification: u64,
    },
    TcbUnbindNotification,
    VSpaceMapTable {
        table: u64,
        vaddr: u64,
        level: u8,
    },
    VSpaceUnmap {
        vaddr: u64,
        size: u64,
    },
    VSpaceProtect {
        vaddr: u64,
        size: u64,
        flags: MapFlags,
    },
    VSpaceQuery {
        vaddr: u64,
    },
    PageTableUnmap,
    FrameMap {
        vspace: u64,
        vaddr: u64,
        flags: MapFlags,
        first_page: u64,
        page_count: u64,
    },
    FrameUnmap,
    FramePhysAddr,
    IrqControlGet {
        intid: u32,
        dest_cnode: u64,
        dest_index: u64,
    },
    IrqHandlerSetNotification {
        notification: u64,
    },
    IrqHandlerAck,
    IrqHandlerClear,
    /// `bits`: nonzero. `deadline`: absolute, in ticks; any value.
    TimerArm {
        notification: u64,
        bits: u64,
        deadline: u64,
    },
    TimerDisarm,
}

/// The capability type an invocation applies to.
pub fn invocation_cap_type(inv: Invocation) -> CapType {
    use Invocation as I;
    match inv {
        I::UntypedRetype => CapType::Untyped,
        I::CNodeCopy | I::CNodeMint | I::CNodeMove | I::CNodeDelete | I::CNodeRevoke => {
            CapType::CNode
        }
        I::TcbConfigure
        | I::TcbSetPriority
        | I::TcbReadRegisters
        | I::TcbWriteRegisters
        | I::TcbResume
        | I::TcbSuspend
        | I::TcbStart
        | I::TcbBindNotification
        | I::TcbUnbindNotification => CapType::Tcb,
        I::VSpaceMapTable | I::VSpaceUnmap | I::VSpaceProtect | I::VSpaceQuery => CapType::VSpace,
        I::PageTableUnmap => CapType::PageTable,
        I::FrameMap | I::FrameUnmap | I::FramePhysAddr => CapType::Frame,
        I::IrqControlGet => CapType::IrqControl,
        I::IrqHandlerSetNotification | I::IrqHandlerAck | I::IrqHandlerClear => CapType::IrqHandler,
        I::TimerArm | I::TimerDisarm => CapType::Timer,
    }
}

/// Decodes an `Invoke` of a capability of type `cap` with message `info` and the message
/// registers the caller sent (only the first `info.length` of `mrs` are read).
///
/// Errors: `InvalidCapability` for Null and Zombie capabilities; `IllegalOperation` for a
/// label that is no operation of `cap`'s type; `InvalidArgument` for too few arguments, a
/// bad object type or `MapFlags`, or a register count outside 2..=6 for
/// `TcbWriteRegisters`; `AlignmentError` for a user address or size that is not page
/// aligned; `RangeError` for numbers out of range (see each check).
pub fn decode(cap: CapType, info: MsgInfo, mrs: &[u64]) -> Result<Request, Error> {
    if matches!(cap, CapType::Null | CapType::Zombie) {
        return Err(Error::InvalidCapability);
    }
    let inv = Invocation::try_from(info.label).map_err(|_| Error::IllegalOperation)?;
    if invocation_cap_type(inv) != cap {
        return Err(Error::IllegalOperation);
    }
    let mrs = mrs.get(..info.length).unwrap_or(mrs);
    if mrs.len() < inv.args() {
        return Err(Error::InvalidArgument);
    }
    let mut args = [0u64; MAX_ARGS];
    for (a, m) in args.iter_mut().zip(mrs) {
        *a = *m;
    }
    let [a0, a1, a2, a3, a4, a5] = args;

    use Invocation as I;
    Ok(match inv {
        I::UntypedRetype => {
            let ty = ObjectType::try_from(a0).map_err(|_| Error::InvalidArgument)?;
            let obj_bits = ty.object_bits(a1).ok_or(Error::RangeError)?;
            if !(1..=MAX_RETYPE_COUNT).contains(&a4) {
                return Err(Error::RangeError);
            }
            Request::UntypedRetype {
                ty,
                size_bits: a1,
                obj_bits,
                dest_cnode: a2,
                dest_index: a3,
                count: a4,
            }
        }
        I::CNodeCopy => Request::CNodeCopy {
            dest_index: a0,
            src_cnode: a1,
            src_index: a2,
            rights: CapRights::from_word(a3),
        },
        I::CNodeMint => Request::CNodeMint {
            dest_index: a0,
            src_cnode: a1,
            src_index: a2,
            rights: CapRights::from_word(a3),
            badge: a4,
        },
        I::CNodeMove => Request::CNodeMove {
            dest_index: a0,
            src_cnode: a1,
            src_index: a2,
        },
        I::CNodeDelete => Request::CNodeDelete { index: a0 },
        I::CNodeRevoke => Request::CNodeRevoke { index: a0 },
        I::TcbConfigure => Request::TcbConfigure {
            cspace: a0,
            vspace: a1,
            ipc_buffer: match optional(a2) {
                Some(frame) => Some((frame, user_range(a3, PAGE_SIZE)?)),
                None => None,
            },
            fault_endpoint: optional(a4),
            priority: priority(a5)?,
        },
        I::TcbSetPriority => Request::TcbSetPriority {
            priority: priority(a0)?,
        },
        I::TcbReadRegisters => Request::TcbReadRegisters {
            count: usize::try_from(a0)
                .ok()
                .filter(|c| (1..=MAX_READ_REGISTERS).contains(c))
                .ok_or(Error::RangeError)?,
        },
        I::TcbWriteRegisters => {
            let count = mrs.len();
            if !(MIN_WRITE_REGISTERS..=MAX_WRITE_REGISTERS).contains(&count) {
                return Err(Error::InvalidArgument);
            }
            user_pc(a0)?;
            Request::TcbWriteRegisters {
                values: args,
                count,
            }
        }
        I::TcbResume => Request::TcbResume,
        I::TcbSuspend => Request::TcbSuspend,
        I::TcbStart => Request::TcbStart {
            pc: user_pc(a0)?,
            sp: a1,
            arg: a2,
        },
        I::TcbBindNotification => Request::TcbBindNotification { notification: a0 },
        I::TcbUnbindNotification => Request::TcbUnbindNotification,
        I::VSpaceMapTable => {
            let vaddr = user_range(a1, PAGE_SIZE)?;
            let level = u8::try_from(a2)
                .ok()
                .filter(|l| (1..=3).contains(l))
                .ok_or(Error::RangeError)?;
            Request::VSpaceMapTable {
                table: a0,
                vaddr,
                level,
            }
        }
        I::VSpaceUnmap => Request::VSpaceUnmap {
            vaddr: user_range(a0, a1)?,
            size: a1,
        },
        I::VSpaceProtect => Request::VSpaceProtect {
            vaddr: user_range(a0, a1)?,
            size: a1,
            flags: MapFlags::validate(a2).ok_or(Error::InvalidArgument)?,
        },
        I::VSpaceQuery => Request::VSpaceQuery {
            vaddr: user_range(a0, PAGE_SIZE)?,
        },
        I::PageTableUnmap => Request::PageTableUnmap,
        I::FrameMap => {
            let size = a4.checked_mul(PAGE_SIZE).ok_or(Error::RangeError)?;
            let vaddr = user_range(a1, size)?;
            let flags = MapFlags::validate(a2).ok_or(Error::InvalidArgument)?;
            // The frame's size is checked with its capability; here only that the page
            // range is representable.
            a3.checked_add(a4).ok_or(Error::RangeError)?;
            Request::FrameMap {
                vspace: a0,
                vaddr,
                flags,
                first_page: a3,
                page_count: a4,
            }
        }
        I::FrameUnmap => Request::FrameUnmap,
        I::FramePhysAddr => Request::FramePhysAddr,
        I::IrqControlGet => Request::IrqControlGet {
            intid: u32::try_from(a0)
                .ok()
                .filter(|i| (FIRST_USER_INTID..END_USER_INTID).contains(i))
                .ok_or(Error::RangeError)?,
            dest_cnode: a1,
            dest_index: a2,
        },
        I::IrqHandlerSetNotification => Request::IrqHandlerSetNotification { notification: a0 },
        I::IrqHandlerAck => Request::IrqHandlerAck,
        I::IrqHandlerClear => Request::IrqHandlerClear,
        I::TimerArm => {
            // Zero bits would signal nothing and wake a waiter with an empty word.
            if a1 == 0 {
                return Err(Error::InvalidArgument);
            }
            Request::TimerArm {
                notification: a0,
                bits: a1,
                deadline: a2,
            }
        }
        I::TimerDisarm => Request::TimerDisarm,
    })
}

/// `NULL_CPTR` means "none".
fn optional(cptr: u64) -> Option<u64> {
    (cptr != NULL_CPTR).then_some(cptr)
}

fn priority(word: u64) -> Result<u8, Error> {
    u8::try_from(word)
        .ok()
        .filter(|&p| u64::from(p) <= MAX_PRIORITY)
        .ok_or(Error::RangeError)
}

/// A user program counter: in the lower (TTBR0) half.
fn user_pc(pc: u64) -> Result<u64, Error> {
    if pc < USER_VA_END {
        Ok(pc)
    } else {
        Err(Error::RangeError)
    }
}

/// Checks [`vaddr`, `vaddr + size`) is a non-empty, page-aligned range of user addresses;
/// returns `vaddr`.
fn user_range(vaddr: u64, size: u64) -> Result<u64, Error> {
    if !vaddr.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(Error::AlignmentError);
    }
    match vaddr.checked_add(size) {
        Some(end) if size != 0 && end <= USER_VA_END => Ok(vaddr),
        _ => Err(Error::RangeError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::message::MAX_MRS;

    const TOP: u64 = USER_VA_END;
    const P: u64 = PAGE_SIZE;

    fn call(cap: CapType, inv: Invocation, args: &[u64]) -> Result<Request, Error> {
        decode(cap, MsgInfo::new(inv as u64, args.len()), args)
    }

    fn cap_types() -> impl Iterator<Item = CapType> {
        (0..=15).map(|v| CapType::try_from(v).unwrap())
    }

    /// Arguments every invocation accepts.
    fn good_args(inv: Invocation) -> &'static [u64] {
        use Invocation as I;
        match inv {
            I::UntypedRetype => &[ObjectType::Endpoint as u64, 0, 2, 100, 4],
            I::CNodeCopy => &[9, 2, 8, 7],
            I::CNodeMint => &[9, 2, 8, 3, 42],
            I::CNodeMove => &[9, 2, 8],
            I::CNodeDelete | I::CNodeRevoke => &[9],
            I::TcbConfigure => &[2, 3, 5, 0x4000_3000, 10, 100],
            I::TcbSetPriority => &[7],
            I::TcbReadRegisters => &[3],
            I::TcbWriteRegisters => &[0x40_0000, 0x80_0000],
            I::TcbStart => &[0x40_0000, 0x80_0000, 1],
            I::TcbBindNotification | I::IrqHandlerSetNotification => &[12],
            I::VSpaceMapTable => &[20, 0x40_0000, 3],
            I::VSpaceUnmap => &[0x40_0000, 0x2000],
            I::VSpaceProtect => &[0x40_0000, 0x2000, 1],
            I::VSpaceQuery => &[0x40_0000],
            I::FrameMap => &[3, 0x40_0000, 3, 0, 1],
            I::IrqControlGet => &[33, 2, 40],
            I::TimerArm => &[12, 1, 500],
            I::TcbResume
            | I::TcbSuspend
            | I::TcbUnbindNotification
            | I::PageTableUnmap
            | I::FrameUnmap
            | I::FramePhysAddr
            | I::IrqHandlerAck
            | I::IrqHandlerClear
            | I::TimerDisarm => &[],
        }
    }

    #[test]
    fn operations_belong_to_their_type() {
        for &inv in Invocation::ALL {
            assert_eq!(good_args(inv).len(), inv.args(), "{inv:?}");
            for cap in cap_types() {
                let r = call(cap, inv, good_args(inv));
                match cap {
                    CapType::Null | CapType::Zombie => assert_eq!(r, Err(Error::InvalidCapability)),
                    _ if invocation_cap_type(inv) == cap => assert!(r.is_ok(), "{inv:?}: {r:?}"),
                    _ => assert_eq!(r, Err(Error::IllegalOperation), "{inv:?} on {cap:?}"),
                }
            }
        }
        // Endpoints, notifications and saved replies have no invocations (they are used
        // with IPC system calls).
        assert!(!Invocation::ALL.iter().any(|&i| matches!(
            invocation_cap_type(i),
            CapType::Endpoint | CapType::Notification | CapType::Reply
        )));
    }

    #[test]
    fn unknown_labels() {
        for label in [
            0,
            2,
            9,
            15,
            29,
            34,
            41,
            53,
            64,
            99,
            abi::message::MAX_LABEL,
            u64::MAX,
        ] {
            let info = MsgInfo::new(label, 6);
            for cap in cap_types() {
                let want = if matches!(cap, CapType::Null | CapType::Zombie) {
                    Error::InvalidCapability
                } else {
                    Error::IllegalOperation
                };
                assert_eq!(decode(cap, info, &[0; 6]), Err(want), "label {label}");
            }
        }
    }

    #[test]
    fn too_few_arguments() {
        for &inv in Invocation::ALL {
            let cap = invocation_cap_type(inv);
            let args = good_args(inv);
            for short in 0..args.len() {
                // Fewer registers sent...
                assert_eq!(
                    call(cap, inv, &args[..short]),
                    Err(Error::InvalidArgument),
                    "{inv:?} with {short}"
                );
                // ...or the length says fewer than the slice holds: only `length` count.
                assert_eq!(
                    decode(cap, MsgInfo::new(inv as u64, short), args),
                    Err(Error::InvalidArgument)
                );
            }
            // A length beyond what was sent reads only what was sent.
            assert!(decode(cap, MsgInfo::new(inv as u64, MAX_MRS), args).is_ok());
        }
    }

    #[test]
    fn extra_arguments_are_ignored() {
        for &inv in Invocation::ALL {
            if inv == Invocation::TcbWriteRegisters {
                continue; // Its length is its register count.
            }
            let mut args = [0xdead_0000u64; 10];
            args[..inv.args()].copy_from_slice(good_args(inv));
            let cap = invocation_cap_type(inv);
            assert_eq!(
                call(cap, inv, &args),
                call(cap, inv, good_args(inv)),
                "{inv:?}"
            );
        }
    }

    #[test]
    fn untyped_retype() {
        use Invocation::UntypedRetype as R;
        let ut = CapType::Untyped;
        assert_eq!(
            call(ut, R, &[ObjectType::CNode as u64, 4, 2, 100, 3]),
            Ok(Request::UntypedRetype {
                ty: ObjectType::CNode,
                size_bits: 4,
                obj_bits: 10,
                dest_cnode: 2,
                dest_index: 100,
                count: 3
            })
        );
        assert_eq!(
            call(
                ut,
                R,
                &[ObjectType::Tcb as u64, u64::MAX, 2, 0, MAX_RETYPE_COUNT]
            ),
            Ok(Request::UntypedRetype {
                ty: ObjectType::Tcb,
                size_bits: u64::MAX,
                obj_bits: 11,
                dest_cnode: 2,
                dest_index: 0,
                count: MAX_RETYPE_COUNT
            })
        );
        for ty in [0, 10, 11, u64::MAX] {
            assert_eq!(call(ut, R, &[ty, 12, 2, 0, 1]), Err(Error::InvalidArgument));
        }
        for (ty, size) in [
            (ObjectType::CNode, 0),
            (ObjectType::CNode, 17),
            (ObjectType::Frame, 11),
            (ObjectType::Frame, 22),
            (ObjectType::Untyped, 3),
            (ObjectType::Untyped, 48),
            (ObjectType::Untyped, u64::MAX),
        ] {
            assert_eq!(
                call(ut, R, &[ty as u64, size, 2, 0, 1]),
                Err(Error::RangeError)
            );
        }
        for count in [0, MAX_RETYPE_COUNT + 1, u64::MAX] {
            assert_eq!(
                call(ut, R, &[ObjectType::Endpoint as u64, 0, 2, 0, count]),
                Err(Error::RangeError)
            );
        }
    }

    #[test]
    fn cnode_operations() {
        let cn = CapType::CNode;
        assert_eq!(
            call(cn, Invocation::CNodeCopy, &[9, 2, 8, u64::MAX]),
            Ok(Request::CNodeCopy {
                dest_index: 9,
                src_cnode: 2,
                src_index: 8,
                rights: CapRights::ALL
            })
        );
        assert_eq!(
            call(cn, Invocation::CNodeMint, &[9, 2, 8, 8 | 2, u64::MAX]),
            Ok(Request::CNodeMint {
                dest_index: 9,
                src_cnode: 2,
                src_index: 8,
                rights: CapRights::WRITE,
                badge: u64::MAX
            })
        );
        // Badge rules need the source capability: checked by `cap::derive`, not here.
        assert!(call(cn, Invocation::CNodeMint, &[9, 2, 8, 7, 0]).is_ok());
        assert_eq!(
            call(cn, Invocation::CNodeMove, &[9, 2, 8]),
            Ok(Request::CNodeMove {
                dest_index: 9,
                src_cnode: 2,
                src_index: 8
            })
        );
        assert_eq!(
            call(cn, Invocation::CNodeDelete, &[u64::MAX]),
            Ok(Request::CNodeDelete { index: u64::MAX })
        );
        assert_eq!(
            call(cn, Invocation::CNodeRevoke, &[4]),
            Ok(Request::CNodeRevoke { index: 4 })
        );
    }

    #[test]
    fn tcb_configure() {
        let cfg = |args: &[u64]| call(CapType::Tcb, Invocation::TcbConfigure, args);
        assert_eq!(
            cfg(&[2, 3, 5, 0x4000_3000, 10, 255]),
            Ok(Request::TcbConfigure {
                cspace: 2,
                vspace: 3,
                ipc_buffer: Some((5, 0x4000_3000)),
                fault_endpoint: Some(10),
                priority: 255
            })
        );
        // NULL_CPTR: no IPC buffer (its address is then ignored), no fault endpoint.
        assert_eq!(
            cfg(&[2, 3, NULL_CPTR, 0x123, NULL_CPTR, 0]),
            Ok(Request::TcbConfigure {
                cspace: 2,
                vspace: 3,
                ipc_buffer: None,
                fault_endpoint: None,
                priority: 0
            })
        );
        assert_eq!(cfg(&[2, 3, 5, 0, 10, 0]).map(|_| ()), Ok(()));
        assert_eq!(cfg(&[2, 3, 5, TOP - P, 10, 0]).map(|_| ()), Ok(()));
        assert_eq!(
            cfg(&[2, 3, 5, 0x4000_3008, 10, 0]),
            Err(Error::AlignmentError)
        );
        assert_eq!(cfg(&[2, 3, 5, u64::MAX, 10, 0]), Err(Error::AlignmentError));
        assert_eq!(cfg(&[2, 3, 5, TOP, 10, 0]), Err(Error::RangeError));
        assert_eq!(
            cfg(&[2, 3, 5, u64::MAX - 0xfff, 10, 0]),
            Err(Error::RangeError)
        );
        assert_eq!(cfg(&[2, 3, 5, 0, 10, 256]), Err(Error::RangeError));
        assert_eq!(cfg(&[2, 3, 5, 0, 10, u64::MAX]), Err(Error::RangeError));
    }

    #[test]
    fn tcb_registers_and_priority() {
        let tcb = |inv, args: &[u64]| call(CapType::Tcb, inv, args);
        use Invocation as I;
        assert_eq!(
            tcb(I::TcbSetPriority, &[255]),
            Ok(Request::TcbSetPriority { priority: 255 })
        );
        assert_eq!(tcb(I::TcbSetPriority, &[256]), Err(Error::RangeError));
        assert_eq!(tcb(I::TcbSetPriority, &[1 << 40]), Err(Error::RangeError));

        for count in [1, 3, 34] {
            assert_eq!(
                tcb(I::TcbReadRegisters, &[count]),
                Ok(Request::TcbReadRegisters {
                    count: count as usize
                })
            );
        }
        for count in [0, 35, u64::MAX] {
            assert_eq!(tcb(I::TcbReadRegisters, &[count]), Err(Error::RangeError));
        }

        assert_eq!(
            tcb(I::TcbWriteRegisters, &[0x1000, 0x2000]),
            Ok(Request::TcbWriteRegisters {
                values: [0x1000, 0x2000, 0, 0, 0, 0],
                count: 2
            })
        );
        assert_eq!(
            tcb(I::TcbWriteRegisters, &[TOP - 4, 2, 3, 4, 5, 6]),
            Ok(Request::TcbWriteRegisters {
                values: [TOP - 4, 2, 3, 4, 5, 6],
                count: 6
            })
        );
        assert_eq!(
            tcb(I::TcbWriteRegisters, &[1, 2, 3, 4, 5, 6, 7]),
            Err(Error::InvalidArgument)
        );
        assert_eq!(tcb(I::TcbWriteRegisters, &[1]), Err(Error::InvalidArgument));
        // The length, not the registers the kernel happened to copy, is the count.
        assert_eq!(
            decode(
                CapType::Tcb,
                MsgInfo::new(I::TcbWriteRegisters as u64, 3),
                &[1, 2, 3, 4, 5, 6]
            ),
            Ok(Request::TcbWriteRegisters {
                values: [1, 2, 3, 0, 0, 0],
                count: 3
            })
        );
        assert_eq!(tcb(I::TcbWriteRegisters, &[TOP, 2]), Err(Error::RangeError));
        assert_eq!(
            tcb(I::TcbWriteRegisters, &[u64::MAX, 2, 3]),
            Err(Error::RangeError)
        );

        assert_eq!(
            tcb(I::TcbStart, &[0x40_0000, u64::MAX, 7]),
            Ok(Request::TcbStart {
                pc: 0x40_0000,
                sp: u64::MAX,
                arg: 7
            })
        );
        assert_eq!(tcb(I::TcbStart, &[TOP, 0, 0]), Err(Error::RangeError));
        assert_eq!(
            tcb(I::TcbStart, &[0xffff_0000_0000_0000, 0, 0]),
            Err(Error::RangeError)
        );

        assert_eq!(tcb(I::TcbResume, &[]), Ok(Request::TcbResume));
        assert_eq!(tcb(I::TcbSuspend, &[]), Ok(Request::TcbSuspend));
        assert_eq!(
            tcb(I::TcbBindNotification, &[12]),
            Ok(Request::TcbBindNotification { notification: 12 })
        );
        assert_eq!(
            tcb(I::TcbUnbindNotification, &[]),
            Ok(Request::TcbUnbindNotification)
        );
    }

    #[test]
    fn vspace_operations() {
        use Invocation as I;
        let vs = |inv, args: &[u64]| call(CapType::VSpace, inv, args);
        for level in 1..=3 {
            assert_eq!(
                vs(I::VSpaceMapTable, &[20, TOP - P, level]),
                Ok(Request::VSpaceMapTable {
                    table: 20,
                    vaddr: TOP - P,
                    level: level as u8
                })
            );
        }
        for level in [0, 4, 256 + 1, u64::MAX] {
            assert_eq!(
                vs(I::VSpaceMapTable, &[20, 0, level]),
                Err(Error::RangeError)
            );
        }
        assert_eq!(
            vs(I::VSpaceMapTable, &[20, 0x1234, 2]),
            Err(Error::AlignmentError)
        );
        assert_eq!(vs(I::VSpaceMapTable, &[20, TOP, 2]), Err(Error::RangeError));

        assert_eq!(
            vs(I::VSpaceUnmap, &[0, TOP]),
            Ok(Request::VSpaceUnmap {
                vaddr: 0,
                size: TOP
            })
        );
        assert_eq!(
            vs(I::VSpaceProtect, &[P, 2 * P, 5]),
            Ok(Request::VSpaceProtect {
                vaddr: P,
                size: 2 * P,
                flags: MapFlags::RX
            })
        );
        assert_eq!(
            vs(I::VSpaceProtect, &[P, P, 0]),
            Ok(Request::VSpaceProtect {
                vaddr: P,
                size: P,
                flags: MapFlags(0)
            })
        );
        for inv in [I::VSpaceUnmap, I::VSpaceProtect] {
            let r = |vaddr, size| vs(inv, &[vaddr, size, 1]);
            assert!(r(TOP - P, P).is_ok());
            assert_eq!(r(0x1001, P), Err(Error::AlignmentError));
            assert_eq!(r(P, 0x1001), Err(Error::AlignmentError));
            assert_eq!(r(P, u64::MAX), Err(Error::AlignmentError));
            assert_eq!(r(P, 0), Err(Error::RangeError));
            assert_eq!(r(TOP, P), Err(Error::RangeError));
            assert_eq!(r(TOP - P, 2 * P), Err(Error::RangeError));
            assert_eq!(r(0, TOP + P), Err(Error::RangeError));
            assert_eq!(r(u64::MAX - 0xfff, P), Err(Error::RangeError));
            assert_eq!(r(P, u64::MAX - 0xfff), Err(Error::RangeError));
        }
        for bad in [2, 4, 6, 16, u64::MAX] {
            assert_eq!(
                vs(I::VSpaceProtect, &[P, P, bad]),
                Err(Error::InvalidArgument)
            );
        }

        assert_eq!(
            vs(I::VSpaceQuery, &[TOP - P]),
            Ok(Request::VSpaceQuery { vaddr: TOP - P })
        );
        assert_eq!(vs(I::VSpaceQuery, &[0x1004]), Err(Error::AlignmentError));
        assert_eq!(vs(I::VSpaceQuery, &[TOP]), Err(Error::RangeError));

        assert_eq!(
            call(CapType::PageTable, I::PageTableUnmap, &[]),
            Ok(Request::PageTableUnmap)
        );
    }

    #[test]
    fn frame_operations() {
        use Invocation as I;
        let map = |args: &[u64]| call(CapType::Frame, I::FrameMap, args);
        assert_eq!(
            map(&[3, 0x40_0000, 0xb, 2, 510]),
            Ok(Request::FrameMap {
                vspace: 3,
                vaddr: 0x40_0000,
                flags: MapFlags(0xb),
                first_page: 2,
                page_count: 510
            })
        );
        assert!(map(&[3, TOP - 2 * P, 1, 0, 2]).is_ok());
        assert_eq!(map(&[3, TOP - 2 * P, 1, 0, 3]), Err(Error::RangeError));
        assert_eq!(map(&[3, 0x40_0000, 1, 0, 0]), Err(Error::RangeError));
        assert_eq!(map(&[3, 0x40_0800, 1, 0, 1]), Err(Error::AlignmentError));
        assert_eq!(map(&[3, TOP, 1, 0, 1]), Err(Error::RangeError));
        assert_eq!(map(&[3, 0, 1, 0, u64::MAX]), Err(Error::RangeError));
        assert_eq!(map(&[3, 0, 1, 0, 1 << 52]), Err(Error::RangeError));
        assert_eq!(map(&[3, 0, 1, u64::MAX, 1]), Err(Error::RangeError));
        for bad in [2, 6, 0x10, u64::MAX] {
            assert_eq!(map(&[3, 0, bad, 0, 1]), Err(Error::InvalidArgument));
        }
        assert_eq!(
            call(CapType::Frame, I::FrameUnmap, &[]),
            Ok(Request::FrameUnmap)
        );
        assert_eq!(
            call(CapType::Frame, I::FramePhysAddr, &[]),
            Ok(Request::FramePhysAddr)
        );
    }

    #[test]
    fn irq_operations() {
        use Invocation as I;
        let get = |intid| call(CapType::IrqControl, I::IrqControlGet, &[intid, 2, 40]);
        for intid in [16, 27, 33, 1019] {
            assert_eq!(
                get(intid),
                Ok(Request::IrqControlGet {
                    intid: intid as u32,
                    dest_cnode: 2,
                    dest_index: 40
                })
            );
        }
        for intid in [0, 15, 1020, 1023, 1 << 32 | 33, u64::MAX] {
            assert_eq!(get(intid), Err(Error::RangeError), "{intid}");
        }
        let h = |inv, args: &[u64]| call(CapType::IrqHandler, inv, args);
        assert_eq!(
            h(I::IrqHandlerSetNotification, &[12]),
            Ok(Request::IrqHandlerSetNotification { notification: 12 })
        );
        assert_eq!(h(I::IrqHandlerAck, &[]), Ok(Request::IrqHandlerAck));
        assert_eq!(h(I::IrqHandlerClear, &[]), Ok(Request::IrqHandlerClear));
    }

    #[test]
    fn timer_operations() {
        use Invocation as I;
        let t = |inv, args: &[u64]| call(CapType::Timer, inv, args);
        // Any deadline is accepted: past ones signal at once, huge ones never come.
        for deadline in [0, 1, 1 << 40, u64::MAX] {
            assert_eq!(
                t(I::TimerArm, &[12, u64::MAX, deadline]),
                Ok(Request::TimerArm {
                    notification: 12,
                    bits: u64::MAX,
                    deadline
                })
            );
        }
        assert_eq!(t(I::TimerArm, &[12, 0, 5]), Err(Error::InvalidArgument));
        assert_eq!(t(I::TimerArm, &[12, 1]), Err(Error::InvalidArgument));
        assert_eq!(t(I::TimerDisarm, &[]), Ok(Request::TimerDisarm));
        assert_eq!(
            call(CapType::Notification, I::TimerArm, &[12, 1, 5]),
            Err(Error::IllegalOperation)
        );
    }

    #[test]
    fn random_messages_never_panic() {
        let mut x = 0x853c_49e6_748f_ea9bu64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let cap = CapType::try_from(next() % 16).unwrap();
            let inv = Invocation::ALL[(next() % Invocation::ALL.len() as u64) as usize];
            // Mostly small numbers, sometimes anything: hits both edges.
            let mut word = || match next() % 4 {
                0 => next(),
                1 => next() % 64,
                2 => (next() % 0x1_0000) << 12,
                _ => u64::MAX - next() % 4,
            };
            let mrs = [word(), word(), word(), word(), word(), word(), word()];
            let label = if next() % 8 == 0 { next() } else { inv as u64 };
            let length = (next() % 9) as usize;
            let _ = decode(cap, MsgInfo::new(label, length), &mrs);
        }
    }
}
