//! init's side of the 200s requests to vm ([`proto::VmControl`]): one `Call` each on init's
//! badged capability to vm's endpoint.

use abi::message::NULL_CPTR;
use libmk::{Cap, Endpoint, Frame, VSpace};
use proto::object::Pager;
use proto::{Errno, ReplyBody, VmControl, prot};

/// vm as init calls it.
pub struct Vm {
    ep: Cap<Endpoint>,
}

impl Vm {
    pub const fn new(ep: Cap<Endpoint>) -> Self {
        Self { ep }
    }

    /// Sends `req`, a request that carries a capability (`cap`, of init's CSpace), and
    /// returns its results. The others go through the declaration's client calls
    /// (`VmControl::destroy(&vm, pid)`: `Vm` is their transport).
    fn call_with_cap<T: ReplyBody>(&self, req: VmControl, cap: u64) -> Result<T, Errno> {
        debug_assert!(req.carries_cap());
        let cap = Some(cap);
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
        self.call_with_cap(VmControl::NewSpace { pid }, vspace.cptr())
    }

    /// A new instance of `pager` (restarted): `ep` is vm's capability to its endpoint.
    pub fn set_pager(&self, pager: Pager, ep: u64) -> Result<(), Errno> {
        self.call_with_cap(VmControl::SetPager { pager }, ep)
    }

    /// A segment of an ELF file in the initrd: its bytes start `initrd_offset` bytes into
    /// the initrd.
    pub fn map_image(
        &self,
        pid: u64,
        seg: &kernel_core::elf::Segment,
        initrd_offset: u64,
    ) -> Result<(), Errno> {
        VmControl::map_image(
            self,
            pid,
            seg.vaddr,
            seg.mem_size,
            initrd_offset,
            seg.file_size,
            Self::seg_prot(seg),
        )
    }

    /// The `prot` bits of a segment.
    pub fn seg_prot(seg: &kernel_core::elf::Segment) -> u64 {
        prot::READ
            | if seg.writable { prot::WRITE } else { 0 }
            | if seg.executable { prot::EXEC } else { 0 }
    }

    pub fn map_frame(
        &self,
        pid: u64,
        vaddr: u64,
        prot: u64,
        frame: Cap<Frame>,
    ) -> Result<(), Errno> {
        let req = VmControl::MapFrame { pid, vaddr, prot };
        self.call_with_cap(req, frame.cptr())
    }

    pub fn fork_space(&self, parent: u64, child: u64, vspace: Cap<VSpace>) -> Result<(), Errno> {
        let req = VmControl::ForkSpace { parent, child };
        self.call_with_cap(req, vspace.cptr())
    }
}

/// init's requests that carry no capability: the declaration's client calls on `Vm`.
impl proto::Transport for Vm {
    fn call<T: ReplyBody, const N: usize>(&self, request: &proto::Wire<N>) -> Result<T, Errno> {
        rt::ipc::call(self.ep, request)
    }
}
