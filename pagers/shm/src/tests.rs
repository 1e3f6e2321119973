//! Host tests of the object table: the POSIX rules of `shm_open` and friends, and when
//! frames are allocated, cleared and given back.

use super::*;
use alloc::vec;
use proto::file::open_flags::WRONLY;
use proto::pid;

const A: u64 = 10;
const B: u64 = 11;

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// Frames numbered in allocation order.
struct Frames0(u32);

impl Frames0 {
    fn alloc(&mut self) -> impl FnOnce() -> Result<u32, Errno> + '_ {
        || {
            self.0 += 1;
            Ok(self.0)
        }
    }
}

/// `GetObject` by `pid` and vm's claim for it: the handle as vm uses it, and the size.
fn mapped(t: &mut Table<u32>, pid: u64, fd: u64, writable: bool) -> (u64, u64) {
    let (h, size) = t.get_object(pid, fd, writable).unwrap();
    t.claim(h, pid).unwrap();
    (h, size)
}

fn create(t: &mut Table<u32>, pid: u64, n: &str) -> u64 {
    t.open(pid, &name(n), CREAT | EXCL | RDWR, 0o600).unwrap().0
}

#[test]
fn open_create_exclusive_and_missing() {
    let mut t = Table::<u32>::new();
    let n = name("/shm1");
    assert_eq!(t.open(A, &n, RDWR, 0o600).unwrap_err(), Errno::ENOENT);
    let (fd, size, _) = t.open(A, &n, CREAT | EXCL | RDWR, 0o600).unwrap();
    assert_eq!((fd, size), (FIRST_FD, 0));
    assert_eq!(
        t.open(B, &n, CREAT | EXCL | RDWR, 0o600).unwrap_err(),
        Errno::EEXIST
    );
    // CREAT without EXCL opens the existing object; another task numbers its own fds.
    let (fd_b, _, _) = t.open(B, &n, CREAT | RDWR, 0o600).unwrap();
    assert_eq!(fd_b, FIRST_FD);
    let (fd2, _, _) = t.open(A, &n, RDONLY, 0).unwrap();
    assert_eq!(fd2, FIRST_FD + 1);
    assert_eq!(t.usage(), (1, 0));
}

#[test]
fn bad_names_and_flags() {
    let mut t = Table::<u32>::new();
    for bad in ["shm1", "/", "/a/b"] {
        assert_eq!(
            t.open(A, &name(bad), CREAT | RDWR, 0o600).unwrap_err(),
            Errno::EINVAL,
            "{bad}"
        );
        assert_eq!(t.unlink(&name(bad)).unwrap_err(), Errno::EINVAL);
    }
    assert_eq!(
        t.open(A, &name("/x"), CREAT | WRONLY, 0o600).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(t.usage(), (0, 0));
}

#[test]
fn modes() {
    let mut t = Table::<u32>::new();
    // The creator gets what it asked for whatever the mode says.
    let fd = t.open(A, &name("/ro"), CREAT | RDWR, 0o400).unwrap().0;
    t.truncate(A, fd, 100).unwrap();
    assert_eq!(t.open(B, &name("/ro"), RDWR, 0).unwrap_err(), Errno::EACCES);
    assert_eq!(
        t.open(B, &name("/ro"), RDONLY | TRUNC, 0).unwrap_err(),
        Errno::EACCES
    );
    let (ro, size, _) = t.open(B, &name("/ro"), RDONLY, 0).unwrap();
    assert_eq!(size, 100);
    assert_eq!(t.truncate(B, ro, 5).unwrap_err(), Errno::EINVAL);
    assert_eq!(t.get_object(B, ro, true).unwrap_err(), Errno::EACCES);
    assert!(t.get_object(B, ro, false).is_ok());
    t.open(A, &name("/none"), CREAT | RDWR, 0).unwrap();
    assert_eq!(
        t.open(B, &name("/none"), RDONLY, 0).unwrap_err(),
        Errno::EACCES
    );
}

#[test]
fn descriptors_are_per_task() {
    let mut t = Table::<u32>::new();
    let fd = create(&mut t, A, "/x");
    assert_eq!(t.stat(B, fd).unwrap_err(), Errno::EBADF);
    assert_eq!(t.truncate(B, fd, 1).unwrap_err(), Errno::EBADF);
    assert_eq!(t.close(B, fd).unwrap_err(), Errno::EBADF);
    assert_eq!(t.get_object(B, fd, false).unwrap_err(), Errno::EBADF);
    assert_eq!(t.close(A, fd), Ok(vec![]));
    assert_eq!(t.close(A, fd).unwrap_err(), Errno::EBADF);
}

#[test]
fn pages_are_allocated_once_and_shared() {
    let mut t = Table::<u32>::new();
    let mut frames = Frames0(0);
    let fd = create(&mut t, A, "/x");
    t.truncate(A, fd, BLOCK_SIZE + 4096).unwrap();
    let (h1, size) = mapped(&mut t, A, fd, true);
    assert_eq!(size, BLOCK_SIZE + 4096);
    let fd_b = t.open(B, &name("/x"), RDWR, 0).unwrap().0;
    let (h2, _) = mapped(&mut t, B, fd_b, true);
    assert_ne!(h1, h2);
    assert_eq!(t.page(h1, 0, false, frames.alloc()), Ok((1, BLOCK_SIZE)));
    // The same block through another handle: the same frame.
    assert_eq!(t.page(h2, 0, false, frames.alloc()), Ok((1, BLOCK_SIZE)));
    assert_eq!(t.page(h2, 1, false, frames.alloc()), Ok((2, 4096)));
    assert_eq!(t.page(h1, 1, false, frames.alloc()), Ok((2, 4096)));
    assert_eq!(
        t.page(h1, 2, false, frames.alloc()).unwrap_err(),
        Errno::EFAULT
    );
    assert_eq!(
        t.page(h1, u64::MAX, false, frames.alloc()).unwrap_err(),
        Errno::EFAULT
    );
    assert_eq!(
        t.page(99, 0, false, frames.alloc()).unwrap_err(),
        Errno::EBADF
    );
    assert_eq!(t.usage(), (1, 2));
    // A failed allocation changes nothing.
    t.truncate(A, fd, 3 * BLOCK_SIZE).unwrap();
    assert_eq!(
        t.page(h1, 2, false, || Err(Errno::ENOMEM)).unwrap_err(),
        Errno::ENOMEM
    );
    assert_eq!(t.usage(), (1, 2));
    assert_eq!(t.check_handle(h1), Ok(()));
    assert_eq!(t.check_handle(99).unwrap_err(), Errno::EBADF);
}

#[test]
fn truncate_frees_and_clears() {
    let mut t = Table::<u32>::new();
    let mut frames = Frames0(0);
    let fd = create(&mut t, A, "/x");
    t.truncate(A, fd, 3 * BLOCK_SIZE).unwrap();
    let (h, _) = mapped(&mut t, A, fd, true);
    for b in 0..3 {
        t.page(h, b, false, frames.alloc()).unwrap();
    }
    // Shrinking into block 1: block 2 goes, block 1 is cleared past the end.
    let f = t.truncate(A, fd, BLOCK_SIZE + 100).unwrap();
    assert_eq!(f.freed, vec![3]);
    assert_eq!(
        f.clear,
        Some(Clear {
            frame: 2,
            from: 100,
            to: BLOCK_SIZE
        })
    );
    // ... and taken from every mapping: its pages past the end must fault (BUS).
    assert_eq!(f.revoke, Some(2));
    assert_eq!(t.stat(A, fd), Ok(BLOCK_SIZE + 100));
    // Growing clears from the old end (a mapping may have written past it), and leaves
    // the mappings alone.
    let f = t.truncate(A, fd, 2 * BLOCK_SIZE).unwrap();
    assert_eq!((f.freed, f.revoke), (vec![], None));
    assert_eq!(f.clear.map(|c| (c.frame, c.from)), Some((2, 100)));
    // To a block boundary: the block after it goes, nothing to clear.
    let f = t.truncate(A, fd, BLOCK_SIZE).unwrap();
    assert_eq!((f.freed, f.clear), (vec![2], None));
    assert_eq!(t.truncate(A, fd, MAX_SIZE + 1).unwrap_err(), Errno::EFBIG);
    assert_eq!(t.truncate(A, fd, u64::MAX).unwrap_err(), Errno::EINVAL);
    assert_eq!(t.truncate(A, fd, 1 << 63).unwrap_err(), Errno::EINVAL);
    let f = t.truncate(A, fd, 0).unwrap();
    assert_eq!((f.freed, f.clear), (vec![1], None));
    assert_eq!(t.truncate(A, fd, 0).unwrap(), Frames::none());
    assert_eq!(t.usage(), (1, 0));
}

#[test]
fn o_trunc_empties() {
    let mut t = Table::<u32>::new();
    let mut frames = Frames0(0);
    let fd = create(&mut t, A, "/x");
    t.truncate(A, fd, 10).unwrap();
    let (h, _) = mapped(&mut t, A, fd, false);
    t.page(h, 0, false, frames.alloc()).unwrap();
    let (_, size, f) = t.open(B, &name("/x"), RDWR | TRUNC, 0).unwrap();
    assert_eq!((size, f.freed), (0, vec![1]));
}

#[test]
fn the_object_outlives_its_name_while_held() {
    let mut t = Table::<u32>::new();
    let mut frames = Frames0(0);
    let fd = create(&mut t, A, "/x");
    t.truncate(A, fd, 4096).unwrap();
    let (h, _) = mapped(&mut t, A, fd, true);
    t.page(h, 0, false, frames.alloc()).unwrap();
    // Unlinked: the name is gone at once, the object stays for its descriptor and mapping.
    assert_eq!(t.unlink(&name("/x")), Ok(vec![]));
    assert_eq!(t.unlink(&name("/x")).unwrap_err(), Errno::ENOENT);
    assert_eq!(t.open(B, &name("/x"), RDWR, 0).unwrap_err(), Errno::ENOENT);
    assert_eq!(t.page(h, 0, false, frames.alloc()), Ok((1, 4096)));
    // A new object may take the name meanwhile.
    let fd_b = create(&mut t, B, "/x");
    assert_eq!(t.stat(B, fd_b), Ok(0));
    assert_eq!(t.close(A, fd), Ok(vec![]));
    assert_eq!(t.page(h, 0, false, frames.alloc()), Ok((1, 4096)));
    // The mapping goes: so does the object, with its frame.
    assert_eq!(t.release(pid::VM, h), Ok(vec![1]));
    assert_eq!(t.release(pid::VM, h).unwrap_err(), Errno::EBADF);
    assert_eq!(t.usage(), (1, 0));
}

#[test]
fn a_named_object_outlives_its_descriptors_and_mappings() {
    let mut t = Table::<u32>::new();
    let mut frames = Frames0(0);
    let fd = create(&mut t, A, "/x");
    t.truncate(A, fd, 4096).unwrap();
    let (h, _) = mapped(&mut t, A, fd, true);
    t.page(h, 0, false, frames.alloc()).unwrap();
    assert_eq!(t.release(pid::VM, h), Ok(vec![]));
    assert_eq!(t.close(A, fd), Ok(vec![]));
    // Another task opens it later and finds the same frame.
    let fd_b = t.open(B, &name("/x"), RDONLY, 0).unwrap().0;
    assert_eq!(t.stat(B, fd_b), Ok(4096));
    let (h2, _) = mapped(&mut t, B, fd_b, false);
    assert_eq!(t.page(h2, 0, false, frames.alloc()), Ok((1, 4096)));
    assert_eq!(t.close(B, fd_b), Ok(vec![]));
    assert_eq!(t.release(pid::VM, h2), Ok(vec![]));
    assert_eq!(t.unlink(&name("/x")), Ok(vec![1]));
    assert_eq!(t.usage(), (0, 0));
}

#[test]
fn descriptor_table_fills() {
    let mut t = Table::<u32>::new();
    create(&mut t, A, "/x");
    for _ in 1..MAX_FDS {
        t.open(A, &name("/x"), RDONLY, 0).unwrap();
    }
    assert_eq!(
        t.open(A, &name("/x"), RDONLY, 0).unwrap_err(),
        Errno::EMFILE
    );
    // Another task is not affected.
    assert!(t.open(B, &name("/x"), RDONLY, 0).is_ok());
}

#[test]
fn fork_copies_descriptors_and_exit_drops_them() {
    let mut t = Table::<u32>::new();
    let mut f = Frames0(0);
    let fd = create(&mut t, A, "/fk");
    t.truncate(A, fd, 4096).unwrap();
    let (h, _) = mapped(&mut t, A, fd, true);
    t.page(h, 0, false, f.alloc()).unwrap();
    t.release(pid::VM, h).unwrap();
    t.unlink(&name("/fk")).unwrap();
    // The child holds the same object under the same number.
    assert!(t.task_fork(A, B).unwrap().is_empty());
    assert_eq!(t.descriptors(), 2);
    assert_eq!(t.stat(B, fd), Ok(4096));
    // The parent's exit leaves the object to the child; the child's takes it, frames too.
    assert!(t.task_exit(A).is_empty());
    assert_eq!(t.stat(A, fd), Err(Errno::EBADF));
    assert_eq!(t.stat(B, fd), Ok(4096));
    assert_eq!(t.task_exit(B), vec![1]);
    assert_eq!(t.descriptors(), 0);
    assert_eq!(t.usage(), (0, 0));
    // Exit of a task without descriptors is harmless.
    assert!(t.task_exit(A).is_empty());
}

#[test]
fn fork_onto_a_reused_pid_replaces_stale_descriptors() {
    let mut t = Table::<u32>::new();
    let fd = create(&mut t, B, "/old");
    t.unlink(&name("/old")).unwrap();
    create(&mut t, A, "/new");
    assert!(t.task_fork(A, B).unwrap().is_empty());
    assert_eq!(t.descriptors(), 2);
    assert_eq!(t.usage().0, 1);
    assert_eq!(t.stat(B, fd), Ok(0));
}

#[test]
fn anonymous_objects_live_as_long_as_their_handle() {
    let mut t = Table::<u32>::new();
    let mut f = Frames0(0);
    let h = t.create_anon(3 * BLOCK_SIZE - 4096).unwrap().handle;
    // No name, no descriptor: one object, no frames until touched.
    assert_eq!((t.usage(), t.descriptors()), ((1, 0), 0));
    assert_eq!(t.page(h, 0, false, f.alloc()).unwrap(), (1, BLOCK_SIZE));
    assert_eq!(
        t.page(h, 2, false, f.alloc()).unwrap(),
        (2, BLOCK_SIZE - 4096)
    );
    // The same frame every time (vm asks again for a fork child or after a revoke).
    assert_eq!(t.page(h, 0, false, f.alloc()).unwrap(), (1, BLOCK_SIZE));
    assert_eq!(t.page(h, 3, false, f.alloc()).unwrap_err(), Errno::EFAULT);
    assert_eq!(t.check_handle(h), Ok(()));
    // Another anonymous object is another object.
    let h2 = t.create_anon(4096).unwrap().handle;
    assert_ne!(h, h2);
    assert_eq!(t.page(h2, 0, false, f.alloc()).unwrap(), (3, 4096));
    assert_eq!(t.usage(), (2, 3));
    // Exits and forks of tasks do not hold it; its release frees it and its frames.
    assert!(t.task_exit(A).is_empty());
    let mut freed = t.release(pid::VM, h).unwrap();
    freed.sort_unstable();
    assert_eq!(freed, vec![1, 2]);
    assert_eq!(t.page(h, 0, false, f.alloc()).unwrap_err(), Errno::EBADF);
    assert_eq!(t.release(pid::VM, h).unwrap_err(), Errno::EBADF);
    assert_eq!(t.release(pid::VM, h2).unwrap(), vec![3]);
    assert_eq!(t.usage(), (0, 0));
    assert_eq!(t.create_anon(MAX_SIZE + 1).unwrap_err(), Errno::EFBIG);
    assert_eq!(t.usage(), (0, 0));
}

#[test]
fn handles_are_bound_to_their_task_and_keep_its_rights() {
    let mut t = Table::<u32>::new();
    let mut f = Frames0(0);
    // A creates a 0400 object (the creator gets read-write), B opens it read-only.
    let fd_a = t
        .open(A, &name("/ro"), CREAT | EXCL | RDWR, 0o400)
        .unwrap()
        .0;
    t.truncate(A, fd_a, 4096).unwrap();
    let fd_b = t.open(B, &name("/ro"), RDONLY, 0).unwrap().0;
    let (ha, _) = t.get_object(A, fd_a, true).unwrap();
    let (hb, _) = t.get_object(B, fd_b, false).unwrap();
    // Unclaimed handles serve nothing, and only their own task's claim takes them.
    assert_eq!(t.page(ha, 0, false, f.alloc()), Err(Errno::EBADF));
    assert_eq!(t.check_handle(ha), Err(Errno::EBADF));
    assert_eq!(t.claim(ha, B), Err(Errno::EBADF));
    assert_eq!(t.claim(hb, A), Err(Errno::EBADF));
    for forged in [0, 1, 2, 3, 100] {
        if forged != ha && forged != hb {
            assert_eq!(t.claim(forged, B), Err(Errno::EBADF));
        }
    }
    let cb = t.claim(hb, B).unwrap();
    assert!(!cb.writable);
    assert_eq!(t.claim(hb, B), Err(Errno::EBADF));
    let ca = t.claim(ha, A).unwrap();
    assert!(ca.writable);
    // One object behind both handles.
    assert_eq!(ca.object, cb.object);
    // The read-only handle reads but never writes.
    assert_eq!(t.page(hb, 0, false, f.alloc()), Ok((1, 4096)));
    assert_eq!(t.page(hb, 0, true, f.alloc()), Err(Errno::EACCES));
    assert_eq!(t.dirty(hb), Err(Errno::EACCES));
    assert_eq!(t.check_handle(hb), Ok(()));
    assert_eq!(t.page(ha, 0, true, f.alloc()), Ok((1, 4096)));
    assert_eq!(t.dirty(ha), Ok(()));
    // A task cannot release vm's handles.
    assert_eq!(t.release(B, hb), Err(Errno::EBADF));
    assert_eq!(t.release(A, hb), Err(Errno::EBADF));
    // An anonymous object's handle is vm's: no task claims it.
    let anon = t.create_anon(4096).unwrap();
    assert_ne!(anon.object, ca.object);
    assert_eq!(t.claim(anon.handle, A), Err(Errno::EBADF));
    assert_eq!(t.dirty(anon.handle), Ok(()));
}

#[test]
fn unclaimed_handles_go_back_with_release_or_exit() {
    let mut t = Table::<u32>::new();
    let fd = create(&mut t, A, "/x");
    t.unlink(&name("/x")).unwrap();
    // A mapping that failed before vm claimed its handle: the runtime gives it back.
    let (h, _) = t.get_object(A, fd, true).unwrap();
    assert_eq!(t.release(B, h), Err(Errno::EBADF));
    assert_eq!(t.release(pid::VM, h), Err(Errno::EBADF));
    assert_eq!(t.release(A, h), Ok(vec![]));
    // A task that hoards handles is stopped, and its exit frees them and the object.
    for _ in 0..proto::handles::MAX_UNCLAIMED {
        t.get_object(A, fd, false).unwrap();
    }
    assert_eq!(t.get_object(A, fd, false), Err(Errno::EMFILE));
    assert_eq!(t.handles(), proto::handles::MAX_UNCLAIMED as usize);
    assert_eq!(t.close(A, fd), Ok(vec![]));
    assert_eq!(t.usage().0, 1);
    t.task_exit(A);
    assert_eq!((t.handles(), t.usage()), (0, (0, 0)));
    // vm's release after a failed mmap frees an anonymous object at once.
    let anon = t.create_anon(4096).unwrap();
    assert_eq!(t.release(pid::VM, anon.handle), Ok(vec![]));
    assert_eq!(t.usage(), (0, 0));
}

#[test]
fn limits_answer_errors() {
    let mut t = Table::<u32>::new();
    let name = |i: usize| Name::new(&alloc::format!("/o{i}")).unwrap();
    // One task: its descriptors (EMFILE), then the objects it may create (ENOSPC).
    let mut fds = Vec::new();
    for i in 0..MAX_FDS as usize {
        fds.push(t.open(A, &name(i), CREAT | RDWR, 0o600).unwrap().0);
    }
    assert_eq!(
        t.open(A, &name(9999), CREAT | RDWR, 0o600).map(|_| ()),
        Err(Errno::EMFILE)
    );
    for fd in fds {
        t.close(A, fd).unwrap();
    }
    // 256 named objects exist, all A's: its next one is refused, another task's is not.
    assert_eq!(
        t.open(A, &name(9999), CREAT | RDWR, 0o600).map(|_| ()),
        Err(Errno::ENOSPC)
    );
    let (fd, _, _) = t.open(B, &name(9999), CREAT | RDWR, 0o600).unwrap();
    t.close(B, fd).unwrap();
    // Opening what exists is no creation.
    let (fd, _, _) = t.open(A, &name(3), RDWR, 0).unwrap();
    t.close(A, fd).unwrap();
    // Unlinking gives A room again.
    t.unlink(&name(0)).unwrap();
    let (fd, _, _) = t.open(A, &name(10_000), CREAT | RDWR, 0o600).unwrap();
    t.close(A, fd).unwrap();
    // All objects: anonymous ones up to the total, then ENOMEM.
    let mut handles = Vec::new();
    loop {
        match t.create_anon(4096) {
            Ok(h) => handles.push(h),
            Err(e) => {
                assert_eq!(e, Errno::ENOMEM);
                break;
            }
        }
    }
    assert_eq!(t.usage().0, MAX_OBJECTS);
    assert_eq!(
        t.open(B, &name(20_000), CREAT | RDWR, 0o600).map(|_| ()),
        Err(Errno::ENOSPC)
    );
    for h in handles {
        t.release(pid::VM, h.handle).unwrap();
    }
    assert_eq!(t.usage().0, MAX_TASK_OBJECTS + 1);
}

#[test]
fn read_write_lseek_on_descriptors() {
    use proto::file::{AT_POSITION, Whence};
    let mut t = Table::<u32>::new();
    let mut frames = Frames0(0);
    let fd = create(&mut t, A, "/rw");
    // A write at the position grows the object; the position follows when told.
    let (s, f) = t.write_span(A, fd, AT_POSITION, 100).unwrap();
    assert_eq!((s.at, s.n, f.revoke), (0, 100, None));
    assert_eq!(t.frame(s.object, 0), None);
    assert_eq!(t.frame_for_write(s.object, 0, frames.alloc()), Ok(1));
    assert_eq!(t.frame(s.object, 0), Some(1));
    t.set_position(A, fd, 100);
    assert_eq!(t.stat(A, fd), Ok(100));
    // Reads stop at the end.
    assert_eq!(t.read_span(A, fd, 0, 464).unwrap().n, 100);
    assert_eq!(t.read_span(A, fd, AT_POSITION, 464).unwrap().n, 0);
    assert_eq!(t.read_span(A, fd, 1 << 40, 464).unwrap().n, 0);
    // A write past the end clears what a mapping may have left past the old end.
    let (s, f) = t.write_span(A, fd, BLOCK_SIZE + 5, 10).unwrap();
    assert_eq!((s.at, s.n), (BLOCK_SIZE + 5, 10));
    assert_eq!(f.clear.map(|c| (c.frame, c.from)), Some((1, 100)));
    assert_eq!(t.stat(A, fd), Ok(BLOCK_SIZE + 15));
    // Stopped short (no frame for block 1): the object ends where the bytes did.
    t.write_stopped(s.object, 100, BLOCK_SIZE);
    assert_eq!(t.stat(A, fd), Ok(BLOCK_SIZE));
    // Nothing to write changes nothing.
    t.write_span(A, fd, 1 << 30, 0).unwrap();
    assert_eq!(t.stat(A, fd), Ok(BLOCK_SIZE));
    // lseek.
    assert_eq!(t.lseek(A, fd, -10, Whence::End), Ok(BLOCK_SIZE - 10));
    assert_eq!(t.lseek(A, fd, 10, Whence::Cur), Ok(BLOCK_SIZE));
    assert_eq!(t.lseek(A, fd, -1, Whence::Set), Err(Errno::EINVAL));
    assert_eq!(
        t.lseek(A, fd, i64::MAX, Whence::Set),
        Err(Errno::EINVAL),
        "past MAX_SIZE"
    );
    // Errors: another task's number, a read-only descriptor, too far, negative.
    assert_eq!(t.read_span(B, fd, 0, 1).unwrap_err(), Errno::EBADF);
    let (ro, _, _) = t.open(A, &name("/rw"), RDONLY, 0).unwrap();
    assert_eq!(t.write_span(A, ro, 0, 1).unwrap_err(), Errno::EBADF);
    assert_eq!(t.read_span(A, ro, 0, 8).unwrap().n, 8);
    assert_eq!(t.write_span(A, fd, MAX_SIZE, 1).unwrap_err(), Errno::EFBIG);
    assert_eq!(
        t.write_span(A, fd, u64::MAX - 1, 1).unwrap_err(),
        Errno::EINVAL
    );
    // A fork child's copy moves on its own.
    t.lseek(A, fd, 7, Whence::Set).unwrap();
    t.task_fork(A, B).unwrap();
    t.lseek(B, fd, 9, Whence::Set).unwrap();
    assert_eq!(t.lseek(A, fd, 0, Whence::Cur), Ok(7));
}

/// A task's count of the named objects it created (`MAX_TASK_OBJECTS`, kept as a number per
/// task, not counted over every object) goes down when an object goes, not when its name
/// does: an unlinked object another task still holds open still counts.
#[test]
fn created_objects_count_until_they_go() {
    let mut t = Table::<u32>::new();
    let name = |i: usize| Name::new(&alloc::format!("/o{i}")).unwrap();
    for i in 0..MAX_TASK_OBJECTS {
        let (fd, _, _) = t.open(A, &name(i), CREAT | RDWR, 0o600).unwrap();
        t.close(A, fd).unwrap();
    }
    let full = |t: &mut Table<u32>, i: usize| t.open(A, &name(i), CREAT | RDWR, 0o600).map(|_| ());
    assert_eq!(full(&mut t, 1_000), Err(Errno::ENOSPC));
    // B holds object 0 open; every name goes.
    let (held, _, _) = t.open(B, &name(0), RDWR, 0).unwrap();
    for i in 0..MAX_TASK_OBJECTS {
        t.unlink(&name(i)).unwrap();
    }
    // Room for all but the one B holds.
    for i in 1..MAX_TASK_OBJECTS {
        let (fd, _, _) = t.open(A, &name(2_000 + i), CREAT | RDWR, 0o600).unwrap();
        t.close(A, fd).unwrap();
    }
    assert_eq!(full(&mut t, 3_000), Err(Errno::ENOSPC));
    // B lets it go: room for one more.
    t.close(B, held).unwrap();
    assert_eq!(full(&mut t, 3_000), Ok(()));
    assert_eq!(full(&mut t, 3_001), Err(Errno::ENOSPC));
}
