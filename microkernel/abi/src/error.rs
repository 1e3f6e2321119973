//! Error codes returned by the kernel in `x0` (0 means success).

use core::fmt;

/// A kernel error. The numeric value is what user space sees in `x0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Error {
    /// The system call number (`x8`) names no system call.
    InvalidSyscall = 1,
    /// An argument is out of range or malformed.
    InvalidArgument = 2,
}

impl Error {
    /// The value placed in `x0`.
    pub const fn code(self) -> u64 {
        self as u64
    }
}

impl TryFrom<u64> for Error {
    type Error = u64;

    fn try_from(code: u64) -> Result<Self, u64> {
        match code {
            1 => Ok(Self::InvalidSyscall),
            2 => Ok(Self::InvalidArgument),
            other => Err(other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidSyscall => "invalid system call number",
            Self::InvalidArgument => "invalid argument",
        })
    }
}

/// Decodes the `x0` a system call returned: `Ok(())` for 0, the error otherwise. An unknown
/// nonzero code is reported as `InvalidArgument` rather than silently taken as success.
pub fn result_from_code(code: u64) -> Result<(), Error> {
    match code {
        0 => Ok(()),
        other => Err(Error::try_from(other).unwrap_or(Error::InvalidArgument)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for e in [Error::InvalidSyscall, Error::InvalidArgument] {
            assert_eq!(Error::try_from(e.code()), Ok(e));
            assert_eq!(result_from_code(e.code()), Err(e));
        }
        assert_eq!(result_from_code(0), Ok(()));
        assert_eq!(Error::try_from(0), Err(0));
        assert_eq!(Error::try_from(999), Err(999));
        assert_eq!(result_from_code(999), Err(Error::InvalidArgument));
    }
}
