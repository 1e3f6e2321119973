//! Host tests of the protocol: every request and reply round-trips through its wire form,
//! the wire form is the documented one, and no sequence of words makes a decoder panic.

use super::*;

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn vm_requests() -> [VmRequest; 7] {
    [
        VmRequest::Mmap {
            addr: 0x20_0000,
            len: 3 * PAGE_SIZE,
            prot: prot::READ | prot::WRITE,
            flags: map::PRIVATE | map::ANONYMOUS,
            fd: u64::MAX,
            offset: 7,
        },
        VmRequest::Munmap { addr: 1, len: 2 },
        VmRequest::Mprotect {
            addr: 1,
            len: 2,
            prot: 3,
        },
        VmRequest::Vmmap,
        VmRequest::VmStats,
        VmRequest::SpaceInfo { pid: 10 },
        VmRequest::RegionAt {
            pid: 10,
            from: 0x1000,
        },
    ]
}

fn vm_controls() -> [VmControl; 11] {
    [
        VmControl::NewSpace { pid: 10 },
        VmControl::MapImage {
            pid: 10,
            vaddr: 0x40_0000,
            mem_size: 5,
            initrd_offset: 6,
            file_size: 4,
            prot: prot::READ | prot::EXEC,
        },
        VmControl::MapFrame {
            pid: 11,
            vaddr: USER_IPC_BUFFER,
            prot: prot::READ | prot::WRITE,
        },
        VmControl::ForkSpace {
            parent: 10,
            child: 12,
        },
        VmControl::Reset { pid: 13 },
        VmControl::Destroy { pid: 14 },
        VmControl::TakeKills,
        VmControl::SetPager {
            pager: crate::object::Pager::File,
        },
        VmControl::SetName {
            pid: 15,
            name: name("a-sixteen-chars!"),
        },
        VmControl::MapAnon {
            pid: 16,
            vaddr: USER_STACK_TOP - USER_STACK_SIZE,
            len: USER_STACK_SIZE,
            prot: prot::READ | prot::WRITE,
        },
        VmControl::MapObject {
            pid: 17,
            vaddr: 0x40_1234,
            file_size: 0x800,
            prot: prot::READ | prot::WRITE,
            pager: crate::object::Pager::File,
            handle: 3,
            offset: 0x1234,
        },
    ]
}

fn proc_requests() -> [ProcRequest; 15] {
    [
        ProcRequest::Spawn {
            name: name("hello"),
        },
        ProcRequest::Fork {
            sp: 0x1000,
            pc: 0x2000,
        },
        ProcRequest::Exec { name: name("é") },
        ProcRequest::Exit { status: 3 },
        ProcRequest::Exit { status: i32::MIN },
        ProcRequest::Wait { pid: 0 },
        ProcRequest::Kill { pid: 12 },
        ProcRequest::GetPid,
        ProcRequest::PowerOff,
        ProcRequest::Wait { pid: u64::MAX },
        ProcRequest::Sync,
        ProcRequest::SpawnArgs { name: name("anon") },
        ProcRequest::ExecArgs {
            name: name("mmap-file"),
        },
        ProcRequest::TaskAt { from: 0 },
        ProcRequest::Memory,
    ]
}

fn file_requests() -> [FileRequest; 25] {
    let path = |s| file::Path::new(s).unwrap();
    [
        FileRequest::Open {
            path: path("bin/hello"),
            flags: file::open_flags::RDONLY,
        },
        FileRequest::Read {
            fd: 3,
            offset: file::AT_POSITION,
            len: file::READ_MAX as u64,
        },
        FileRequest::Close { fd: 3 },
        FileRequest::Stat {
            path: path("a-path-of-exactly-forty-bytes-0123456789"),
        },
        FileRequest::Write {
            fd: 3,
            offset: 512,
            len: file::READ_MAX as u64,
            total: 4096,
        },
        FileRequest::Lseek {
            fd: 3,
            offset: -1,
            whence: file::Whence::Cur,
        },
        FileRequest::Fstat { fd: 3 },
        FileRequest::Ftruncate { fd: 3, len: 0 },
        FileRequest::Unlink {
            path: path("data/out.bin"),
        },
        FileRequest::FileStats,
        FileRequest::Mkdir {
            path: path("A long directory name"),
        },
        FileRequest::Rmdir { path: path("dir") },
        FileRequest::Rename {
            from: path("a/b.txt"),
            to: path("a-path-of-exactly-forty-bytes-0123456789"),
        },
        FileRequest::ReadDir {
            path: path("/"),
            cookie: file::DIR_END - 1,
        },
        FileRequest::Span {
            fd: 3,
            offset: file::AT_POSITION,
            len: 4096,
            write: false,
        },
        FileRequest::Window { fd: 3 },
        FileRequest::DirectBuffer { fd: 3 },
        FileRequest::DirectRead {
            fd: 3,
            offset: file::AT_POSITION,
            want: 1 << 20,
        },
        FileRequest::DirectWrite {
            fd: 3,
            offset: 512,
            total: 4096,
        },
        FileRequest::Grow {
            fd: 3,
            offset: 1 << 20,
            len: 1024,
            cell: 2,
        },
        FileRequest::SizePage,
        FileRequest::Pipe {
            flags: file::open_flags::CLOEXEC,
        },
        FileRequest::Dup { fd: 1 },
        FileRequest::Dup2 { old: 4, new: 1 },
        FileRequest::Redirected,
    ]
}

fn shm_requests() -> [ShmRequest; 6] {
    [
        ShmRequest::Open {
            name: name("/shm1"),
            flags: file::open_flags::CREAT | file::open_flags::RDWR,
            mode: 0o600,
        },
        ShmRequest::Truncate {
            fd: shm::FIRST_FD,
            size: 4096,
        },
        ShmRequest::Stat { fd: shm::FIRST_FD },
        ShmRequest::Unlink {
            name: name("/shm1"),
        },
        ShmRequest::Close { fd: shm::FIRST_FD },
        ShmRequest::CreateAnon { size: 8192 },
    ]
}

/// Checks one request's wire form against its label's range and field count, then that it
/// decodes back to itself and that every shorter message is `Short`.
fn check_request<T: PartialEq + core::fmt::Debug, const N: usize>(
    req: &T,
    wire: Wire<N>,
    range: core::ops::Range<u64>,
    decode: fn(u64, &[u64]) -> Result<T, ProtoError>,
) {
    let label = Label::try_from(wire.label()).unwrap();
    assert!(range.contains(&wire.label()), "{req:?}");
    // Every request fits the registers but the two that map a memory object (not a fast
    // path: their seventh word travels in the IPC buffer).
    let limit = match label {
        Label::MapObject | Label::MmapObject => abi::message::REGISTER_MRS + 1,
        // A path is 32 words (most in the IPC buffer): one, with a word or two; two.
        Label::Open
        | Label::Stat
        | Label::Unlink
        | Label::Mkdir
        | Label::Rmdir
        | Label::ReadDir => 34,
        Label::Rename => 64,
        _ => abi::message::REGISTER_MRS,
    };
    assert!(wire.mrs().len() <= limit, "{req:?}");
    assert_eq!(decode(wire.label(), wire.mrs()).as_ref(), Ok(req));
    // Words after the fields are ignored.
    let mut long = wire;
    long.push(0xdead);
    assert_eq!(decode(long.label(), long.mrs()).as_ref(), Ok(req));
    for n in 0..wire.mrs().len() {
        assert_eq!(
            decode(wire.label(), &wire.mrs()[..n]),
            Err(ProtoError::Short),
            "{req:?} with {n} words"
        );
    }
}

#[test]
fn labels_round_trip() {
    for &l in Label::ALL {
        assert_eq!(Label::try_from(l as u64), Ok(l));
    }
    assert!(Label::try_from(0).is_err());
}

/// Every label is one interface's: exactly one of the declarations serves it.
#[test]
fn every_label_has_one_interface() {
    use crate::object::{GetObject, MmapObject, Msync, ObjectRequest};
    for &l in Label::ALL {
        let l = l as u64;
        let owners = [
            VmRequest::serves(l),
            VmControl::serves(l),
            ZeroRequest::serves(l),
            ProcRequest::serves(l),
            FileRequest::serves(l),
            ShmRequest::serves(l),
            ObjectRequest::serves(l),
            GetObject::serves(l),
            MmapObject::serves(l),
            Msync::serves(l),
            crate::ServerControl::serves(l),
            crate::ConsoleRequest::serves(l),
        ];
        assert_eq!(owners.iter().filter(|&&o| o).count(), 1, "label {l}");
    }
}

/// A client call sends its request's message and decodes the reply as the request's
/// result type; an errno comes back as itself, a malformed reply as `EIO`.
#[test]
fn client_calls_send_the_request_and_type_the_result() {
    use crate::interface::Transport;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::RefCell;
    struct Mock {
        sent: RefCell<Vec<Wire<64>>>,
        reply: Vec<u64>,
    }
    impl Transport for Mock {
        fn call<T: crate::ReplyBody, const N: usize>(&self, request: &Wire<N>) -> Result<T, Errno> {
            self.sent.borrow_mut().push(request.resized().unwrap());
            crate::reply_result(&self.reply)
        }
    }
    let m = Mock {
        sent: RefCell::new(Vec::new()),
        reply: vec![0, 5, 4096],
    };
    let path = crate::file::Path::new("/big.dat").unwrap();
    assert_eq!(
        FileRequest::open(&m, 0, path),
        Ok(crate::OpenReply { fd: 5, size: 4096 })
    );
    assert_eq!(
        m.sent.borrow()[0],
        FileRequest::Open { flags: 0, path }.encode()
    );
    assert_eq!(FileRequest::read(&m, 5, 0, 10), Ok(5));
    let m = Mock {
        sent: RefCell::new(Vec::new()),
        reply: vec![Errno::EBADF as u64],
    };
    assert_eq!(FileRequest::close(&m, 9), Err(Errno::EBADF));
    let m = Mock {
        sent: RefCell::new(Vec::new()),
        reply: vec![0, 1],
    };
    // `Stat` wants two results: one is malformed.
    assert_eq!(FileRequest::stat(&m, path), Err(Errno::EIO));
}

crate::requests! {
    /// A server answering two interfaces (as the shm server answers its own and the file
    /// calls).
    enum Both {
        Shm(ShmRequest),
        File(FileRequest),
    }
}

#[test]
fn a_server_decodes_each_label_by_its_interface() {
    let r = ShmRequest::Stat { fd: 3 };
    assert_eq!(
        Both::decode(r.encode().label(), r.encode().mrs()),
        Ok(Both::Shm(r))
    );
    let f = FileRequest::Fstat { fd: 3 };
    assert_eq!(
        Both::decode(f.encode().label(), f.encode().mrs()),
        Ok(Both::File(f))
    );
    assert_eq!(
        Both::decode(Label::GetChunk as u64, &[]),
        Err(ProtoError::UnknownLabel(Label::GetChunk as u64))
    );
    assert_eq!(
        Both::decode(Label::Read as u64, &[1]),
        Err(ProtoError::Short)
    );
}

#[test]
fn every_request_round_trips() {
    for r in vm_requests() {
        check_request(&r, r.encode(), 100..200, VmRequest::decode);
    }
    for r in vm_controls() {
        check_request(&r, r.encode(), 200..300, VmControl::decode);
    }
    let z = ZeroRequest::GetChunk;
    check_request(&z, z.encode(), 300..400, ZeroRequest::decode);
    for r in proc_requests() {
        // The 550s are process requests added later (argument vectors).
        let range = if r.encode().label() >= 550 {
            550..560
        } else {
            400..500
        };
        check_request(&r, r.encode(), range, ProcRequest::decode);
    }
    for r in file_requests() {
        check_request(&r, r.encode(), 500..600, FileRequest::decode);
    }
    for r in shm_requests() {
        check_request(&r, r.encode(), 700..800, ShmRequest::decode);
    }
}

/// One encoded sample of every request.
fn all_requests() -> impl Iterator<Item = Wire<64>> {
    let big = |w: Wire| w.resized::<64>().unwrap();
    vm_requests()
        .map(|r| big(r.encode()))
        .into_iter()
        .chain(vm_controls().map(|r| big(r.encode())))
        .chain([big(ZeroRequest::GetChunk.encode())])
        .chain(proc_requests().map(|r| big(r.encode())))
        .chain(file_requests().map(|r| r.encode()))
        .chain(object_samples().map(big))
        .chain(shm_requests().map(|r| big(r.encode())))
        .chain(
            [
                crate::ServerControl::TaskExit { pid: 10 },
                crate::ServerControl::TaskFork {
                    parent: 10,
                    child: 11,
                },
                crate::ServerControl::TaskExec { pid: 10 },
                crate::ServerControl::SyncAll,
                crate::ServerControl::Descriptors,
            ]
            .map(|r| big(r.encode())),
        )
        .chain(
            [
                crate::ConsoleRequest::Foreground { pid: 10 },
                crate::ConsoleRequest::Stats,
            ]
            .map(|r| big(r.encode())),
        )
}

/// One encoded sample of each memory-object message (object.rs tests the round trips).
fn object_samples() -> [Wire; 9] {
    use crate::object::{GetObject, MmapObject, Msync, ObjectRequest, Pager};
    [
        ObjectRequest::Page {
            handle: 1,
            block: 2,
            write: true,
        }
        .encode(),
        ObjectRequest::Dirty {
            handle: 1,
            block: 2,
        }
        .encode(),
        ObjectRequest::Sync {
            handle: 1,
            first: 2,
            count: 3,
        }
        .encode(),
        ObjectRequest::Release { handle: 1 }.encode(),
        ObjectRequest::Claim { handle: 1, pid: 10 }.encode(),
        GetObject {
            fd: 3,
            writable: false,
        }
        .encode(),
        MmapObject {
            addr: 0,
            len: 4096,
            prot: 1,
            flags: 1,
            pager: Pager::File,
            handle: 1,
            offset: 0,
        }
        .encode(),
        Msync {
            addr: 0,
            len: 4096,
            flags: crate::object::ms::SYNC,
        }
        .encode(),
        Msync {
            addr: 4096,
            len: 4096,
            flags: crate::object::ms::ASYNC | crate::object::ms::INVALIDATE,
        }
        .encode(),
    ]
}

#[test]
fn every_label_has_a_request() {
    for &l in Label::ALL {
        assert!(
            all_requests().any(|w| w.label() == l as u64),
            "{l:?} has no request"
        );
    }
}

#[test]
fn wire_format_is_the_documented_one() {
    let m = VmRequest::Mmap {
        addr: 1,
        len: 2,
        prot: 3,
        flags: 4,
        fd: 5,
        offset: 6,
    }
    .encode();
    assert_eq!((m.label(), m.mrs()), (100, &[1, 2, 3, 4, 5, 6][..]));
    let i = VmControl::MapImage {
        pid: 1,
        vaddr: 2,
        mem_size: 3,
        initrd_offset: 4,
        file_size: 5,
        prot: 6,
    }
    .encode();
    assert_eq!((i.label(), i.mrs()), (201, &[1, 2, 3, 4, 5, 6][..]));
    let s = VmControl::SetName {
        pid: 10,
        name: name("abcdefghij"),
    }
    .encode();
    assert_eq!(
        s.mrs(),
        &[
            10,
            u64::from_le_bytes(*b"abcdefgh"),
            u64::from_le_bytes(*b"ij\0\0\0\0\0\0")
        ]
    );
    let f = VmControl::ForkSpace {
        parent: 10,
        child: 11,
    }
    .encode();
    assert_eq!((f.label(), f.mrs()), (203, &[10, 11][..]));
    let e = ProcRequest::Exit { status: -1 }.encode();
    assert_eq!((e.label(), e.mrs()), (403, &[u64::MAX][..]));
    let w = encode_reply(&Ok(WaitReply {
        pid: 12,
        how: WaitStatus::Segv,
        value: 0x1234,
    }));
    assert_eq!((w.label(), w.mrs()), (0, &[0, 12, 2, 0x1234][..]));
    let k = encode_reply(&Ok(Some(KillRecord {
        pid: 12,
        kind: Kill::Bus,
        addr: 8,
    })));
    assert_eq!(k.mrs(), &[0, 12, 2, 8]);
    assert_eq!(
        encode_reply::<Option<KillRecord>>(&Ok(None)).mrs(),
        &[0, 0, 0, 0]
    );
    let g = encode_reply(&Ok(GetPidReply { pid: 12, parent: 1 }));
    assert_eq!(g.mrs(), &[0, 12, 1]);
    assert_eq!(encode_reply(&Ok(0x5000u64)).mrs(), &[0, 0x5000]);
    assert_eq!(encode_reply::<()>(&Err(Errno::ENOMEM)).mrs(), &[12]);
}

#[test]
fn carried_capabilities() {
    for c in vm_controls() {
        let expected = matches!(
            c,
            VmControl::NewSpace { .. }
                | VmControl::MapFrame { .. }
                | VmControl::ForkSpace { .. }
                | VmControl::SetPager { .. }
        );
        assert_eq!(c.carries_cap(), expected, "{c:?}");
    }
}

#[test]
fn unknown_labels() {
    for label in [
        0,
        1,
        99,
        109,
        199,
        211,
        299,
        301,
        399,
        411,
        499,
        539,
        999,
        u64::MAX,
    ] {
        let words = [1; 6];
        assert_eq!(
            VmRequest::decode(label, &words),
            Err(ProtoError::UnknownLabel(label))
        );
        assert_eq!(
            VmControl::decode(label, &words),
            Err(ProtoError::UnknownLabel(label))
        );
        assert_eq!(
            ZeroRequest::decode(label, &words),
            Err(ProtoError::UnknownLabel(label))
        );
        assert_eq!(
            ProcRequest::decode(label, &words),
            Err(ProtoError::UnknownLabel(label))
        );
        assert_eq!(
            FileRequest::decode(label, &words),
            Err(ProtoError::UnknownLabel(label))
        );
        assert_eq!(
            ShmRequest::decode(label, &words),
            Err(ProtoError::UnknownLabel(label))
        );
    }
    // A label of another party is unknown to this one.
    for w in all_requests() {
        let (label, words) = (w.label(), w.mrs());
        let known = [
            VmRequest::decode(label, words).is_ok(),
            VmControl::decode(label, words).is_ok(),
            ZeroRequest::decode(label, words).is_ok(),
            ProcRequest::decode(label, words).is_ok(),
            FileRequest::decode(label, words).is_ok(),
            crate::object::ObjectRequest::decode(label, words).is_ok(),
            crate::object::GetObject::decode(label, words).is_ok(),
            crate::object::MmapObject::decode(label, words).is_ok(),
            crate::object::Msync::decode(label, words).is_ok(),
            ShmRequest::decode(label, words).is_ok(),
            crate::ServerControl::decode(label, words).is_ok(),
            crate::ConsoleRequest::decode(label, words).is_ok(),
        ];
        assert_eq!(known.iter().filter(|&&k| k).count(), 1, "{label}");
        assert_eq!(Errno::from(ProtoError::UnknownLabel(label)), Errno::ENOSYS);
    }
    assert_eq!(Errno::from(ProtoError::Short), Errno::EINVAL);
    assert_eq!(Errno::from(ProtoError::BadField), Errno::EINVAL);
}

#[test]
fn names() {
    for s in ["init", "vm", "a-sixteen-chars!", "é"] {
        let n = name(s);
        assert_eq!(n.as_str(), s);
        assert_eq!(n.as_bytes(), s.as_bytes());
        assert_eq!(Name::from_words(n.to_words()), Ok(n));
    }
    for bad in ["", "seventeen chars!!", "a\0b"] {
        assert_eq!(Name::new(bad), Err(ProtoError::BadField), "{bad:?}");
    }
    let bad_words = [
        [0, 0],                                        // empty
        [u64::from_le_bytes(*b"a\0b\0\0\0\0\0"), 0],   // a byte after the end
        [u64::from(b'a'), 1],                          // a byte after the end, second word
        [0xff, 0],                                     // not UTF-8
        [u64::from_le_bytes(*b"ab\xc3\0\0\0\0\0"), 0], // cut UTF-8
    ];
    for w in bad_words {
        assert_eq!(Name::from_words(w), Err(ProtoError::BadField), "{w:x?}");
        assert_eq!(
            ProcRequest::decode(Label::Spawn as u64, &w),
            Err(ProtoError::BadField)
        );
        assert_eq!(
            VmControl::decode(Label::SetName as u64, &[10, w[0], w[1]]),
            Err(ProtoError::BadField)
        );
    }
}

#[test]
fn out_of_range_fields() {
    for status in [1u64 << 31, 1 << 32, u64::MAX << 32 >> 1] {
        assert_eq!(
            ProcRequest::decode(Label::Exit as u64, &[status]),
            Err(ProtoError::BadField),
            "{status:#x}"
        );
    }
    for how in [0, 5, u64::MAX] {
        assert_eq!(
            decode_reply::<WaitReply>(&[0, 12, how, 0]),
            Err(ProtoError::BadField)
        );
    }
    for kind in [0, 3, u64::MAX] {
        assert_eq!(
            decode_reply::<Option<KillRecord>>(&[0, 12, kind, 0]),
            Err(ProtoError::BadField)
        );
    }
    // "None left" is three zeroes.
    assert_eq!(
        decode_reply::<Option<KillRecord>>(&[0, 0, 1, 0]),
        Err(ProtoError::BadField)
    );
    assert_eq!(decode_reply::<()>(&[9999]), Err(ProtoError::BadField));
}

#[test]
fn replies_round_trip() {
    fn check<T: ReplyBody + PartialEq + core::fmt::Debug + Copy>(body: T) {
        let w = encode_reply(&Ok(body));
        assert_eq!(w.label(), 0);
        assert!(w.mrs().len() <= MAX_WORDS);
        assert_eq!(decode_reply::<T>(w.mrs()), Ok(Ok(body)));
        assert_eq!(reply_result::<T>(w.mrs()), Ok(body));
        for n in 0..w.mrs().len() {
            assert_eq!(decode_reply::<T>(&w.mrs()[..n]), Err(ProtoError::Short));
            assert_eq!(reply_result::<T>(&w.mrs()[..n]), Err(Errno::EIO));
        }
        for &e in Errno::ALL {
            let w = encode_reply::<T>(&Err(e));
            assert_eq!(w.mrs(), &[e as u64]);
            assert_eq!(decode_reply::<T>(w.mrs()), Ok(Err(e)));
        }
    }
    check(());
    check(0x20_0000u64);
    check(VmStats {
        faults: 1,
        pages_in_use: 2,
        pages_zero_filled: 3,
        pages_copied: 4,
        zero_page_maps: 5,
        chunks: 6,
        slots: 7,
        heap_bytes: 8,
    });
    check::<Option<KillRecord>>(None);
    for &kind in Kill::ALL {
        check(Some(KillRecord {
            pid: 10,
            kind,
            addr: 0xdead_0000,
        }));
    }
    for &how in WaitStatus::ALL {
        check(WaitReply {
            pid: 11,
            how,
            value: u64::MAX,
        });
    }
    check(GetPidReply { pid: 12, parent: 1 });
    check(crate::FileStats {
        object_requests: 1,
        object_pages: 16,
        blocks_read: 2,
        sectors_read: 3,
        sectors_written: 4,
        hits: 5,
        misses: 6,
        evicted: 7,
        written_back: 8,
        cached: 9,
        budget: 256,
        disk_requests: 10,
        max_in_flight: 3,
        async_reads: 4,
        out_of_order: 5,
    });
    assert_eq!(VmStats::decode(&[1, 2]), Err(ProtoError::Short));
}

#[test]
fn wire_capacity() {
    assert!(Wire::<MAX_WORDS>::from_words(1, &[0; MAX_WORDS]).is_some());
    assert!(Wire::<MAX_WORDS>::from_words(1, &[0; MAX_WORDS + 1]).is_none());
    let mut w = Wire::<MAX_WORDS>::from_words(1, &[0; MAX_WORDS]).unwrap();
    assert!(!w.push(1));
    assert_eq!(w.mrs().len(), MAX_WORDS);
}

/// xorshift64 (Marsaglia), fixed seed: the same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Mostly small values and the edges, sometimes anything.
    fn word(&mut self) -> u64 {
        match self.next() % 8 {
            0 => 0,
            1 => u64::MAX,
            2 => self.next() % 8,
            3 => i64::from(self.next() as i32) as u64,
            4 => u64::from_le_bytes(*b"hello\0\0\0"),
            _ => self.next(),
        }
    }
}

/// If `decoded` is a value, encoding it gives back the words it came from (every field is
/// read exactly one way).
fn check_canonical<T: core::fmt::Debug>(
    label: u64,
    words: &[u64],
    decoded: Result<T, ProtoError>,
    encode: impl Fn(&T) -> Wire,
) {
    if let Ok(v) = decoded {
        let w = encode(&v);
        assert_eq!(w.label(), label, "{v:?}");
        assert_eq!(w.mrs(), &words[..w.mrs().len()], "{v:?}");
    }
}

fn check_reply_canonical<T: ReplyBody + core::fmt::Debug>(words: &[u64]) {
    if let Ok(r) = decode_reply::<T>(words) {
        let w = encode_reply(&r);
        assert_eq!(w.mrs(), &words[..w.mrs().len()], "{r:?}");
    }
}

#[test]
fn random_words_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0;
    for _ in 0..20_000 {
        let label = if rng.next().is_multiple_of(4) {
            rng.word()
        } else {
            Label::ALL[(rng.next() % Label::ALL.len() as u64) as usize] as u64
        };
        let len = (rng.next() % (MAX_WORDS as u64 + 2)) as usize;
        let mut words = [0u64; MAX_WORDS + 1];
        for w in &mut words[..len] {
            *w = rng.word();
        }
        let words = &words[..len];
        let v = VmRequest::decode(label, words);
        let c = VmControl::decode(label, words);
        let z = ZeroRequest::decode(label, words);
        let p = ProcRequest::decode(label, words);
        let sc = crate::ServerControl::decode(label, words);
        decoded += [v.is_ok(), c.is_ok(), z.is_ok(), p.is_ok(), sc.is_ok()]
            .iter()
            .filter(|&&ok| ok)
            .count();
        check_canonical(label, words, v, VmRequest::encode);
        check_canonical(label, words, c, VmControl::encode);
        check_canonical(label, words, z, ZeroRequest::encode);
        check_canonical(label, words, p, ProcRequest::encode);
        check_reply_canonical::<()>(words);
        check_reply_canonical::<u64>(words);
        check_reply_canonical::<VmStats>(words);
        check_reply_canonical::<Option<KillRecord>>(words);
        check_reply_canonical::<WaitReply>(words);
        check_reply_canonical::<GetPidReply>(words);
        check_reply_canonical::<crate::FileStats>(words);
        let _ = FileRequest::decode(label, words);
        let sh = ShmRequest::decode(label, words);
        check_canonical(label, words, sh, ShmRequest::encode);
        check_canonical(label, words, sc, crate::ServerControl::encode);
        check_reply_canonical::<crate::DescriptorCount>(words);
        let _ = Name::from_words([rng.word(), rng.word()]);
    }
    // The cases reach the decoders' success paths, not only their error paths.
    // (The file protocol's labels, which these decoders refuse, dilute it: 4,885 with the pipe calls.)
    assert!(decoded > 4_500, "{decoded}");
}

#[test]
fn budgets_scale_with_ram() {
    use crate::startup::*;
    // 512 MiB and more: the fixed figures.
    for ram in [512u64 << 20, 2 << 30] {
        let b = Budgets::for_ram(ram);
        assert_eq!(b.vm_heap, VM_HEAP_SIZE);
        assert_eq!(b.vm_tables_bits, 25);
        assert_eq!(b.file_cache_blocks, FILE_CACHE_BLOCKS);
        assert_eq!(b.file_cache_max, FILE_CACHE_MAX_BLOCKS);
        assert_eq!(b.shm_bits, 25);
    }
    // 128 MiB: everything the servers get fits in well under RAM, with a cache that holds
    // big.dat (16 MiB) and more.
    let b = Budgets::for_ram(128 << 20);
    let cache = b.file_cache_blocks * crate::object::BLOCK_SIZE;
    assert!(cache > 16 << 20, "{cache}");
    let total =
        b.vm_heap + (1 << b.vm_tables_bits) + b.file_heap + cache + b.shm_heap + (1 << b.shm_bits);
    assert!(total <= 64 << 20, "{total}");
    // Tiny or absurd RAM figures give sane budgets.
    for ram in [0, 1, 64 << 20, u64::MAX] {
        let b = Budgets::for_ram(ram);
        assert!(b.vm_heap >= 8 << 20 && b.vm_heap <= VM_HEAP_SIZE);
        assert!((22..=25).contains(&b.vm_tables_bits));
        assert!(b.file_cache_blocks >= 16 && b.file_cache_blocks <= b.file_cache_max);
        assert!(b.file_cache_max <= FILE_CACHE_MAX_BLOCKS);
    }
}

#[test]
fn task_and_region_listings_round_trip_and_check_their_fields() {
    use crate::{RegionInfo, RegionKind, SpaceInfo, TaskEntry, TaskState};
    let t = TaskEntry {
        pid: 12,
        parent: 11,
        state: TaskState::Zombie,
        name: Name::new("fork-cow").unwrap(),
    };
    let w = encode_reply(&Ok(t));
    assert_eq!(decode_reply::<TaskEntry>(w.mrs()), Ok(Ok(t)));
    let r = RegionInfo {
        start: 0x1000,
        end: 0x3000,
        prot: 5,
        kind: RegionKind::Image,
        shared: false,
        resident: 2,
    };
    let w = encode_reply(&Ok(r));
    assert_eq!(decode_reply::<RegionInfo>(w.mrs()), Ok(Ok(r)));
    let m = crate::MemoryReply {
        ram: 512 << 20,
        init_free: 1,
        zero: 2,
        vm_heap: 3,
        vm_tables: 4,
        file_heap: 5,
        shm: 6,
    };
    let w = encode_reply(&Ok(m));
    assert_eq!(decode_reply::<crate::MemoryReply>(w.mrs()), Ok(Ok(m)));
    assert_eq!(
        decode_reply::<crate::MemoryReply>(&[0, 1, 2, 3]),
        Err(ProtoError::Short)
    );
    let s = SpaceInfo {
        regions: 7,
        resident: 40,
    };
    let w = encode_reply(&Ok(s));
    assert_eq!(decode_reply::<SpaceInfo>(w.mrs()), Ok(Ok(s)));
    // Forged replies: a bad state, kind, flag, range or name is an error, never a value.
    let bad = |words: &[u64]| decode_reply::<TaskEntry>(words);
    assert_eq!(bad(&[0, 12, 11, 3, 1, 0]), Err(ProtoError::BadField));
    assert_eq!(bad(&[0, 12, 11, 1, 0, 0]), Err(ProtoError::BadField));
    assert_eq!(bad(&[0, 12, 11, 1]), Err(ProtoError::Short));
    let bad = |words: &[u64]| decode_reply::<RegionInfo>(words);
    assert_eq!(bad(&[0, 0, 1, 0, 9, 0, 0]), Err(ProtoError::BadField));
    assert_eq!(bad(&[0, 0, 1, 0, 1, 2, 0]), Err(ProtoError::BadField));
    assert_eq!(bad(&[0, 5, 1, 0, 1, 0, 0]), Err(ProtoError::BadField));
    assert_eq!(bad(&[0, 0, 1, 8, 1, 0, 0]), Err(ProtoError::BadField));
    assert_eq!(bad(&[0, 0, 1, 0, 1, 0]), Err(ProtoError::Short));
}
