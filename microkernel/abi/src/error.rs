//! Error codes returned by the kernel in `x0` (0 means success).

use core::fmt;

macro_rules! errors {
    ($($(#[$doc:meta])* $name:ident = $value:literal => $text:literal,)*) => {
        /// A kernel error. The numeric value is what user space sees in `x0`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u64)]
        pub enum Error {
            $($(#[$doc])* $name = $value,)*
        }

        impl Error {
            /// Every error, for tests and tables.
            pub const ALL: &'static [Error] = &[$(Error::$name,)*];
        }

        impl TryFrom<u64> for Error {
            type Error = u64;

            fn try_from(code: u64) -> Result<Self, u64> {
                match code {
                    $($value => Ok(Self::$name),)*
                    other => Err(other),
                }
            }
        }

        impl fmt::Display for Error {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $(Self::$name => $text,)*
                })
            }
        }
    };
}

errors! {
    /// The system call number (`x8`) names no system call.
    InvalidSyscall = 1 => "invalid system call number",
    /// An argument is out of range or malformed.
    InvalidArgument = 2 => "invalid argument",
    /// A capability address is out of range, the slot is empty, or the capability has the
    /// wrong type for the operation.
    InvalidCapability = 3 => "invalid capability",
    /// The invocation label names no operation of this capability type.
    IllegalOperation = 4 => "illegal operation",
    /// The capability lacks a right the operation needs.
    InsufficientRights = 5 => "insufficient rights",
    /// An address or size is not aligned as the operation requires.
    AlignmentError = 6 => "alignment error",
    /// A number is outside the range the operation accepts.
    RangeError = 7 => "range error",
    /// The destination slot is not empty.
    SlotOccupied = 8 => "destination slot occupied",
    /// The untyped memory has no room for the objects.
    NotEnoughMemory = 9 => "not enough memory",
    /// The object still has derived capabilities or is in use; revoke or unmap first.
    RevokeFirst = 10 => "revoke first",
    /// A translation table needed for the mapping is missing.
    FailedLookup = 11 => "failed lookup (missing translation table)",
    /// Something is already mapped there.
    AlreadyMapped = 12 => "already mapped",
    /// Nothing is mapped there.
    NotMapped = 13 => "not mapped",
    /// A non-blocking call found no partner.
    WouldBlock = 14 => "would block",
    /// There is no caller to reply to.
    NoReplyTarget = 15 => "no reply target",
    /// The thread or object the call waited on was deleted.
    ObjectDeleted = 16 => "object deleted",
}

impl Error {
    /// The value placed in `x0`.
    pub const fn code(self) -> u64 {
        self as u64
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
        for &e in Error::ALL {
            assert_eq!(Error::try_from(e.code()), Ok(e));
            assert_eq!(result_from_code(e.code()), Err(e));
            assert!(e.code() != 0);
        }
        assert_eq!(result_from_code(0), Ok(()));
        assert_eq!(Error::try_from(0), Err(0));
        assert_eq!(Error::try_from(999), Err(999));
        assert_eq!(result_from_code(999), Err(Error::InvalidArgument));
    }
}
