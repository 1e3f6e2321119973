//! Host tests of [`crate::pending`].

use crate::pending::{MAX_WAITERS_PER_BLOCK, Pending};

#[test]
fn a_fill_finishes_after_its_last_part_in_any_order() {
    let mut p: Pending<u32> = Pending::new(4);
    let a = p.start((1, 0), 5, 2, false).unwrap();
    let b = p.start((1, 1), 6, 1, true).unwrap();
    assert_eq!((p.requests(), p.room(), p.max_in_flight), (3, 1, 3));
    p.wait((1, 0), 10).unwrap();
    p.wait((1, 0), 11).unwrap();
    assert_eq!(p.waiting(), 2);
    // The device completes the second fill first, then the first fill's parts.
    let fb = p.part_done(b, true).unwrap();
    assert_eq!((fb.key, fb.slot, fb.ok, fb.ahead), ((1, 1), 6, true, true));
    assert!(fb.waiters.is_empty());
    assert!(p.part_done(a, true).is_none());
    assert!(p.in_flight((1, 0)));
    let fa = p.part_done(a, true).unwrap();
    assert_eq!((fa.key, fa.slot, fa.ok, fa.stale), ((1, 0), 5, true, false));
    assert_eq!(fa.waiters, [10, 11]);
    assert!(p.is_empty());
    assert_eq!((p.requests(), p.waiting(), p.max_in_flight), (0, 0, 3));
    // A completion of an id no longer in flight changes nothing.
    assert!(p.part_done(a, true).is_none());
    assert_eq!(p.requests(), 0);
}

#[test]
fn one_failed_part_fails_the_fill() {
    let mut p: Pending<u32> = Pending::new(4);
    let a = p.start((2, 3), 0, 3, false).unwrap();
    p.wait((2, 3), 1).unwrap();
    assert!(p.part_done(a, true).is_none());
    assert!(p.part_done(a, false).is_none());
    let f = p.part_done(a, true).unwrap();
    assert!(!f.ok);
    assert_eq!(f.waiters, [1]);
}

#[test]
fn start_is_refused_without_room_or_twice() {
    let mut p: Pending<u32> = Pending::new(2);
    assert!(p.start((1, 0), 0, 0, false).is_none());
    assert!(p.start((1, 0), 0, 3, false).is_none());
    let a = p.start((1, 0), 0, 1, false).unwrap();
    assert!(p.start((1, 0), 1, 1, false).is_none());
    p.start((1, 1), 1, 1, false).unwrap();
    assert!(p.start((1, 2), 2, 1, false).is_none());
    assert_eq!(p.room(), 0);
    p.part_done(a, true).unwrap();
    assert_eq!(p.room(), 1);
}

#[test]
fn waiters_are_bounded_and_need_a_fill() {
    let mut p: Pending<usize> = Pending::new(4);
    assert_eq!(p.wait((1, 0), 7), Err(7));
    assert_eq!(p.wait_any(8), Err(8));
    p.start((1, 0), 0, 1, false).unwrap();
    for i in 0..MAX_WAITERS_PER_BLOCK {
        p.wait((1, 0), i).unwrap();
    }
    assert_eq!(p.wait((1, 0), 99), Err(99));
    assert_eq!(p.wait((1, 1), 98), Err(98));
    p.wait_any(97).unwrap();
    assert_eq!(p.waiting(), MAX_WAITERS_PER_BLOCK + 1);
    assert_eq!(p.waiters_mut().count(), MAX_WAITERS_PER_BLOCK + 1);
    for w in p.waiters_mut() {
        *w += 1000;
    }
    assert!(p.waiters_mut().all(|w| *w >= 1000));
}

#[test]
fn wait_any_goes_with_the_oldest_fill() {
    let mut p: Pending<u32> = Pending::new(4);
    let a = p.start((1, 5), 0, 1, false).unwrap();
    let b = p.start((1, 2), 1, 1, false).unwrap();
    p.wait_any(3).unwrap();
    assert!(p.part_done(b, true).unwrap().others.is_empty());
    let f = p.part_done(a, false).unwrap();
    assert_eq!(f.others, [3]);
    assert!(f.waiters.is_empty());
}

#[test]
fn a_stale_fill_lets_a_new_one_start_and_keeps_its_slot() {
    let mut p: Pending<u32> = Pending::new(4);
    let a = p.start((1, 0), 4, 1, false).unwrap();
    let other = p.start((2, 0), 5, 1, false).unwrap();
    p.wait((1, 0), 1).unwrap();
    p.invalidate_object(1);
    assert!(!p.in_flight((1, 0)));
    assert!(p.in_flight((2, 0)));
    assert!(p.holds_slot(4));
    // A request for the block now does not wait for the stale read.
    assert_eq!(p.wait((1, 0), 2), Err(2));
    let b = p.start((1, 0), 6, 1, false).unwrap();
    p.wait((1, 0), 3).unwrap();
    let f = p.part_done(a, true).unwrap();
    assert!(f.stale);
    assert_eq!(f.waiters, [1]);
    // The stale fill's end leaves the new one in flight.
    assert!(p.in_flight((1, 0)));
    let g = p.part_done(b, true).unwrap();
    assert!(!g.stale);
    assert_eq!(g.waiters, [3]);
    p.part_done(other, true).unwrap();
    assert!(!p.holds_slot(4) && p.is_empty());
}
