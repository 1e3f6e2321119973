//! Protocol messages ([`proto::Wire`]) on the kernel's IPC: the first `REGISTER_MRS` words
//! travel in registers, the rest in the thread's IPC buffer.

use abi::message::REGISTER_MRS;
use libmk::{Cap, Endpoint, Message, Reply};
use proto::{Errno, MAX_WORDS, ReplyBody, Wire};

/// The message that sends `w` (words past the registers go to the IPC buffer; without one
/// they are left off, and the receiver finds the message short).
pub fn message<const N: usize>(w: &Wire<N>) -> Message {
    let words = w.mrs();
    let (regs, rest) = words.split_at(words.len().min(REGISTER_MRS));
    let mut m = Message::new(w.label(), regs);
    if !rest.is_empty()
        && let Some(buf) = libmk::ipc_buffer()
    {
        for (i, &word) in rest.iter().enumerate() {
            buf.mrs[REGISTER_MRS + i] = word;
        }
        m.info.length = words.len();
    }
    m
}

/// The message `r` carries: its label and its words (at most [`MAX_WORDS`]).
pub fn received(r: &Reply) -> Wire {
    let info = r.info();
    let mut w = Wire::new(info.label);
    for i in 0..info.length.min(MAX_WORDS) {
        let word = match r.mrs.get(i) {
            Some(&word) => word,
            None => libmk::ipc_buffer().map_or(0, |b| b.mrs[i]),
        };
        w.push(word);
    }
    w
}

/// What a failed `Call` to a server means to its client: a capability that is gone
/// (`InvalidCapability`: the server's endpoint was revoked) or a server that died while
/// the call waited (`ObjectDeleted`) is `ENODEV`, no server to answer.
pub fn call_error(e: abi::Error) -> Errno {
    match e {
        abi::Error::InvalidCapability | abi::Error::ObjectDeleted => Errno::ENODEV,
        other => other.into(),
    }
}

/// The bytes a file-protocol `Write` of `len` bytes carries from MR6 on (`proto::file`),
/// received in a message of `length` words, unpacked into `out`: `EINVAL` when the message
/// is too short for them, `EIO` without an IPC buffer. Servers share this (file and shm).
pub fn write_data(length: usize, len: usize, out: &mut [u8]) -> Result<(), Errno> {
    use proto::file::{READ_DATA_MR, unpack_data};
    let buf = libmk::ipc_buffer().ok_or(Errno::EIO)?;
    if length < READ_DATA_MR + len.div_ceil(8) || out.len() < len {
        return Err(Errno::EINVAL);
    }
    unpack_data(
        &buf.mrs[READ_DATA_MR..abi::message::MAX_MRS],
        &mut out[..len],
    );
    Ok(())
}

/// Sends request `w` to `to` and waits for the reply's results.
pub fn call<T: ReplyBody, const N: usize>(to: Cap<Endpoint>, w: &Wire<N>) -> Result<T, Errno> {
    let reply = to.call(&message(w)).map_err(call_error)?;
    let length = reply.info().length;
    if length <= reply.mrs.len() {
        // Short replies are read where they are, in the registers.
        proto::reply_result(&reply.mrs[..length])
    } else {
        proto::reply_result(received(&reply).mrs())
    }
}

/// A capability to a server's endpoint, as its clients hold it: the client calls every
/// interface declaration makes (`proto::interface!`, e.g. `FileRequest::close(&server, fd)`)
/// go through it, a `Call` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client(pub Cap<Endpoint>);

impl Client {
    /// The capability in slot `cptr` of the caller's CSpace.
    pub const fn at(cptr: u64) -> Self {
        Self(Cap::from_cptr(cptr))
    }
}

impl proto::Transport for Client {
    fn call<T: ReplyBody, const N: usize>(&self, request: &Wire<N>) -> Result<T, Errno> {
        call(self.0, request)
    }
}
