//! vm's requests to pagers that are on their way, and who waits for each (docs/pagers.md,
//! "Asynchronous paging").
//!
//! vm never waits for a pager. An operation that needs a pager's answer (a fault on a block
//! vm holds no capability for, the first write to a shared block, `msync`, the claim of
//! `mmap`) queues the request here and stops with [`crate::WAIT`]; the server keeps the
//! caller's reply (`SaveCaller`) as a waiter of that request and goes on serving others.
//! One proxy thread per pager takes the requests in order and makes the blocking `Call`.
//! When an answer comes back, the server offers it as the current [`Answer`] and runs every
//! waiter's operation again from the start: the same call now returns the answer.
//!
//! A request is known by its words ([`Request`]); a second operation that needs the same
//! request while it is on its way waits for it instead of sending another, and so do faults
//! on the same block through another handle ([`Pending::block`]).
//!
//! # States of a request
//! queued (in its pager's queue) → sent (its proxy is in `Call`) → answered (the current
//! answer while its waiters run again) → gone. A pager that fails or misses its deadline
//! answers everything queued and sent with an error ([`Pending::fail`]).

use crate::object::BlockKey;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use proto::Errno;
use proto::object::Pager;
use serve::Waiters;

/// Words of a request after its label (every pager request fits).
pub const REQUEST_WORDS: usize = 4;
/// Words of an answer vm reads (MR0, the status, and up to three results).
pub const ANSWER_WORDS: usize = 4;

/// A request to a pager, as it travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    /// [`Pager`] as an index (0 file, 1 shm), so that requests sort.
    pager: u8,
    pub label: u64,
    pub len: u8,
    pub words: [u64; REQUEST_WORDS],
}

impl Request {
    /// `None` when the message does not fit (no pager request is that long).
    pub fn new(pager: Pager, label: u64, mrs: &[u64]) -> Option<Self> {
        let mut words = [0; REQUEST_WORDS];
        words.get_mut(..mrs.len())?.copy_from_slice(mrs);
        Some(Self {
            pager: index(pager) as u8,
            label,
            len: mrs.len() as u8,
            words,
        })
    }

    pub const fn pager(&self) -> Pager {
        match self.pager {
            0 => Pager::File,
            _ => Pager::Shm,
        }
    }

    pub fn mrs(&self) -> &[u64] {
        &self.words[..usize::from(self.len).min(REQUEST_WORDS)]
    }
}

/// A pager's answer: its reply words (MR0 = 0 and results, or the errno), or the error
/// that stopped the request (the pager is gone, or missed its deadline); and the slot a
/// capability that came with it went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub request: Request,
    pub words: Result<([u64; ANSWER_WORDS], usize), Errno>,
    pub cap: Option<u64>,
    /// Whether a waiter took the capability (a later one must ask again).
    pub taken: bool,
}

impl Answer {
    /// The reply's words, or the error.
    pub fn mrs(&self) -> Result<&[u64], Errno> {
        match &self.words {
            Ok((w, n)) => Ok(&w[..(*n).min(ANSWER_WORDS)]),
            Err(e) => Err(*e),
        }
    }
}

/// A request that a proxy took: the request, when (ticks), and the slot for a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    pub request: Request,
    pub at: u64,
    pub slot: Option<u64>,
}

/// The limit of requests queued for one pager: a bound on what tasks can make vm hold
/// (each task waits for at most one request, so this is never reached by honest use).
pub const MAX_QUEUED: usize = 4096;

/// Callers that may wait for pagers at once, over all requests (each holds a slot of vm's
/// CNode too; beyond this a request gets `EAGAIN` and a fault `BUS`, as when the slots run
/// out).
pub const MAX_WAITERS: usize = 8192;

/// Requests on their way and their waiters (`W`: what the server keeps of a caller).
pub struct Pending<W> {
    queued: [VecDeque<Request>; 2],
    sent: [Option<Sent>; 2],
    blocks: BTreeMap<(BlockKey, bool), Request>,
    waiters: Waiters<Request, W>,
    /// The answer whose waiters are running again.
    answer: Option<Answer>,
    /// The request the last [`crate::WAIT`] waits for.
    waiting_on: Option<Request>,
}

impl<W> Default for Pending<W> {
    fn default() -> Self {
        Self {
            queued: [VecDeque::new(), VecDeque::new()],
            sent: [None, None],
            blocks: BTreeMap::new(),
            waiters: Waiters::new(MAX_WAITERS, MAX_WAITERS),
            answer: None,
            waiting_on: None,
        }
    }
}

/// `p` as an index (0 file, 1 shm) into vm's per-pager tables.
pub const fn index(p: Pager) -> usize {
    match p {
        Pager::File => 0,
        Pager::Shm => 1,
    }
}

impl<W> Pending<W> {
    /// The answer to `request` if it is the current one: its words (and the capability,
    /// once, if `cap`). `None` for a request that must be sent (or waited for): also when
    /// the answer's capability was taken by an earlier waiter.
    pub fn answered(&mut self, request: &Request, cap: bool) -> Option<(Answer, Option<u64>)> {
        let a = self.answer.as_mut().filter(|a| a.request == *request)?;
        if cap && a.words.is_ok() {
            if a.taken {
                return None;
            }
            a.taken = true;
            let c = a.cap.take();
            return Some((*a, c));
        }
        Some((*a, None))
    }

    /// Whether `request` is queued or sent.
    pub fn on_its_way(&self, request: &Request) -> bool {
        let i = index(request.pager());
        self.queued[i].contains(request) || self.sent[i].is_some_and(|s| s.request == *request)
    }

    /// The request the caller will wait for: `request` (queued unless on its way already).
    /// `EAGAIN` when the pager's queue is full.
    pub fn ask(&mut self, request: Request) -> Result<(), Errno> {
        if !self.on_its_way(&request) {
            let q = &mut self.queued[index(request.pager())];
            if q.len() >= MAX_QUEUED {
                return Err(Errno::EAGAIN);
            }
            q.push_back(request);
        }
        self.waiting_on = Some(request);
        Ok(())
    }

    /// As [`Pending::ask`] for block `k` (`write` as asked): a fault waits for a request for
    /// the same block already on its way, through whichever handle.
    pub fn ask_block(&mut self, k: BlockKey, write: bool, request: Request) -> Result<(), Errno> {
        if let Some(&other) = self.blocks.get(&(k, write))
            && self.on_its_way(&other)
        {
            self.waiting_on = Some(other);
            return Ok(());
        }
        self.ask(request)?;
        self.blocks.insert((k, write), request);
        Ok(())
    }

    /// Queues a request nobody waits for.
    pub fn post(&mut self, request: Request) -> Result<(), Errno> {
        let q = &mut self.queued[index(request.pager())];
        if q.len() >= MAX_QUEUED {
            return Err(Errno::EAGAIN);
        }
        q.push_back(request);
        Ok(())
    }

    /// The request the last `WAIT` waits for (once).
    pub fn take_waiting_on(&mut self) -> Option<Request> {
        self.waiting_on.take()
    }

    /// `w` waits for `request`; gives `w` back when [`MAX_WAITERS`] wait already.
    pub fn wait(&mut self, request: Request, w: W) -> Result<(), W> {
        self.waiters.wait(request, w)
    }

    /// The next request for `pager`'s proxy, now sent (at tick `at`, its capability to go to
    /// `slot`); `None` if nothing is queued or one is already sent.
    pub fn next(
        &mut self,
        pager: Pager,
        at: u64,
        slot: impl FnOnce(&Request) -> Option<u64>,
    ) -> Option<Sent> {
        let i = index(pager);
        if self.sent[i].is_some() {
            return None;
        }
        let request = self.queued[i].pop_front()?;
        let s = Sent {
            request,
            at,
            slot: slot(&request),
        };
        self.sent[i] = Some(s);
        Some(s)
    }

    /// The request `pager`'s proxy has, if any.
    pub fn sent(&self, pager: Pager) -> Option<Sent> {
        self.sent[index(pager)]
    }

    /// `pager`'s proxy answered its request: it becomes the current answer; its waiters,
    /// to run again (then [`Pending::done`]).
    pub fn answer(
        &mut self,
        pager: Pager,
        words: Result<([u64; ANSWER_WORDS], usize), Errno>,
        cap: Option<u64>,
    ) -> Option<(Sent, Vec<W>)> {
        let s = self.sent[index(pager)].take()?;
        self.answer = Some(Answer {
            request: s.request,
            words,
            cap,
            taken: false,
        });
        self.blocks.retain(|_, r| *r != s.request);
        Some((s, self.waiters.take(&s.request)))
    }

    /// The current answer's waiters have run: the capability nobody took, to delete.
    pub fn done(&mut self) -> Option<u64> {
        self.answer.take().and_then(|a| a.cap)
    }

    /// Every request of `pager` not yet sent, dropped (the pager failed): the requests and
    /// their waiters, to answer with an error one by one (as [`Pending::answer`]).
    pub fn drop_queued(&mut self, pager: Pager) -> Vec<Request> {
        let q: Vec<Request> = self.queued[index(pager)].drain(..).collect();
        self.blocks.retain(|_, r| r.pager() != pager);
        q
    }

    /// Makes `request` (no longer on its way) the current answer with error `e`: its
    /// waiters, to run again.
    pub fn fail(&mut self, request: Request, e: Errno) -> Vec<W> {
        self.answer = Some(Answer {
            request,
            words: Err(e),
            cap: None,
            taken: false,
        });
        self.waiters.take(&request)
    }

    /// Requests of `pager` queued or sent.
    pub fn load(&self, pager: Pager) -> usize {
        let i = index(pager);
        self.queued[i].len() + usize::from(self.sent[i].is_some())
    }

    /// Callers waiting, over all requests.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(pager: Pager, handle: u64, block: u64) -> Request {
        Request::new(pager, 600, &[handle, block, 0]).unwrap()
    }

    #[test]
    fn one_request_per_block_and_every_waiter_runs_again() {
        let mut p: Pending<u32> = Pending::default();
        let (a, b) = (page(Pager::File, 1, 0), page(Pager::File, 2, 0));
        // Two faults through one handle, and one through another handle of the same block.
        p.ask_block((0, 9, 0), false, a).unwrap();
        let w = p.take_waiting_on().unwrap();
        p.wait(w, 1).unwrap();
        p.ask_block((0, 9, 0), false, a).unwrap();
        let w = p.take_waiting_on().unwrap();
        p.wait(w, 2).unwrap();
        p.ask_block((0, 9, 0), false, b).unwrap();
        let w = p.take_waiting_on().unwrap();
        assert_eq!(w, a);
        p.wait(w, 3).unwrap();
        assert_eq!(p.load(Pager::File), 1);
        assert_eq!(p.waiting(), 3);
        // Writing asks separately; the shm pager has its own queue.
        let write = Request::new(Pager::File, 600, &[1, 0, 1]).unwrap();
        p.ask_block((0, 9, 0), true, write).unwrap();
        p.ask(page(Pager::Shm, 1, 0)).unwrap();
        assert_eq!((p.load(Pager::File), p.load(Pager::Shm)), (2, 1));
        // In order, one sent at a time per pager.
        let s = p.next(Pager::File, 5, |_| Some(77)).unwrap();
        assert_eq!((s.request, s.at, s.slot), (a, 5, Some(77)));
        assert!(p.next(Pager::File, 6, |_| None).is_none());
        assert!(p.on_its_way(&a));
        let (sent, waiters) = p
            .answer(Pager::File, Ok(([0, 65536, 0, 0], 2)), Some(77))
            .unwrap();
        assert_eq!(sent.request, a);
        assert_eq!(waiters, [1, 2, 3]);
        // The capability goes to the first who asks; later ones must ask again.
        let (ans, cap) = p.answered(&a, true).unwrap();
        assert_eq!((ans.mrs(), cap), (Ok(&[0, 65536][..]), Some(77)));
        assert!(p.answered(&a, true).is_none());
        assert!(p.answered(&b, true).is_none());
        assert_eq!(p.done(), None);
        assert!(p.answered(&a, true).is_none());
        assert!(!p.on_its_way(&a));
    }

    #[test]
    fn waiters_are_bounded() {
        let mut p: Pending<usize> = Pending::default();
        let r = page(Pager::File, 1, 0);
        p.ask(r).unwrap();
        for i in 0..MAX_WAITERS {
            p.wait(r, i).unwrap();
        }
        assert_eq!(p.wait(r, MAX_WAITERS), Err(MAX_WAITERS));
        assert_eq!(p.waiting(), MAX_WAITERS);
    }

    #[test]
    fn a_failed_pager_answers_its_waiters_with_the_error() {
        let mut p: Pending<u32> = Pending::default();
        let r = page(Pager::Shm, 4, 1);
        p.ask(r).unwrap();
        p.wait(r, 8).unwrap();
        let queued = p.drop_queued(Pager::Shm);
        assert_eq!(queued, [r]);
        assert_eq!(p.fail(r, Errno::ETIMEDOUT), [8]);
        let (ans, cap) = p.answered(&r, true).unwrap();
        assert_eq!((ans.mrs(), cap), (Err(Errno::ETIMEDOUT), None));
        // An answer with no capability for a request that needs one is still an answer.
        assert_eq!(p.done(), None);
        assert_eq!(p.waiting(), 0);
    }

    #[test]
    fn queues_are_bounded_and_requests_must_fit() {
        let mut p: Pending<u32> = Pending::default();
        for i in 0..MAX_QUEUED as u64 {
            p.post(page(Pager::File, i, 0)).unwrap();
        }
        assert_eq!(p.post(page(Pager::File, 0, 1)), Err(Errno::EAGAIN));
        assert_eq!(p.ask(page(Pager::File, 0, 1)), Err(Errno::EAGAIN));
        assert!(p.ask(page(Pager::Shm, 0, 1)).is_ok());
        assert!(Request::new(Pager::File, 1, &[0; REQUEST_WORDS + 1]).is_none());
    }
}
