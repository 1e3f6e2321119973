//! Who waits for what: callers a server keeps (their saved replies and what they asked),
//! grouped by what they wait for (a pager request, a disk block being read), bounded per
//! key and in all, so that no client can make the server hold without limit. vm keys its
//! waiters by the pager request they wait for, the file server by the disk read.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Waiters `W` by key `K`.
///
/// # Invariants
/// No key has an empty list; `count` is the number of waiters over all keys, at most
/// `max_total`, and no key has more than `max_per_key`.
#[derive(Debug)]
pub struct Waiters<K, W> {
    by_key: BTreeMap<K, Vec<W>>,
    count: usize,
    max_per_key: usize,
    max_total: usize,
}

impl<K: Ord, W> Waiters<K, W> {
    /// At most `max_per_key` waiters for one key and `max_total` in all.
    pub const fn new(max_per_key: usize, max_total: usize) -> Self {
        Self {
            by_key: BTreeMap::new(),
            count: 0,
            max_per_key,
            max_total,
        }
    }

    /// `w` waits for `key`; gives `w` back when a bound is reached.
    pub fn wait(&mut self, key: K, w: W) -> Result<(), W> {
        if self.count >= self.max_total {
            return Err(w);
        }
        let list = self.by_key.entry(key).or_default();
        if list.len() >= self.max_per_key {
            return Err(w);
        }
        list.push(w);
        self.count += 1;
        Ok(())
    }

    /// Every waiter of `key`, in the order they came (none left).
    pub fn take(&mut self, key: &K) -> Vec<W> {
        let list = self.by_key.remove(key).unwrap_or_default();
        self.count -= list.len();
        list
    }

    /// Waiters over all keys.
    pub const fn len(&self) -> usize {
        self.count
    }

    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every waiter (to mark those of a client that went away).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut W> {
        self.by_key.values_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_come_back_by_key_in_order_and_bounds_hold() {
        let mut w: Waiters<u64, u32> = Waiters::new(2, 3);
        assert_eq!(w.wait(7, 1), Ok(()));
        assert_eq!(w.wait(7, 2), Ok(()));
        // Two per key.
        assert_eq!(w.wait(7, 3), Err(3));
        assert_eq!(w.wait(8, 4), Ok(()));
        // Three in all.
        assert_eq!(w.wait(9, 5), Err(5));
        assert_eq!(w.len(), 3);
        assert_eq!(w.take(&7), [1, 2]);
        assert_eq!(w.take(&7), [] as [u32; 0]);
        assert_eq!(w.len(), 1);
        assert_eq!(w.wait(9, 5), Ok(()));
        for x in w.iter_mut() {
            *x += 10;
        }
        assert_eq!(w.take(&8), [14]);
        assert_eq!(w.take(&9), [15]);
        assert!(w.is_empty());
    }
}
