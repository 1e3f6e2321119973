//! System call numbers and the register convention.
//!
//! A system call is `svc #0` with the number in `x8` and arguments in `x0`..`x6`. On return
//! `x0` holds 0 or an [`Error`](crate::Error) code and `x1`.. hold results; every other
//! register is preserved.

/// Bytes of text one `DebugPutStr` call carries, packed little-endian into `x1`..`x6`.
pub const PUTSTR_MAX: usize = 48;

/// The registers that carry `DebugPutStr` text.
pub const PUTSTR_REGS: usize = PUTSTR_MAX / 8;

/// A system call number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Syscall {
    /// Print text on the kernel console. `x0` = length (at most [`PUTSTR_MAX`]), `x1`..`x6`
    /// = the bytes. The kernel never reads user memory for this.
    DebugPutStr = 1,
    /// Power the machine off (PSCI `SYSTEM_OFF`). Does not return.
    DebugPowerOff = 2,
    /// Returns in `x1` the number of timer ticks since boot and in `x2` the tick rate in Hz.
    DebugTicks = 3,
}

impl TryFrom<u64> for Syscall {
    type Error = u64;

    fn try_from(number: u64) -> Result<Self, u64> {
        match number {
            1 => Ok(Self::DebugPutStr),
            2 => Ok(Self::DebugPowerOff),
            3 => Ok(Self::DebugTicks),
            other => Err(other),
        }
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
        for s in [
            Syscall::DebugPutStr,
            Syscall::DebugPowerOff,
            Syscall::DebugTicks,
        ] {
            assert_eq!(Syscall::try_from(s as u64), Ok(s));
        }
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
