//! The shared-memory server's messages: tasks' requests to `shm` (the 700s) and their results.
//!
//! POSIX shared memory objects: `shm_open` names one (`/name`, up to [`Name::MAX`] bytes
//! with the slash, no other slash), `ftruncate` sets its size (objects start at 0; growing
//! adds pages that read as zero), `fstat` reads it, `shm_unlink` removes the name (the object
//! lives on while a descriptor or a mapping holds it), `close` drops a descriptor. Mapping
//! goes through the memory-object protocol (`crate::object`): `GetObject` on a descriptor,
//! then `MmapObject` to vm, which asks `shm` for the 64 KiB blocks (`ObjectPage`).
//!
//! vm also makes `MAP_SHARED | MAP_ANONYMOUS` memory an object of `shm`'s: an anonymous
//! object, with no name and no descriptor, created by vm alone ([`ShmRequest::CreateAnon`])
//! and held only by the handle it returns, so that it goes with vm's `ObjectRelease`.
//!
//! `read`, `write`, `lseek` and `fstat` of a shm descriptor are the file protocol's
//! messages (`crate::file::FileRequest`'s `Read`, `Write`, `Lseek`, `Fstat`), sent to the shm
//! server: the object's bytes travel in the message registers, as a file's do.
//!
//! Descriptors are per task (the badge is the pid) and numbered from [`FIRST_FD`], a range
//! the file server (numbering from 3, a few dozen at most) never reaches: the runtime tells
//! which server owns a descriptor by its number alone ([`owns_fd`]), with no table to keep
//! across `fork` or `exec`.

use crate::wire::{Name, ReplyBody, Wire};
use crate::{Label, ProtoError};

/// The first descriptor number the shm server hands out.
pub const FIRST_FD: u64 = 1 << 16;
/// How many descriptor numbers it may use (`EMFILE` after that).
pub const FD_COUNT: u64 = 1 << 16;

/// Whether descriptor `fd` is a shm server's (else it is the file server's).
pub const fn owns_fd(fd: u64) -> bool {
    fd >= FIRST_FD && fd - FIRST_FD < FD_COUNT
}

/// Whether `name` is a shm object's name as POSIX defines a portable one: a `/` followed
/// by at least one byte, and no other `/`.
pub fn valid_name(name: &Name) -> bool {
    match name.as_bytes().split_first() {
        Some((b'/', rest)) => !rest.is_empty() && !rest.contains(&b'/'),
        _ => false,
    }
}

/// `mode` bits the server honours: the owner's read and write permission (there is one
/// user, so the group's and others' bits are kept but never consulted).
pub mod mode {
    pub const OWNER_READ: u64 = 0o400;
    pub const OWNER_WRITE: u64 = 0o200;
    /// Every permission bit `shm_open` keeps.
    pub const MASK: u64 = 0o777;
}

crate::interface! {
    /// A task's request to the shm server, badged with the task's pid. Descriptors belong to
    /// the task that opened them: another task's number is `EBADF`. A name that is not a
    /// [`Name`] is `BadField` (its `/` form is the server's to check: `EINVAL`).
    pub enum ShmRequest {
        /// `shm_open(name, flags, mode)` ([`crate::file::open_flags`]: `RDONLY` or `RDWR`,
        /// `CREAT`, `EXCL`, `TRUNC`) → [`crate::OpenReply`] (descriptor, size). `EINVAL` for a
        /// name that is not `/name` or for `WRONLY`, `ENOENT` if it does not exist and `CREAT`
        /// is not given, `EEXIST` if it exists and `CREAT | EXCL` is given, `EACCES` if the
        /// object's `mode` forbids the access (or `TRUNC` without write permission), `EMFILE`
        /// or `ENOMEM` when a table is full.
        Open { flags: u64, mode: u64, name: Name } = Label::ShmOpen
            => fn open -> crate::OpenReply;
        /// `ftruncate(fd, size)`: growing adds zero bytes, shrinking frees whole blocks past the
        /// end and takes them from every mapping (a later access there is `BUS`). `EINVAL` for a
        /// descriptor opened read-only, `EFBIG` beyond the server's limit.
        Truncate { fd: u64, size: u64 } = Label::ShmTruncate => fn truncate -> ();
        /// `fstat(fd)` → the size in bytes (`u64`).
        Stat { fd: u64 } = Label::ShmStat => fn stat -> u64;
        /// `shm_unlink(name)`: the name goes at once; the object when its last descriptor and
        /// mapping do. `ENOENT` if there is no such name.
        Unlink { name: Name } = Label::ShmUnlink => fn unlink -> ();
        /// `close(fd)`.
        Close { fd: u64 } = Label::ShmClose => fn close -> ();
        /// vm only (badge `pid::VM`; `EPERM` from anyone else): a new anonymous object of `size`
        /// bytes (zero on first touch) for a `MAP_SHARED | MAP_ANONYMOUS` mapping →
        /// [`AnonObject`]: its handle for the memory-object protocol (vm's, claimed, writable)
        /// and the object. It has no name and no descriptor: the handle is its only holder, and
        /// `ObjectRelease` frees it. `EFBIG` beyond the server's limit.
        CreateAnon { size: u64 } = Label::ShmCreateAnon => fn create_anon -> AnonObject;
    }
}

/// `CreateAnon`'s result: MR1 = the handle, MR2 = the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnonObject {
    pub handle: u64,
    pub object: u64,
}

impl ReplyBody for AnonObject {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.handle);
        w.push(self.object);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        match *w {
            [handle, object, ..] => Ok(Self { handle, object }),
            _ => Err(ProtoError::Short),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{OpenReply, open_flags};
    use crate::{Errno, decode_reply, encode_reply};

    fn name(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    #[test]
    fn requests_round_trip() {
        for r in [
            ShmRequest::Open {
                name: name("/shm1"),
                flags: open_flags::CREAT | open_flags::EXCL | open_flags::RDWR,
                mode: 0o600,
            },
            ShmRequest::Truncate {
                fd: FIRST_FD,
                size: 4096,
            },
            ShmRequest::Stat { fd: FIRST_FD + 1 },
            ShmRequest::Unlink {
                name: name("/sixteen-bytes-x"),
            },
            ShmRequest::Close { fd: 7 },
            ShmRequest::CreateAnon { size: 0x3000 },
        ] {
            let w = r.encode();
            assert!(w.mrs().len() <= 6);
            assert_eq!(ShmRequest::decode(w.label(), w.mrs()), Ok(r));
        }
        assert_eq!(
            ShmRequest::decode(Label::ShmTruncate as u64, &[1]),
            Err(ProtoError::Short)
        );
        assert_eq!(
            ShmRequest::decode(Label::ShmUnlink as u64, &[0, 0]),
            Err(ProtoError::BadField)
        );
        assert_eq!(
            ShmRequest::decode(Label::Open as u64, &[0; 6]),
            Err(ProtoError::UnknownLabel(Label::Open as u64))
        );
    }

    #[test]
    fn wire_form() {
        let w = ShmRequest::Open {
            name: name("/shm1"),
            flags: 0o302,
            mode: 0o600,
        }
        .encode();
        assert_eq!(
            (w.label(), w.mrs()),
            (
                700,
                &[0o302, 0o600, u64::from_le_bytes(*b"/shm1\0\0\0"), 0][..]
            )
        );
        let open = OpenReply {
            fd: FIRST_FD,
            size: 0,
        };
        let w = encode_reply(&Ok(open));
        assert_eq!(decode_reply::<OpenReply>(w.mrs()), Ok(Ok(open)));
        let w = encode_reply::<u64>(&Err(Errno::EEXIST));
        assert_eq!(w.mrs(), &[17]);
        let anon = AnonObject {
            handle: 3,
            object: 9,
        };
        let w = encode_reply(&Ok(anon));
        assert_eq!(w.mrs(), &[0, 3, 9]);
        assert_eq!(decode_reply::<AnonObject>(w.mrs()), Ok(Ok(anon)));
        assert_eq!(decode_reply::<AnonObject>(&[0, 3]), Err(ProtoError::Short));
    }

    #[test]
    fn names() {
        for good in ["/shm1", "/a", "/sixteen-bytes-x", "/é"] {
            assert!(valid_name(&name(good)), "{good}");
        }
        for bad in ["shm1", "/", "/a/b", "//", "a/"] {
            assert!(!valid_name(&name(bad)), "{bad}");
        }
    }

    #[test]
    fn descriptor_ranges() {
        assert!(!owns_fd(0));
        assert!(!owns_fd(3));
        assert!(!owns_fd(FIRST_FD - 1));
        assert!(owns_fd(FIRST_FD));
        assert!(owns_fd(FIRST_FD + FD_COUNT - 1));
        assert!(!owns_fd(FIRST_FD + FD_COUNT));
        assert!(!owns_fd(u64::MAX));
    }
}
