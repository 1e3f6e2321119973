//! The zero server: hands vm zeroed 2 MiB frames ("chunks"), one per `GetChunk`, retyped
//! from its untyped budget (the kernel zeroes every frame it makes). zero keeps the
//! original capability of each chunk (vm gets a copy, a child of it), so that a chunk can
//! be revoked later.
#![no_std]
#![no_main]

use abi::Error;
use abi::message::NULL_CPTR;
use abi::object::ObjectType;
use libmk::{CNode, Cap, Endpoint, Message, Untyped};
use proto::startup::{Startup, zero_slots};
use proto::{Errno, ZeroRequest};
use rt::println;

rt::server_entry!(main);

/// log2 of a chunk's size.
const CHUNK_BITS: u64 = 21;

/// The budget: untyped capabilities, the one being carved first.
struct Budget {
    cnode: Cap<CNode>,
    untyped: core::ops::Range<u64>,
    next_slot: u64,
    slot_end: u64,
    chunks: u64,
    /// Whether running out has been reported (once is enough).
    warned: bool,
}

impl Budget {
    /// A new chunk in a slot of zero's CNode; `ENOMEM` when the budget (or the CNode) is
    /// used up.
    fn chunk(&mut self) -> Result<u64, Errno> {
        if self.next_slot >= self.slot_end {
            return Err(Errno::ENOMEM);
        }
        let slot = self.next_slot;
        while !self.untyped.is_empty() {
            let ut: Cap<Untyped> = Cap::from_cptr(self.untyped.start);
            match ut.retype(ObjectType::Frame, CHUNK_BITS, self.cnode, slot, 1) {
                Ok(()) => {
                    self.next_slot += 1;
                    self.chunks += 1;
                    return Ok(slot);
                }
                // Full, or smaller than a chunk: the next one.
                Err(Error::NotEnoughMemory | Error::RangeError | Error::InvalidCapability) => {
                    self.untyped.start += 1;
                }
                Err(e) => {
                    println!("zero: retype: {e:?}");
                    self.untyped.start += 1;
                }
            }
        }
        Err(Errno::ENOMEM)
    }
}

fn main(st: &'static Startup) -> ! {
    let ep: Cap<Endpoint> = Cap::from_cptr(st.slots[zero_slots::ENDPOINT]);
    let mut budget = Budget {
        cnode: Cap::from_cptr(st.slots[zero_slots::CNODE]),
        untyped: st.untyped_first..st.untyped_first + st.untyped_count,
        next_slot: st.first_free_slot,
        slot_end: 1u64
            .checked_shl(u32::try_from(st.cnode_radix).unwrap_or(0))
            .unwrap_or(0),
        chunks: 0,
        warned: false,
    };
    let mut reply: Option<Message> = None;
    loop {
        if let Some(buf) = libmk::ipc_buffer() {
            buf.receive_slot = NULL_CPTR;
        }
        let r = match reply.take() {
            Some(m) => ep.reply_recv(&m),
            None => ep.recv(),
        };
        let Ok(r) = r else {
            continue;
        };
        let req = rt::ipc::received(&r);
        let result = match ZeroRequest::decode(req.label(), req.mrs()) {
            Ok(ZeroRequest::GetChunk) => budget.chunk().inspect_err(|_| {
                if !budget.warned {
                    budget.warned = true;
                    println!("zero: out of memory after {} chunks", budget.chunks);
                }
            }),
            Err(e) => Err(Errno::from(e)),
        };
        // The chunk travels with the reply; the reply has no results.
        let mut m = rt::ipc::message(&proto::encode_reply(&result.map(drop)));
        if let Ok(slot) = result
            && let Some(buf) = libmk::ipc_buffer()
        {
            buf.send_cap = slot;
            m.info.caps = 1;
        }
        reply = Some(m);
    }
}
