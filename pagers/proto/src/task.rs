//! init's notices to the servers that keep per-task state (the file and shm servers'
//! descriptors), the shutdown sync, and the descriptor count any task may ask for.
//!
//! Descriptors belong to the process server's idea of a task, but live in the servers that
//! made them; init tells those servers when a task ends (`TaskExit`: drop its descriptors as
//! `close` would, flushing what the last close flushes) and when one forks (`TaskFork`: the
//! child gets a copy of each of the parent's descriptors, as POSIX `fork` has it). Before
//! it powers the machine off, init asks the file server to write back every dirty block
//! (`SyncAll`). The servers accept these from init only (badge `pid::INIT`; others get
//! `EPERM`). `exec` keeps a task's descriptors but its close-on-exec ones (`TaskExec`: the
//! file server's opened `O_CLOEXEC`, and every shm descriptor, which POSIX `shm_open`
//! makes close-on-exec).

use crate::wire::{ReplyBody, Wire};
use crate::{Label, ProtoError};

crate::interface! {
    /// init's requests to the file and shm servers, and the descriptor count. A fork onto
    /// itself is `BadField`.
    pub enum ServerControl {
        /// Task `pid` ended (exit or kill): drop its descriptors.
        TaskExit { pid: u64 } = Label::TaskExit => fn task_exit -> ();
        /// Task `child` is a fork of `parent`: give it a copy of each of the parent's
        /// descriptors, with the same numbers.
        TaskFork { parent: u64, child: u64 } = Label::TaskFork
            => fn task_fork -> (), if parent != child;
        /// Task `pid` replaced its program (`exec`, past the point of no return): drop its
        /// close-on-exec descriptors as `close` would.
        TaskExec { pid: u64 } = Label::TaskExec => fn task_exec -> ();
        /// Write every dirty block back to the disk (file server; shm answers at once).
        SyncAll = Label::SyncAll => fn sync_all -> ();
        /// → [`DescriptorCount`]: from any task.
        Descriptors = Label::Descriptors => fn descriptors -> DescriptorCount;
    }
}

impl ServerControl {
    /// Whether only init may send it.
    pub const fn init_only(&self) -> bool {
        !matches!(self, Self::Descriptors)
    }
}

/// `Descriptors`' result: descriptors open over all tasks, and objects open (files the
/// server holds open for a descriptor or a mapping; shm objects alive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DescriptorCount {
    pub fds: u64,
    pub objects: u64,
}

impl ReplyBody for DescriptorCount {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.fds);
        w.push(self.objects);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[fds, objects]) = w.first_chunk::<2>() else {
            return Err(ProtoError::Short);
        };
        Ok(Self { fds, objects })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_reply, encode_reply};

    #[test]
    fn server_control_round_trips() {
        for r in [
            ServerControl::TaskExit { pid: 12 },
            ServerControl::TaskFork {
                parent: 10,
                child: 11,
            },
            ServerControl::TaskExec { pid: 12 },
            ServerControl::SyncAll,
            ServerControl::Descriptors,
        ] {
            let w = r.encode();
            assert_eq!(ServerControl::decode(w.label(), w.mrs()), Ok(r));
        }
        assert!(ServerControl::Descriptors.encode().mrs().is_empty());
        assert!(!ServerControl::Descriptors.init_only());
        assert!(ServerControl::SyncAll.init_only());
    }

    #[test]
    fn server_control_rejects() {
        assert_eq!(
            ServerControl::decode(Label::TaskFork as u64, &[3, 3]),
            Err(ProtoError::BadField)
        );
        assert_eq!(
            ServerControl::decode(Label::TaskFork as u64, &[3]),
            Err(ProtoError::Short)
        );
        assert_eq!(
            ServerControl::decode(Label::TaskExit as u64, &[]),
            Err(ProtoError::Short)
        );
        assert!(matches!(
            ServerControl::decode(Label::Open as u64, &[0; 6]),
            Err(ProtoError::UnknownLabel(_))
        ));
    }

    #[test]
    fn descriptor_count_reply_round_trips() {
        let c = DescriptorCount { fds: 4, objects: 2 };
        let w = encode_reply(&Ok(c));
        assert_eq!(decode_reply::<DescriptorCount>(w.mrs()), Ok(Ok(c)));
        assert!(decode_reply::<DescriptorCount>(&[0, 1]).is_err());
    }
}
