//! The zero server: hands vm zeroed 2 MiB frames ("chunks"), one per `GetChunk`, retyped
//! from its untyped budget (the kernel zeroes every frame it makes). zero keeps the
//! original capability of each chunk (vm gets a copy, a child of it), so that a chunk can
//! be revoked later.
#![no_std]
#![no_main]

use abi::object::ObjectType;
use libmk::{Cap, Endpoint, Message, Reply};
use proto::startup::{Startup, zero_slots};
use proto::{Errno, ZeroRequest};
use rt::println;
use serve::{Budget, Serve, StopHook};

rt::server_entry!(main);

/// log2 of a chunk's size.
const CHUNK_BITS: u64 = 21;

/// The server: its budget, and how many chunks it made.
struct Zero {
    budget: Budget,
    chunks: u64,
    /// Whether running out has been reported (once is enough).
    warned: bool,
}

impl Zero {
    /// A new chunk in a slot of zero's CNode; `ENOMEM` when the budget (or the CNode) is
    /// used up.
    fn chunk(&mut self) -> Result<u64, Errno> {
        let r = self.budget.retype(ObjectType::Frame, CHUNK_BITS);
        match r {
            Ok(_) => self.chunks += 1,
            Err(_) if !self.warned => {
                self.warned = true;
                println!("zero: out of memory after {} chunks", self.chunks);
            }
            Err(_) => {}
        }
        r
    }
}

impl Serve for Zero {
    type Note = ();

    fn handle(&mut self, msg: &Reply) -> Option<(Message, ())> {
        let req = rt::ipc::received(msg);
        let result = match ZeroRequest::decode(req.label(), req.mrs()) {
            Ok(ZeroRequest::GetChunk) => self.chunk(),
            Err(e) => Err(Errno::from(e)),
        };
        // The chunk travels with the reply; the reply has no results.
        let mut m = serve::answer(&result.map(drop));
        if let Ok(slot) = result
            && let Some(buf) = libmk::ipc_buffer()
        {
            buf.send_cap = slot;
            m.info.caps = 1;
        }
        Some((m, ()))
    }
}

fn main(st: &'static Startup) -> ! {
    let ep: Cap<Endpoint> = Cap::from_cptr(st.slots[zero_slots::ENDPOINT]);
    let mut zero = Zero {
        budget: Budget::of(st, Cap::from_cptr(st.slots[zero_slots::CNODE])),
        chunks: 0,
        warned: false,
    };
    serve::run(ep, "zero", StopHook::of(st), &mut zero)
}
