//! init's side of the 200s requests to vm ([`proto::VmControl`]): one `Call` each on init's
//! badged capability to vm's endpoint.

use abi::message::NULL_CPTR;
use libmk::{Cap, Endpoint, Frame, VSpace};
use proto::object::Pager;
use proto::{Errno, KillRecord, Name, ReplyBody, VmControl, prot};

/// vm as init calls it.
pub struct Vm {
    ep: Cap<Endpoint>,
}

impl Vm {
    pub const fn new(ep: Cap<Endpoint>) -> Self {
        Self { ep }
    }

    /// Sends `req` (with the capability `cap` of init's CSpace when the request carries one)
    /// and returns its results.
    fn call<T: ReplyBody>(&self, req: VmControl, cap: Option<u64>) -> Result<T, Errno> {
        debug_assert_eq!(req.carries_cap(), cap.is_some());
        let mut msg = rt::ipc::message(&req.encode());
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
        proto::reply_result(rt::ipc::received(&reply?).mrs())
    }

    pub fn new_space(&self, pid: u64, vspace: Cap<VSpace>) -> Result<(), Errno> {
        self.call(VmControl::NewSpace { pid }, Some(vspace.cptr()))
    }

    /// A new instance of `pager` (restarted): `ep` is vm's capability to its endpoint.
    pub fn set_pager(&self, pager: Pager, ep: u64) -> Result<(), Errno> {
        self.call(VmControl::SetPager { pager }, Some(ep))
    }

    pub fn set_name(&self, pid: u64, name: Name) -> Result<(), Errno> {
        self.call(VmControl::SetName { pid, name }, None)
    }

    /// A segment of an ELF file in the initrd: its bytes start `initrd_offset` bytes into
    /// the initrd.
    pub fn map_image(
        &self,
        pid: u64,
        seg: &kernel_core::elf::Segment,
        initrd_offset: u64,
    ) -> Result<(), Errno> {
        let p = Self::seg_prot(seg);
        let req = VmControl::MapImage {
            pid,
            vaddr: seg.vaddr,
            mem_size: seg.mem_size,
            initrd_offset,
            file_size: seg.file_size,
            prot: p,
        };
        self.call(req, None)
    }

    /// The `prot` bits of a segment.
    pub fn seg_prot(seg: &kernel_core::elf::Segment) -> u64 {
        prot::READ
            | if seg.writable { prot::WRITE } else { 0 }
            | if seg.executable { prot::EXEC } else { 0 }
    }

    /// The file part of a segment on the disk as a private region of memory object
    /// `object` (`VmControl::MapObject`).
    #[expect(clippy::too_many_arguments, reason = "the request's fields, one each")]
    pub fn map_object(
        &self,
        pid: u64,
        vaddr: u64,
        file_size: u64,
        prot: u64,
        pager: Pager,
        handle: u64,
        offset: u64,
    ) -> Result<(), Errno> {
        let req = VmControl::MapObject {
            pid,
            vaddr,
            file_size,
            prot,
            pager,
            handle,
            offset,
        };
        self.call(req, None)
    }

    pub fn map_anon(&self, pid: u64, vaddr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        let req = VmControl::MapAnon {
            pid,
            vaddr,
            len,
            prot,
        };
        self.call(req, None)
    }

    pub fn map_frame(
        &self,
        pid: u64,
        vaddr: u64,
        prot: u64,
        frame: Cap<Frame>,
    ) -> Result<(), Errno> {
        let req = VmControl::MapFrame { pid, vaddr, prot };
        self.call(req, Some(frame.cptr()))
    }

    pub fn fork_space(&self, parent: u64, child: u64, vspace: Cap<VSpace>) -> Result<(), Errno> {
        let req = VmControl::ForkSpace { parent, child };
        self.call(req, Some(vspace.cptr()))
    }

    pub fn reset(&self, pid: u64) -> Result<(), Errno> {
        self.call(VmControl::Reset { pid }, None)
    }

    pub fn destroy(&self, pid: u64) -> Result<(), Errno> {
        self.call(VmControl::Destroy { pid }, None)
    }

    /// The next kill record; `None` when there is none left.
    pub fn take_kill(&self) -> Result<Option<KillRecord>, Errno> {
        self.call(VmControl::TakeKills, None)
    }
}
