//! The file server's asynchronous reads, free of system calls so that it is tested on the
//! host: which cache blocks are being read from the disk ("fills"), which requests wait for
//! each, and the saved-reply slots those requests hold.
//!
//! A fill is one page-cache block read with one disk request per run of consecutive
//! clusters (its *parts*); it finishes when every part has completed, in whatever order
//! the device completes them. Requests that need a block being read wait with its fill and
//! are run again when it finishes (then they find the block cached); a request that needs a
//! free cache slot or room in the disk queue while none is free waits with the oldest fill
//! (any completion makes room). A fill is *stale* when the block it reads changed on the
//! way (the file was cut, written around the cache, forgotten, or the block was read
//! again synchronously): its bytes are thrown away when it finishes, and its waiters run
//! again.
//!
//! Everything a client can make the server hold is bounded: disk requests in flight
//! ([`Pending::new`]'s `max_requests`, within the virtio queue), waiters per block
//! ([`MAX_WAITERS_PER_BLOCK`]), and saved replies (`serve::ReplySlots`: one CNode slot
//! each, a share per client).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use serve::Waiters;

/// (object, block number in the file): a page-cache block.
pub type Key = (u64, u64);

/// Requests that may wait for one block (beyond it: the request is served synchronously).
pub const MAX_WAITERS_PER_BLOCK: usize = 32;

/// A fill that finished: what the server does with its slot and its waiters.
#[derive(Debug)]
pub struct Finished<W> {
    pub key: Key,
    /// The cache slot the block was read into (reserved while the fill was in flight).
    pub slot: usize,
    /// Every part was read without error.
    pub ok: bool,
    /// The bytes read are not to be used (see the module's text).
    pub stale: bool,
    /// A read-ahead (nobody asked for the block yet).
    pub ahead: bool,
    /// Requests that need this block: answered with `EIO` if the read failed (and the fill
    /// is not stale), run again otherwise.
    pub waiters: Vec<W>,
    /// Requests that waited for room (a slot, the queue): run again.
    pub others: Vec<W>,
}

#[derive(Debug)]
struct Fill {
    key: Key,
    slot: usize,
    /// Parts not completed yet.
    parts: usize,
    failed: bool,
    stale: bool,
    ahead: bool,
}

/// The fills in flight.
///
/// # Invariants
/// `by_key[k] == id` exactly when `fills[id]` is not stale and reads `k`; `requests` is
/// the sum of the fills' `parts`, at most `max_requests`.
#[derive(Debug)]
pub struct Pending<W> {
    fills: BTreeMap<u64, Fill>,
    by_key: BTreeMap<Key, u64>,
    /// Requests that need the block a fill reads, by the fill's id.
    waiters: Waiters<u64, W>,
    /// Requests that wait for room (a slot, the queue), by the fill whose end they wait for.
    others: Waiters<u64, W>,
    next_id: u64,
    requests: usize,
    max_requests: usize,
    /// The most disk requests that were in flight at once.
    pub max_in_flight: usize,
}

impl<W> Pending<W> {
    /// At most `max_requests` disk requests in flight.
    pub fn new(max_requests: usize) -> Self {
        Self {
            fills: BTreeMap::new(),
            by_key: BTreeMap::new(),
            waiters: Waiters::new(MAX_WAITERS_PER_BLOCK, usize::MAX),
            others: Waiters::new(usize::MAX, usize::MAX),
            next_id: 1,
            requests: 0,
            max_requests,
            max_in_flight: 0,
        }
    }

    /// Disk requests that may still be started.
    pub fn room(&self) -> usize {
        self.max_requests - self.requests
    }

    /// Disk requests in flight.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Requests waiting (for a block or for room).
    pub fn waiting(&self) -> usize {
        self.waiters.len() + self.others.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fills.is_empty()
    }

    /// Whether `key` is being read (and the read is not stale).
    pub fn in_flight(&self, key: Key) -> bool {
        self.by_key.contains_key(&key)
    }

    /// Whether a fill (stale or not) holds cache slot `slot`.
    pub fn holds_slot(&self, slot: usize) -> bool {
        self.fills.values().any(|f| f.slot == slot)
    }

    /// A new fill of `key` into `slot` in `parts` disk requests: its id (the tag of each
    /// part). `None` (nothing changes) when `key` is already in flight, `parts` is 0, or
    /// there is no room for `parts` more requests.
    pub fn start(&mut self, key: Key, slot: usize, parts: usize, ahead: bool) -> Option<u64> {
        if parts == 0 || parts > self.room() || self.in_flight(key) {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.fills.insert(
            id,
            Fill {
                key,
                slot,
                parts,
                failed: false,
                stale: false,
                ahead,
            },
        );
        self.by_key.insert(key, id);
        self.requests += parts;
        self.max_in_flight = self.max_in_flight.max(self.requests);
        Some(id)
    }

    /// `w` waits for block `key` (in flight); gives `w` back when it is not in flight or
    /// [`MAX_WAITERS_PER_BLOCK`] wait for it already.
    pub fn wait(&mut self, key: Key, w: W) -> Result<(), W> {
        match self.by_key.get(&key) {
            Some(&id) => self.waiters.wait(id, w),
            None => Err(w),
        }
    }

    /// `w` waits for room: runs again when the oldest fill finishes. Gives `w` back when
    /// nothing is in flight.
    pub fn wait_any(&mut self, w: W) -> Result<(), W> {
        match self.fills.keys().next() {
            Some(&id) => self.others.wait(id, w),
            None => Err(w),
        }
    }

    /// One part of fill `id` completed (`ok`: without error); the fill when it was its last.
    /// `None` for an id not in flight (nothing changes).
    pub fn part_done(&mut self, id: u64, ok: bool) -> Option<Finished<W>> {
        let f = self.fills.get_mut(&id)?;
        f.parts -= 1;
        self.requests -= 1;
        f.failed |= !ok;
        if f.parts > 0 {
            return None;
        }
        let f = self.fills.remove(&id)?;
        if self.by_key.get(&f.key) == Some(&id) {
            self.by_key.remove(&f.key);
        }
        Some(Finished {
            key: f.key,
            slot: f.slot,
            ok: !f.failed,
            stale: f.stale,
            ahead: f.ahead,
            waiters: self.waiters.take(&id),
            others: self.others.take(&id),
        })
    }

    /// Every waiting request (to mark those of a task that ended).
    pub fn waiters_mut(&mut self) -> impl Iterator<Item = &mut W> {
        self.waiters.iter_mut().chain(self.others.iter_mut())
    }

    /// The read of `key` (if in flight) is stale; a new one may start.
    pub fn invalidate(&mut self, key: Key) {
        if let Some(id) = self.by_key.remove(&key)
            && let Some(f) = self.fills.get_mut(&id)
        {
            f.stale = true;
        }
    }

    /// Every read of a block of `object` in flight is stale.
    pub fn invalidate_object(&mut self, object: u64) {
        let keys: Vec<Key> = self
            .by_key
            .range((object, 0)..=(object, u64::MAX))
            .map(|(&k, _)| k)
            .collect();
        for k in keys {
            self.invalidate(k);
        }
    }
}
