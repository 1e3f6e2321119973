//! Operations on capabilities: the labels of `Invoke` messages and their arguments.
//!
//! `Invoke` takes the capability in `x0` and a `MsgInfo` whose label is one of these and whose
//! length is the number of arguments, which are MR0, MR1, ... in the order listed. Results
//! come back in MR0.. with their count in the returned `MsgInfo`. CPtrs are slot indices in
//! the caller's CSpace (its root CNode); "index" arguments are slot indices in the CNode the
//! argument before them names.

macro_rules! invocations {
    ($($(#[$doc:meta])* $name:ident = $value:literal, args $args:literal;)*) => {
        /// An operation on a capability.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u64)]
        pub enum Invocation {
            $($(#[$doc])* $name = $value,)*
        }

        impl Invocation {
            /// Every operation.
            pub const ALL: &'static [Invocation] = &[$(Invocation::$name,)*];

            /// How many arguments (message registers) the operation reads.
            pub const fn args(self) -> usize {
                match self {
                    $(Self::$name => $args,)*
                }
            }
        }

        impl TryFrom<u64> for Invocation {
            type Error = u64;

            fn try_from(v: u64) -> Result<Self, u64> {
                match v {
                    $($value => Ok(Self::$name),)*
                    other => Err(other),
                }
            }
        }
    };
}

invocations! {
    /// On an Untyped: make `count` objects of `type` (an `ObjectType`) with `size_bits` (the
    /// radix of a CNode, the size of a frame or untyped; ignored for fixed-size types), and
    /// put their capabilities in slots `dest_index .. dest_index + count` of the CNode
    /// `dest_cnode`, which must be empty. Objects are zeroed.
    /// Args: type, size_bits, dest_cnode, dest_index, count.
    UntypedRetype = 1, args 5;

    /// On a CNode: copy the capability at (`src_cnode`, `src_index`) into slot `dest_index`
    /// of this CNode, keeping only `rights`. Args: dest_index, src_cnode, src_index, rights.
    CNodeCopy = 10, args 4;
    /// As `CNodeCopy`, also giving an endpoint or notification capability a `badge`
    /// (nonzero; the source must be unbadged). Args: dest_index, src_cnode, src_index,
    /// rights, badge.
    CNodeMint = 11, args 5;
    /// Move a capability into slot `dest_index` of this CNode. Args: dest_index, src_cnode,
    /// src_index.
    CNodeMove = 12, args 3;
    /// Delete the capability in a slot of this CNode (destroying the object if it was the
    /// last capability to it). Args: index.
    CNodeDelete = 13, args 1;
    /// Delete every capability derived from the one in a slot of this CNode. Args: index.
    CNodeRevoke = 14, args 1;

    /// On a TCB: set its CSpace (a CNode CPtr), VSpace, IPC buffer (a 4 KiB Frame CPtr or
    /// NULL_CPTR, and the address it is mapped at), fault endpoint (an Endpoint CPtr or
    /// NULL_CPTR) and priority (at most the caller's own). Args: cspace, vspace,
    /// ipc_buffer_frame, ipc_buffer_vaddr, fault_endpoint, priority.
    TcbConfigure = 20, args 6;
    /// Args: priority (at most the caller's own).
    TcbSetPriority = 21, args 1;
    /// Results: pc, sp, spsr, x0, x1, x2, x3, x4, x5, x6 ... up to the requested count.
    /// Args: count of registers wanted (1 ..= 34 in the order pc, sp, spsr, x0..x30).
    TcbReadRegisters = 22, args 1;
    /// Args: pc, sp, x0, x1, x2, x3 (the length says how many are given, at least 2).
    TcbWriteRegisters = 23, args 2;
    /// Make a suspended thread runnable.
    TcbResume = 24, args 0;
    /// Stop a thread (it leaves any queue it waits in).
    TcbSuspend = 25, args 0;
    /// Set pc, sp and x0 and resume. Args: pc, sp, arg.
    TcbStart = 26, args 3;
    /// Bind a notification, so `Recv` on an endpoint also returns its signals.
    /// Args: notification.
    TcbBindNotification = 27, args 1;
    TcbUnbindNotification = 28, args 0;

    /// On a VSpace: install a PageTable as the table of `level` (1, 2 or 3) covering
    /// `vaddr`. Args: page_table, vaddr, level.
    VSpaceMapTable = 30, args 3;
    /// Unmap every page in [`vaddr`, `vaddr + size`). Args: vaddr, size.
    VSpaceUnmap = 31, args 2;
    /// Change the rights of every page mapped in the range to `flags` (`MapFlags` rights,
    /// no more than each mapping's capability allows). Args: vaddr, size, flags.
    VSpaceProtect = 32, args 3;
    /// Results: the physical address and `MapFlags` of the page mapped at `vaddr`, or
    /// `NotMapped`. Args: vaddr.
    VSpaceQuery = 33, args 1;

    /// On a PageTable: remove it from the VSpace it is installed in (pages mapped through it
    /// are unmapped).
    PageTableUnmap = 40, args 0;

    /// On a Frame: map `page_count` of its 4 KiB pages starting at `first_page` into
    /// `vspace` at `vaddr` with `flags` (`MapFlags`). Every page must be unmapped and its
    /// translation tables present. Args: vspace, vaddr, flags, first_page, page_count.
    FrameMap = 50, args 5;
    /// Unmap every mapping made through this capability.
    FrameUnmap = 51, args 0;
    /// Results: physical address, size in bytes.
    FramePhysAddr = 52, args 0;

    /// On IrqControl: make a handler capability for interrupt `intid` in slot `dest_index`
    /// of `dest_cnode`. Args: intid, dest_cnode, dest_index.
    IrqControlGet = 60, args 3;
    /// On an IrqHandler: signal this notification when the interrupt fires (the interrupt
    /// stays masked until `IrqHandlerAck`). Args: notification.
    IrqHandlerSetNotification = 61, args 1;
    /// Unmask the interrupt again after handling it.
    IrqHandlerAck = 62, args 0;
    /// Stop delivering the interrupt.
    IrqHandlerClear = 63, args 0;

    /// On a Timer: signal `notification` (a capability with WRITE) with `bits` (nonzero;
    /// OR-ed into its word as `Signal` would) at the first timer tick at which the tick
    /// count (`DebugTicks`) is at least `deadline` (absolute, in ticks since boot). A
    /// deadline not after the current tick count signals at once and leaves the timer
    /// disarmed. Arming an armed timer replaces its deadline, notification and bits. The
    /// timer disarms itself when it fires, and when the notification or the timer is
    /// destroyed. Args: notification, bits, deadline.
    TimerArm = 70, args 3;
    /// Disarm the timer (nothing happens if it is not armed). Results: 1 if it was armed, 0
    /// if not.
    TimerDisarm = 71, args 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for &i in Invocation::ALL {
            assert_eq!(Invocation::try_from(i as u64), Ok(i));
            assert!(i.args() <= crate::message::MAX_MRS);
        }
        assert!(Invocation::try_from(0).is_err());
        assert!(Invocation::try_from(u64::MAX).is_err());
    }
}
