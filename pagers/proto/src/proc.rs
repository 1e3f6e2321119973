//! The process server's messages: tasks' requests to init (the 400s) and their results.

use crate::wire::{Name, ReplyBody, Wire, fields};
use crate::{Label, ProtoError, WaitStatus};

/// A task's request to init, badged with the task's pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcRequest {
    /// Start program `name` from the initrd as a child → its pid (`u64`).
    Spawn { name: Name },
    /// Copy the caller; the child starts at `pc` with `sp` and x0 = 0 (the runtime's fork
    /// trampoline) → the child's pid (`u64`).
    Fork { sp: u64, pc: u64 },
    /// Replace the caller's image with program `name`: no reply on success.
    Exec { name: Name },
    /// End the caller: no reply. The status travels as its two's complement bits.
    Exit { status: i32 },
    /// Child `pid` (0: any child) that has ended → [`WaitReply`]. Never blocks in init:
    /// `EAGAIN` when children exist but none has ended (the runtime then waits on
    /// `task_slots::CHILD_NOTIFY` and asks again), `ECHILD` when there are none.
    Wait { pid: u64 },
    /// End task `pid`.
    Kill { pid: u64 },
    /// → [`GetPidReply`].
    GetPid,
    /// End the session and power the machine off: init ends every task, has the file server
    /// write everything back, and powers off. Only the program init started for the session
    /// (`run=`) may ask (`EPERM` for anyone else); no reply on success.
    PowerOff,
}

impl ProcRequest {
    pub fn encode(&self) -> Wire {
        match *self {
            Self::Spawn { name } => Wire::request(Label::Spawn, &name.to_words()),
            Self::Fork { sp, pc } => Wire::request(Label::Fork, &[sp, pc]),
            Self::Exec { name } => Wire::request(Label::Exec, &name.to_words()),
            Self::Exit { status } => Wire::request(Label::Exit, &[i64::from(status) as u64]),
            Self::Wait { pid } => Wire::request(Label::Wait, &[pid]),
            Self::Kill { pid } => Wire::request(Label::Kill, &[pid]),
            Self::GetPid => Wire::request(Label::GetPid, &[]),
            Self::PowerOff => Wire::request(Label::PowerOff, &[]),
        }
    }

    /// `UnknownLabel` for any label that is not a task's request to init; `BadField` for a
    /// name that is not one, or a status that is not a sign-extended `i32`.
    pub fn decode(label: u64, mrs: &[u64]) -> Result<Self, ProtoError> {
        let l = Label::try_from(label).map_err(ProtoError::UnknownLabel)?;
        Ok(match l {
            Label::Spawn => Self::Spawn {
                name: Name::from_words(fields(l, mrs)?)?,
            },
            Label::Fork => {
                let [sp, pc] = fields(l, mrs)?;
                Self::Fork { sp, pc }
            }
            Label::Exec => Self::Exec {
                name: Name::from_words(fields(l, mrs)?)?,
            },
            Label::Exit => {
                let [status] = fields(l, mrs)?;
                Self::Exit {
                    status: i32::try_from(status as i64).map_err(|_| ProtoError::BadField)?,
                }
            }
            Label::Wait => {
                let [pid] = fields(l, mrs)?;
                Self::Wait { pid }
            }
            Label::Kill => {
                let [pid] = fields(l, mrs)?;
                Self::Kill { pid }
            }
            Label::GetPid => Self::GetPid,
            Label::PowerOff => Self::PowerOff,
            _ => return Err(ProtoError::UnknownLabel(label)),
        })
    }
}

/// `Wait`'s result: which child ended, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitReply {
    pub pid: u64,
    pub how: WaitStatus,
    /// The exit status (two's complement bits) for `Exited`, the fault address for `Segv`
    /// and `Bus`, 0 for `Killed`.
    pub value: u64,
}

/// MR1 = pid, MR2 = [`WaitStatus`], MR3 = value.
impl ReplyBody for WaitReply {
    fn encode_body(&self, w: &mut Wire) {
        for word in [self.pid, self.how as u64, self.value] {
            w.push(word);
        }
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[pid, how, value]) = w.first_chunk::<3>() else {
            return Err(ProtoError::Short);
        };
        let how = WaitStatus::try_from(how).map_err(|_| ProtoError::BadField)?;
        Ok(Self { pid, how, value })
    }
}

/// `GetPid`'s result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetPidReply {
    pub pid: u64,
    /// init's pid when the parent has ended.
    pub parent: u64,
}

/// MR1 = pid, MR2 = parent pid.
impl ReplyBody for GetPidReply {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.pid);
        w.push(self.parent);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[pid, parent]) = w.first_chunk::<2>() else {
            return Err(ProtoError::Short);
        };
        Ok(Self { pid, parent })
    }
}
