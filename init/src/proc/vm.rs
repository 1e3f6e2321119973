//! init's side of the 200s requests to vm (`proto::Label`): one `Call` each on init's badged
//! capability to vm's endpoint.

use abi::message::NULL_CPTR;
use libmk::{Cap, Endpoint, Frame, Message, Reply, VSpace};
use proto::{Errno, Kill, Label, check_reply, prot};

/// vm as init calls it.
pub struct Vm {
    ep: Cap<Endpoint>,
}

impl Vm {
    pub const fn new(ep: Cap<Endpoint>) -> Self {
        Self { ep }
    }

    /// Sends `label` with `fields` (and the capability `cap` of init's CSpace, if any).
    fn call(&self, label: Label, fields: &[u64], cap: Option<u64>) -> Result<Reply, Errno> {
        let mut msg = Message::new(label as u64, fields);
        if let Some(cap) = cap {
            let buf = libmk::ipc_buffer().ok_or(Errno::EIO)?;
            buf.send_cap = cap;
            msg.info.caps = 1;
        }
        let reply = self.ep.call(&msg).map_err(Errno::from);
        if cap.is_some()
            && let Some(buf) = libmk::ipc_buffer()
        {
            buf.send_cap = NULL_CPTR;
        }
        let reply = reply?;
        check_reply(reply.mrs[0])?;
        Ok(reply)
    }

    pub fn new_space(&self, pid: u64, vspace: Cap<VSpace>) -> Result<(), Errno> {
        self.call(Label::NewSpace, &[pid], Some(vspace.cptr()))
            .map(drop)
    }

    pub fn set_name(&self, pid: u64, name: &str) -> Result<(), Errno> {
        let [a, b] = proto::name_to_words(name)?;
        self.call(Label::SetName, &[pid, a, b], None).map(drop)
    }

    /// A segment of an ELF file in the initrd: its bytes start `initrd_offset` bytes into
    /// the initrd.
    pub fn map_image(
        &self,
        pid: u64,
        seg: &kernel_core::elf::Segment,
        initrd_offset: u64,
    ) -> Result<(), Errno> {
        let p = prot::READ
            | if seg.writable { prot::WRITE } else { 0 }
            | if seg.executable { prot::EXEC } else { 0 };
        self.call(
            Label::MapImage,
            &[
                pid,
                seg.vaddr,
                seg.mem_size,
                initrd_offset,
                seg.file_size,
                p,
            ],
            None,
        )
        .map(drop)
    }

    pub fn map_anon(&self, pid: u64, vaddr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        self.call(Label::MapAnon, &[pid, vaddr, len, prot], None)
            .map(drop)
    }

    pub fn map_frame(
        &self,
        pid: u64,
        vaddr: u64,
        prot: u64,
        frame: Cap<Frame>,
    ) -> Result<(), Errno> {
        self.call(Label::MapFrame, &[pid, vaddr, prot], Some(frame.cptr()))
            .map(drop)
    }

    pub fn fork_space(&self, parent: u64, child: u64, vspace: Cap<VSpace>) -> Result<(), Errno> {
        self.call(Label::ForkSpace, &[parent, child], Some(vspace.cptr()))
            .map(drop)
    }

    pub fn reset(&self, pid: u64) -> Result<(), Errno> {
        self.call(Label::Reset, &[pid], None).map(drop)
    }

    pub fn destroy(&self, pid: u64) -> Result<(), Errno> {
        self.call(Label::Destroy, &[pid], None).map(drop)
    }

    /// The next kill record: pid, reason, address; `None` when there is none left.
    pub fn take_kill(&self) -> Result<Option<(u64, Kill, u64)>, Errno> {
        let r = self.call(Label::TakeKills, &[], None)?;
        if r.mrs[1] == 0 {
            return Ok(None);
        }
        let reason = Kill::try_from(r.mrs[2]).map_err(|_| Errno::EIO)?;
        Ok(Some((r.mrs[1], reason, r.mrs[3])))
    }
}
