//! System call numbers and the register convention.
//!
//! A system call is `svc #0` with the number in `x8`:
//!
//! | register | on entry | on return |
//! |---|---|---|
//! | `x0` | capability address (CPtr) the call names | 0 or an [`Error`](crate::Error) code |
//! | `x1` | [`MsgInfo`](crate::message::MsgInfo) | `MsgInfo` of what was received / the results |
//! | `x2`..`x7` | message registers MR0..MR5 | received MR0..MR5 / results |
//! | `x8` | system call number | badge of the received message (receives only) |
//!
//! Message registers past MR5 live in the thread's IPC buffer
//! ([`IpcBuffer`](crate::message::IpcBuffer)). Every other register is preserved.
//! The debug calls use their own simpler layout, described on each.

/// Bytes of text one `DebugPutStr` call carries, packed little-endian into `x2`..`x7`.
pub const PUTSTR_MAX: usize = 48;

/// The registers that carry `DebugPutStr` text.
pub const PUTSTR_REGS: usize = PUTSTR_MAX / 8;

crate::numbered! {
    /// A system call number.
    pub enum Syscall {
        /// Print text on the kernel console. `x0` = a [`Console`](crate::object::CapType)
        /// capability, `x1` = length (at most [`PUTSTR_MAX`]), `x2`..`x7` = the bytes. The
        /// kernel never reads user memory for this. `InvalidCapability` without the right.
        DebugPutStr = 1,
        /// Power the machine off (PSCI `SYSTEM_OFF`). `x0` = a
        /// [`PowerControl`](crate::object::CapType) capability. Does not return, unless the
        /// capability is missing (`InvalidCapability`).
        DebugPowerOff = 2,
        /// Returns in `x1` the number of timer ticks since boot and in `x2` the tick rate in Hz.
        DebugTicks = 3,
        /// Returns in `x1` the [`CapType`](crate::object::CapType) of the capability at `x0`
        /// (0 for an empty slot); `x0` = error if the address is out of range.
        DebugCapType = 4,
        /// Returns in `x1` the number of kernel entries so far and in `x2` the number of
        /// address-space switches (for benchmarks).
        DebugCounters = 5,

        /// Send a message through the endpoint at `x0`; blocks until a receiver takes it.
        Send = 10,
        /// As `Send`, but returns `WouldBlock` instead of blocking.
        NBSend = 11,
        /// Send, then wait for the reply on the same endpoint's receiver (one kernel entry).
        Call = 12,
        /// Wait for a message on the endpoint at `x0`, or for a signal on the notification at
        /// `x0`, or on the notification bound to this thread.
        Recv = 13,
        /// As `Recv`, but returns `WouldBlock` instead of blocking.
        NBRecv = 14,
        /// Reply to the thread whose `Call` (or fault) this thread received last.
        Reply = 15,
        /// `Reply`, then `Recv` on `x0`, in one kernel entry.
        ReplyRecv = 16,
        /// Give up the rest of this time slice to threads of the same priority.
        Yield = 17,
        /// Signal the notification at `x0` with its badge.
        Signal = 18,
        /// Wait on the notification at `x0`; returns its word in `x8` (the badge position) and
        /// clears it.
        Wait = 19,
        /// As `Wait`, but returns `WouldBlock` when no bit is set.
        Poll = 20,
        /// Move this thread's pending reply target (the thread whose `Call` or fault it
        /// received last and has not answered) into the empty slot at `x0` of its CSpace, as
        /// a [`Reply`](crate::object::CapType) capability. The thread then owes no reply
        /// (`Reply` returns `NoReplyTarget`) and may receive the next call; `Send` (or
        /// `NBSend`) on the capability later delivers the reply exactly as `Reply` would have,
        /// fault replies and map items included, and empties the slot. Errors:
        /// `NoReplyTarget` (nothing pending), `SlotOccupied`, `InvalidCapability` (`x0` out
        /// of range).
        SaveCaller = 21,

        /// Invoke an operation on the capability at `x0`: `x1` = `MsgInfo` whose label is an
        /// [`Invocation`](crate::invocation::Invocation), arguments in MR0.. Results in MR0..,
        /// their count in the returned `MsgInfo`'s length.
        Invoke = 30,
    }
}

/// Packs up to [`PUTSTR_MAX`] bytes into the registers `DebugPutStr` takes.
pub fn pack_putstr(bytes: &[u8]) -> [u64; PUTSTR_REGS] {
    let mut regs = [0u64; PUTSTR_REGS];
    for (i, &b) in bytes.iter().take(PUTSTR_MAX).enumerate() {
        regs[i / 8] |= u64::from(b) << ((i % 8) * 8);
    }
    regs
}

/// Unpacks `len` bytes from the `DebugPutStr` registers; `None` if `len` is too large.
pub fn unpack_putstr(len: u64, regs: &[u64; PUTSTR_REGS]) -> Option<([u8; PUTSTR_MAX], usize)> {
    let len = usize::try_from(len).ok().filter(|&l| l <= PUTSTR_MAX)?;
    let mut out = [0u8; PUTSTR_MAX];
    for (i, byte) in out.iter_mut().enumerate().take(len) {
        *byte = (regs[i / 8] >> ((i % 8) * 8)) as u8;
    }
    Some((out, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for n in 0..64 {
            if let Ok(s) = Syscall::try_from(n) {
                assert_eq!(s as u64, n);
            }
        }
        assert_eq!(Syscall::try_from(30), Ok(Syscall::Invoke));
        assert_eq!(Syscall::try_from(0), Err(0));
        assert_eq!(Syscall::try_from(u64::MAX), Err(u64::MAX));
    }

    #[test]
    fn putstr_packing_round_trips() {
        let text = b"hello from user space, forty-eight bytes long!!!";
        assert_eq!(text.len(), PUTSTR_MAX);
        let regs = pack_putstr(text);
        let (bytes, len) = unpack_putstr(text.len() as u64, &regs).unwrap();
        assert_eq!(&bytes[..len], text);
        let (bytes, len) = unpack_putstr(5, &regs).unwrap();
        assert_eq!(&bytes[..len], b"hello");
        assert!(unpack_putstr(49, &regs).is_none());
        assert!(unpack_putstr(u64::MAX, &regs).is_none());
    }
}
