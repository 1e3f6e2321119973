//! The tool's one error type: a message, and whether the caller asked for something invalid.

use std::fmt;

/// Why a command stopped. The message is complete: `main` prints it as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A bad command line or environment variable (exit status 2).
    Usage(String),
    /// Something went wrong while doing the work: a build, a file, QEMU (exit status 1).
    Failed(String),
}

impl Error {
    /// The process exit status that reports this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Failed(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) | Error::Failed(msg) => f.write_str(msg),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A failure with a message.
pub fn failed(msg: impl Into<String>) -> Error {
    Error::Failed(msg.into())
}

/// A failed file operation, naming what was being done to which path.
pub fn io_failed(action: &str, path: &std::path::Path, err: std::io::Error) -> Error {
    Error::Failed(format!("cannot {action} {}: {err}", path.display()))
}
