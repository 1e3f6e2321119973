//! The system-call half of the runtime (target only): the receive loop ([`run`], a server
//! says what it does with each message through [`Serve`]), replies ([`answer`]), saved
//! replies ([`send_saved`]), the untyped budget and CNode slots ([`Budget`]), page tables
//! ([`Tables`]), and the test hooks that stop a server ([`StopHook`]).

use abi::Error;
use abi::message::{NOTIFICATION_LABEL, NULL_CPTR, REGISTER_MRS};
use abi::object::ObjectType;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use libmk::{CNode, Cap, Endpoint, Message, PageTable, Reply, SavedReply, Untyped, VSpace};
use proto::startup::Startup;
use proto::{Errno, ReplyBody};
use rt::println;

/// What a server does with the messages its receive loop ([`run`]) gets.
pub trait Serve {
    /// What a reply remembers for [`Serve::reply_failed`] (vm: the task and address of a
    /// fault reply that maps pages; `()` for most servers).
    type Note: Copy;

    /// The slot a capability arriving with the next message goes to (`NULL_CPTR`: none is
    /// taken). The message's `info().caps` says whether one came.
    fn receive_slot(&mut self) -> u64 {
        NULL_CPTR
    }

    /// Answers one message: the reply for its sender now, or `None` (the caller's reply
    /// was saved to be answered later, or nobody waits: a notification).
    fn handle(&mut self, msg: &Reply) -> Option<(Message, Self::Note)>;

    /// The reply with `note` could not be delivered (`e`): its caller is gone, or a map
    /// item failed.
    fn reply_failed(&mut self, e: Error, note: Self::Note) {
        let _ = (e, note);
    }

    /// Whether work is left for after the reply (then the reply goes out on its own,
    /// [`Serve::work`] runs, and the loop receives again).
    fn has_work(&self) -> bool {
        false
    }

    /// The work left for after the reply (the file server: the disk's completions).
    fn work(&mut self) {}

    /// The test hook will stop the server at this message: finish what must not be left
    /// half done (the file server: the disk reads in flight).
    fn quiesce(&mut self) {}
}

/// The receive loop of a server named `name` on `ep`: receive, answer, and receive again
/// with the reply (`ReplyRecv`, one system call), for ever. Test hooks (`hook`) see every
/// request but notifications.
pub fn run<S: Serve>(ep: Cap<Endpoint>, name: &'static str, mut hook: StopHook, s: &mut S) -> ! {
    let mut reply: Option<(Message, S::Note)> = None;
    loop {
        let slot = s.receive_slot();
        if let Some(buf) = libmk::ipc_buffer() {
            buf.receive_slot = slot;
        }
        let r = match reply.take() {
            Some((m, note)) => {
                let r = ep.reply_recv(&m);
                if let Err(e) = r {
                    s.reply_failed(e, note);
                }
                r
            }
            None => ep.recv(),
        };
        let Ok(r) = r else {
            continue;
        };
        if hook.armed && r.info().label != NOTIFICATION_LABEL {
            let (label, len) = (r.info().label, r.info().length.min(REGISTER_MRS));
            if hook.stops_next(label, &r.mrs[..len]) {
                s.quiesce();
            }
            hook.request(name, ep, label, &r.mrs[..len]);
        }
        reply = s.handle(&r);
        if s.has_work() {
            // The caller first: its reply may be in the IPC buffer, which the work uses too.
            if let Some((m, note)) = reply.take()
                && let Err(e) = libmk::reply(&m)
            {
                s.reply_failed(e, note);
            }
            s.work();
        }
    }
}

/// A reply: MR0 = 0 and the results, or MR0 = the errno (words past the registers go in
/// the IPC buffer).
pub fn answer<T: ReplyBody>(r: &Result<T, Errno>) -> Message {
    rt::ipc::message(&proto::encode_reply(r))
}

/// A reply with errno `e` alone.
pub fn error(e: Errno) -> Message {
    answer::<()>(&Err(e))
}

/// Answers the caller whose reply was saved in `slot` (`SaveCaller`) with `m`. The slot is
/// empty afterwards either way: a reply that cannot be delivered is deleted (its caller,
/// if still there, wakes with an error), and the error comes back.
pub fn send_saved(cnode: Cap<CNode>, slot: u64, m: &Message) -> Result<(), Error> {
    Cap::<SavedReply>::from_cptr(slot).send(m).inspect_err(|_| {
        let _ = cnode.delete(slot);
    })
}

/// A server's untyped budget and the free slots of its CNode: every kernel object it
/// makes comes from here, in a slot from here.
pub struct Budget {
    pub cnode: Cap<CNode>,
    /// Untyped capabilities not known to be used up, the one being carved first.
    untyped: core::ops::Range<u64>,
    first_slot: u64,
    next_slot: u64,
    slot_end: u64,
    /// Slots given back (empty).
    free: Vec<u64>,
    /// Page tables given back (empty, uninstalled), for the next [`Tables::ensure`].
    tables: Vec<Cap<PageTable>>,
    /// An untyped kept for page tables alone ([`Budget::keep_last_for_tables`]).
    tables_untyped: Option<Cap<Untyped>>,
}

impl Budget {
    /// The budget init gave the server (`st`), its CNode being `cnode`.
    pub fn of(st: &Startup, cnode: Cap<CNode>) -> Self {
        Self {
            cnode,
            untyped: st.untyped_first..st.untyped_first + st.untyped_count,
            first_slot: st.first_free_slot,
            next_slot: st.first_free_slot,
            slot_end: 1u64
                .checked_shl(u32::try_from(st.cnode_radix).unwrap_or(0))
                .unwrap_or(0),
            free: Vec::new(),
            tables: Vec::new(),
            tables_untyped: None,
        }
    }

    /// Keeps the last untyped for page tables: objects of other types never use it, so
    /// that a server that makes frames until its budget is spent (the file server's page
    /// cache) can still map them. No change with fewer than two untypeds.
    pub fn keep_last_for_tables(&mut self) {
        if self.untyped.end - self.untyped.start >= 2 {
            self.untyped.end -= 1;
            self.tables_untyped = Some(Cap::from_cptr(self.untyped.end));
        }
    }

    /// `n` consecutive slots for the server's own use (saved replies), taken from the slots
    /// never handed out; `None` if there are not that many.
    pub fn reserve_slots(&mut self, n: u64) -> Option<core::ops::Range<u64>> {
        let first = self.next_slot;
        let end = first.checked_add(n).filter(|&e| e <= self.slot_end)?;
        self.next_slot = end;
        Some(first..end)
    }

    /// An empty slot; `ENOMEM` when the CNode is full.
    pub fn slot(&mut self) -> Result<u64, Errno> {
        if let Some(s) = self.free.pop() {
            return Ok(s);
        }
        if self.next_slot < self.slot_end {
            self.next_slot += 1;
            return Ok(self.next_slot - 1);
        }
        Err(Errno::ENOMEM)
    }

    /// `slot` is empty again (its capability was moved or used up).
    pub fn free(&mut self, slot: u64) {
        if slot + 1 == self.next_slot {
            // The last one handed out (no allocation: a server without a heap, zero, only
            // ever gives back that one).
            self.next_slot -= 1;
        } else {
            self.free.push(slot);
        }
    }

    /// Deletes the capability in `slot` and frees the slot.
    pub fn delete(&mut self, slot: u64) {
        let _ = self.cnode.delete(slot);
        self.free(slot);
    }

    /// A new object of `ty` (`bits`: its size for the types that have one) in a new slot.
    /// Untyped capabilities found too full (or too small) are left behind; `ENOMEM` when
    /// none is left.
    pub fn retype(&mut self, ty: ObjectType, bits: u64) -> Result<u64, Errno> {
        let slot = self.slot()?;
        while !self.untyped.is_empty() {
            let ut: Cap<Untyped> = Cap::from_cptr(self.untyped.start);
            match ut.retype(ty, bits, self.cnode, slot, 1) {
                Ok(()) => return Ok(slot),
                Err(Error::NotEnoughMemory | Error::RangeError | Error::InvalidCapability) => {
                    self.untyped.start += 1;
                }
                Err(e) => {
                    self.free(slot);
                    return Err(e.into());
                }
            }
        }
        self.free(slot);
        Err(Errno::ENOMEM)
    }

    /// The caller the server received from last, saved (`SaveCaller`) in a new slot: the
    /// slot, to answer it later with [`send_saved`].
    pub fn save_caller(&mut self) -> Result<u64, Errno> {
        let slot = self.slot()?;
        match libmk::save_caller(slot) {
            Ok(_) => Ok(slot),
            Err(e) => {
                self.free(slot);
                Err(e.into())
            }
        }
    }

    /// Answers the caller saved in `slot` (by [`Budget::save_caller`]) with `m`, as
    /// [`send_saved`]; the slot is free afterwards.
    pub fn answer_saved(&mut self, slot: u64, m: &Message) -> Result<(), Error> {
        let r = send_saved(self.cnode, slot, m);
        self.free(slot);
        r
    }

    /// Whether every untyped capability is used up.
    pub fn is_spent(&self) -> bool {
        self.untyped.is_empty()
    }

    /// Slots holding capabilities the server made (free slots and spare tables not
    /// counted).
    pub fn slots_in_use(&self) -> u64 {
        let used = self.next_slot - self.first_slot;
        used.saturating_sub((self.free.len() + self.tables.len()) as u64)
    }

    /// An empty page table: a spare one, else a new one (from the untyped kept for tables,
    /// if there is one).
    fn table(&mut self) -> Result<Cap<PageTable>, Errno> {
        if let Some(pt) = self.tables.pop() {
            return Ok(pt);
        }
        let Some(ut) = self.tables_untyped else {
            return self.retype(ObjectType::PageTable, 0).map(Cap::from_cptr);
        };
        let slot = self.slot()?;
        match ut.retype(ObjectType::PageTable, 0, self.cnode, slot, 1) {
            Ok(()) => Ok(Cap::from_cptr(slot)),
            Err(e) => {
                self.free(slot);
                Err(e.into())
            }
        }
    }

    /// `pt`, empty and uninstalled, is spare.
    pub fn spare_table(&mut self, pt: Cap<PageTable>) {
        self.tables.push(pt);
    }
}

/// log2 of the span a level-`level` table maps (levels 1..3 of the 4 KiB granule).
const fn span_bits(level: u8) -> u32 {
    match level {
        1 => 39,
        2 => 30,
        _ => 21,
    }
}

/// An address space and the page tables a server installed in it, by (level, base): the
/// table's slot, or `NULL_CPTR` for one that was there already.
pub struct Tables {
    pub vspace: Cap<VSpace>,
    installed: BTreeMap<(u8, u64), u64>,
}

impl Tables {
    pub const fn new(vspace: Cap<VSpace>) -> Self {
        Self {
            vspace,
            installed: BTreeMap::new(),
        }
    }

    /// Installs the level-1..3 tables covering `va` where missing, from `budget`.
    pub fn ensure(&mut self, va: u64, budget: &mut Budget) -> Result<(), Errno> {
        for level in 1..=3u8 {
            let base = va & !((1u64 << span_bits(level)) - 1);
            if self.installed.contains_key(&(level, base)) {
                continue;
            }
            let pt = budget.table()?;
            match self.vspace.map_table(pt, base, u64::from(level)) {
                Ok(()) => {
                    self.installed.insert((level, base), pt.cptr());
                }
                Err(Error::AlreadyMapped) => {
                    budget.spare_table(pt);
                    self.installed.insert((level, base), NULL_CPTR);
                }
                Err(e) => {
                    budget.spare_table(pt);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// The address space is going: its tables, unmapped, become `budget`'s spares; the
    /// VSpace capability's slot is left to the caller.
    pub fn give_back(self, budget: &mut Budget) {
        for (_, pt) in self.installed {
            if pt != NULL_CPTR {
                let pt: Cap<PageTable> = Cap::from_cptr(pt);
                let _ = pt.unmap();
                budget.spare_table(pt);
            }
        }
    }
}

/// The test hooks of a server's receive loop: counts requests and, when the `N`th arrives,
/// stops the server as if it had crashed (`Startup::stop_at`, bootarg `<server>.stop=N`), or
/// makes it stop answering while it stays alive (`Startup::hang_at`, `<server>.hang=N`);
/// the same when vm asks for block `B` (`<server>.stop.block=B`, `<server>.hang.block=B`).
/// 0: never.
pub struct StopHook {
    /// Whether any hook is set (the loop skips the rest otherwise).
    armed: bool,
    at: u64,
    hang_at: u64,
    stop_block: u64,
    hang_block: u64,
    seen: u64,
}

impl StopHook {
    /// The hooks of `st`.
    pub const fn of(st: &Startup) -> Self {
        Self {
            armed: st.stop_at != 0 || st.hang_at != 0 || st.stop_block != 0 || st.hang_block != 0,
            at: st.stop_at,
            hang_at: st.hang_at,
            stop_block: st.stop_block,
            hang_block: st.hang_block,
            seen: 0,
        }
    }

    /// Whether the next request is the one it stops at.
    fn stops_next(&self, label: u64, mrs: &[u64]) -> bool {
        self.seen + 1 == self.at || Self::asks_block(self.stop_block, label, mrs)
    }

    /// Whether (`label`, `mrs`) is vm's `ObjectPage` for block `block` (0: none).
    fn asks_block(block: u64, label: u64, mrs: &[u64]) -> bool {
        block != 0 && label == proto::Label::ObjectPage as u64 && mrs.get(1) == Some(&block)
    }

    /// One request arrived on `ep`; `name` says which server stops.
    fn request(&mut self, name: &str, ep: Cap<Endpoint>, label: u64, mrs: &[u64]) {
        self.seen += 1;
        if Self::asks_block(self.stop_block, label, mrs) {
            println!(
                "{name}: test hook: stopping when asked for block {}",
                self.stop_block
            );
            rt::stop();
        }
        if Self::asks_block(self.hang_block, label, mrs) {
            println!(
                "{name}: test hook: no more answers from block {}",
                self.hang_block
            );
            hang(ep);
        }
        if self.seen == self.at {
            println!("{name}: test hook: stopping at request {}", self.seen);
            rt::stop();
        }
        if self.seen == self.hang_at {
            println!(
                "{name}: test hook: no more answers from request {}",
                self.seen
            );
            hang(ep);
        }
    }
}

/// Waits for ever without faulting (the `hang` test hook): the thread calls its own
/// endpoint `ep`, where it is the only receiver, so it stays alive and blocked, and every
/// client's call waits behind it.
fn hang(ep: Cap<Endpoint>) -> ! {
    loop {
        let _ = ep.call(&Message::new(0, &[]));
        libmk::yield_now();
    }
}
