//! Host tests: the scans against the byte loop, the stream against a mock backend that
//! records every call.

use crate::{
    BUFSIZ, Backend, Stream, copy, copy_through, copy_through_bytewise, find_byte,
    find_byte_bytewise, zero,
};
use proto::Errno;
use std::vec::Vec;

/// Fixed-seed xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn find_byte_agrees_with_the_byte_loop() {
    let mut rng = Rng(0x1234_5678);
    for len in 0..200 {
        for _ in 0..20 {
            // Few distinct values, so that hits and near-hits (0x0b, 0x09, 0x8a) are common.
            let hay: Vec<u8> = (0..len)
                .map(|_| [0x0a, 0x0b, 0x09, 0x8a, 0x00, 0xff, 0x4a][(rng.next() % 7) as usize])
                .collect();
            for byte in [0x0a, 0x00, 0xff, 0x8a] {
                assert_eq!(
                    find_byte(&hay, byte),
                    find_byte_bytewise(&hay, byte),
                    "{hay:?}"
                );
            }
        }
    }
    // At every offset of a long run, and the borrow case (0x0a after 0x0b: a false hit
    // above a true one must not win).
    for at in 0..100 {
        let mut hay = std::vec![0x0b_u8; 100];
        hay[at] = 0x0a;
        assert_eq!(find_byte(&hay, 0x0a), Some(at));
        assert_eq!(find_byte(&hay[..at], 0x0a), None);
    }
}

#[test]
fn copy_through_agrees_with_the_byte_loop_and_writes_nothing_past_the_line() {
    let mut rng = Rng(0xfeed);
    for len in 0..300 {
        for round in 0..12 {
            // Binary data with zero bytes and near-hits; rarer newlines in later rounds, so
            // that whole 64-byte steps go by before a match, and none at all in the last.
            let src: Vec<u8> = (0..len)
                .map(|_| match rng.next() % (4 + 40 * round) {
                    0 if round < 11 => 0x0a,
                    1 => 0x00,
                    2 => 0x0b,
                    3 => 0x8a,
                    _ => rng.next() as u8 | 0x10,
                })
                .collect();
            let mut got = std::vec![0xee_u8; len + 8];
            let mut want = got.clone();
            assert_eq!(
                copy_through(&mut got, &src, 0x0a),
                copy_through_bytewise(&mut want, &src, 0x0a),
                "{src:?}"
            );
            assert_eq!(got, want, "bytes past the line were written: {src:?}");
        }
    }
    // The newline at every offset of a long run, after a false hit's borrow (0x0b).
    for at in 0..260 {
        let mut src = std::vec![0x0b_u8; 260];
        src[at] = 0x0a;
        let mut got = std::vec![0u8; 260];
        assert_eq!(copy_through(&mut got, &src, 0x0a), (at + 1, true));
        assert_eq!(got[..=at], src[..=at]);
        assert!(got[at + 1..].iter().all(|&b| b == 0));
    }
}

#[test]
fn copy_copies_every_length() {
    let mut rng = Rng(99);
    for len in [0, 1, 7, 63, 64, 65, 127, 128, 1000, 4096, 4099] {
        let src: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let mut dst = std::vec![0u8; len];
        copy(&mut dst, &src);
        assert_eq!(dst, src);
    }
}

#[test]
fn zero_clears_every_length() {
    for len in [0, 1, 63, 64, 65, 200, 65536] {
        let mut v = std::vec![0xa5u8; len + 2];
        zero(&mut v[1..=len]);
        assert_eq!(v[0], 0xa5);
        assert_eq!(v[len + 1], 0xa5);
        assert!(v[1..=len].iter().all(|&b| b == 0));
    }
}

/// A file in memory that records the backend calls.
#[derive(Default)]
struct Mock {
    data: Vec<u8>,
    pos: usize,
    reads: usize,
    writes: Vec<usize>,
    /// Fail every call from now on.
    broken: Option<Errno>,
}

impl Backend for Mock {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        self.reads += 1;
        let n = buf.len().min(self.data.len().saturating_sub(self.pos));
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
    fn write(&mut self, data: &[u8]) -> Result<(), Errno> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        self.writes.push(data.len());
        let end = self.pos + data.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[self.pos..end].copy_from_slice(data);
        self.pos = end;
        Ok(())
    }
    fn seek_by(&mut self, delta: i64) -> Result<(), Errno> {
        self.pos = self
            .pos
            .checked_add_signed(delta as isize)
            .ok_or(Errno::EINVAL)?;
        Ok(())
    }
}

fn lines_file() -> Vec<u8> {
    // Lines of every length from 0 to 9,000 bytes (longer than the buffer), and no
    // newline at the very end.
    let mut v = Vec::new();
    for (i, len) in [0usize, 1, 5, 4095, 4096, 4097, 9000, 17, 0, 3]
        .iter()
        .enumerate()
    {
        v.extend((0..*len).map(|j| b'a' + ((i + j) % 26) as u8));
        v.push(b'\n');
    }
    v.extend_from_slice(b"tail");
    v
}

#[test]
fn gets_returns_lines_and_pieces_of_long_ones() {
    let file = lines_file();
    for out_len in [1, 2, 100, 1024, 5000, 20000] {
        let mut s = Stream::new(Mock {
            data: file.clone(),
            ..Mock::default()
        });
        let mut got = Vec::new();
        let mut out = std::vec![0u8; out_len];
        loop {
            let n = s.gets(&mut out).unwrap();
            if n == 0 {
                break;
            }
            let piece = &out[..n];
            // A piece ends at its first newline or fills `out`.
            let nl = piece.iter().position(|&b| b == b'\n');
            assert!(
                nl == Some(n - 1)
                    || (nl.is_none() && (n == out_len || got.len() + n == file.len()))
            );
            got.extend_from_slice(piece);
        }
        assert_eq!(got, file, "out_len {out_len}");
        assert!(s.eof());
        // One backend read per 4 KiB (and one that found the end).
        assert_eq!(s.backend().reads, file.len().div_ceil(BUFSIZ) + 1);
    }
}

#[test]
fn read_buffers_small_reads_and_passes_large_ones() {
    let file: Vec<u8> = (0..20000u32).map(|i| (i * 7) as u8).collect();
    let mut s = Stream::new(Mock {
        data: file.clone(),
        ..Mock::default()
    });
    let mut got = Vec::new();
    let mut small = [0u8; 100];
    for _ in 0..10 {
        let n = s.read(&mut small).unwrap();
        got.extend_from_slice(&small[..n]);
    }
    assert_eq!(s.backend().reads, 1);
    let mut big = std::vec![0u8; 10000];
    let n = s.read(&mut big).unwrap();
    got.extend_from_slice(&big[..n]);
    assert_eq!(n, 10000);
    // The buffer's rest (3,096 bytes), then one read straight into `big` for the rest.
    assert_eq!(s.backend().reads, 2);
    loop {
        let n = s.read(&mut small).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&small[..n]);
    }
    assert_eq!(got, file);
}

#[test]
fn writes_go_out_a_whole_buffer_at_a_time() {
    let mut s = Stream::new(Mock::default());
    let mut want = Vec::new();
    for i in 0..1000u32 {
        s.print(format_args!("line {i}: {}\n", i * 3)).unwrap();
        want.extend_from_slice(std::format!("line {i}: {}\n", i * 3).as_bytes());
    }
    s.puts("no newline").unwrap();
    want.extend_from_slice(b"no newline");
    // A write larger than the buffer: the buffer is topped up and goes, then the rest.
    let big = std::vec![b'x'; 3 * BUFSIZ + 5];
    assert_eq!(s.write(&big), Ok(big.len()));
    want.extend_from_slice(&big);
    // Nothing out yet but whole buffers (and the large write).
    assert!(s.backend().writes.iter().all(|&n| n >= BUFSIZ));
    let (m, r) = s.finish();
    assert_eq!(r, Ok(()));
    assert_eq!(m.data, want);
}

#[test]
fn reading_then_writing_writes_where_reading_stopped() {
    let mut s = Stream::new(Mock {
        data: b"hello\nworld\n".to_vec(),
        ..Mock::default()
    });
    let mut out = [0u8; 16];
    assert_eq!(s.gets(&mut out), Ok(6));
    s.puts("WORLD").unwrap();
    s.flush().unwrap();
    assert_eq!(s.backend().data, b"hello\nWORLD\n");
    // And back to reading: the rest after what was written.
    assert_eq!(s.gets(&mut out), Ok(1));
    assert_eq!(&out[..1], b"\n");
}

#[test]
fn errors_stick_and_are_reported() {
    let mut s = Stream::new(Mock::default());
    s.puts("abc").unwrap();
    let (mut m, r) = {
        let mut s = s;
        s.flush().unwrap();
        s.finish()
    };
    assert_eq!(r, Ok(()));
    m.broken = Some(Errno::ENOSPC);
    let mut s = Stream::new(m);
    s.puts("x").unwrap();
    assert_eq!(s.flush(), Err(Errno::ENOSPC));
    assert_eq!(s.error(), Some(Errno::ENOSPC));
    let mut out = [0u8; 4];
    assert_eq!(s.gets(&mut out), Err(Errno::ENOSPC));
    let (_, r) = s.finish();
    assert_eq!(r, Ok(()));
}
