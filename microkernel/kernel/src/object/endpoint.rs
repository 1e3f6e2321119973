//! Endpoints and the wait queues threads block in (endpoints and notifications share them).

use super::Obj;
use super::tcb::{State, Tcb, TcbRef};

/// A FIFO of blocked threads, linked through `Tcb::wait_prev/next`.
#[derive(Debug, Default)]
#[repr(C)]
pub struct WaitQueue {
    pub head: u64,
    pub tail: u64,
}

impl WaitQueue {
    pub fn first(&self) -> Option<TcbRef> {
        Obj::from_link(self.head)
    }

    pub fn push_back(&mut self, t: TcbRef) {
        let tcb = t.get();
        tcb.wait_prev = self.tail;
        tcb.wait_next = 0;
        match Obj::<Tcb>::from_link(self.tail) {
            Some(tail) => tail.get().wait_next = t.kva(),
            None => self.head = t.kva(),
        }
        self.tail = t.kva();
    }

    pub fn remove(&mut self, t: TcbRef) {
        let tcb = t.get();
        let (prev, next) = (tcb.wait_prev, tcb.wait_next);
        match Obj::<Tcb>::from_link(prev) {
            Some(p) => p.get().wait_next = next,
            None => self.head = next,
        }
        match Obj::<Tcb>::from_link(next) {
            Some(n) => n.get().wait_prev = prev,
            None => self.tail = prev,
        }
        tcb.wait_prev = 0;
        tcb.wait_next = 0;
    }

    pub fn pop_front(&mut self) -> Option<TcbRef> {
        let t = self.first()?;
        self.remove(t);
        Some(t)
    }
}

/// An endpoint (`abi::object::ENDPOINT_BITS` bytes): the threads waiting to send, or the
/// threads waiting to receive, never both.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Endpoint {
    pub queue: WaitQueue,
}

const _: () = assert!(core::mem::size_of::<Endpoint>() <= 1 << abi::object::ENDPOINT_BITS);

pub type EndpointRef = Obj<Endpoint>;

impl Endpoint {
    /// The first waiting thread, if it waits in `state`.
    pub fn first_in(&self, state: State) -> Option<TcbRef> {
        self.queue.first().filter(|t| t.get().state == state)
    }
}
