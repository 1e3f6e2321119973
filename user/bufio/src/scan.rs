//! The byte scan and the copy under stdio and `read`/`write`.

/// The index of the first `byte` in `hay`. AArch64: 64 bytes a step (four NEON compares
/// folded into one test), then the step that matched a word at a time; elsewhere and for
/// the last bytes: a 64-bit word a step (the "has zero byte" test on `word ^ pattern`).
pub fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    #[cfg(target_arch = "aarch64")]
    {
        let (found, from) = neon::find(hay, byte);
        if found.is_some() {
            return found;
        }
        find_words(&hay[from..], byte).map(|i| from + i)
    }
    #[cfg(not(target_arch = "aarch64"))]
    find_words(hay, byte)
}

/// The plain loop, a byte at a time (the tests' reference, and the figure to compare).
pub fn find_byte_bytewise(hay: &[u8], byte: u8) -> Option<usize> {
    hay.iter().position(|&b| b == byte)
}

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Word at a time: for `x = word ^ (byte * LOW)`, `(x - LOW) & !x & HIGH` has the high bit
/// of the lowest zero byte of `x` set (bits above it may be false hits, below it never),
/// so its trailing zeros give the first match in memory order (little-endian). The last
/// bytes (fewer than a word) are one more word, ending at the end of `hay` and overlapping
/// the words before: its bytes already looked at hold no match, and false hits lie only
/// above a true one, so its lowest hit is still the first match.
fn find_words(hay: &[u8], byte: u8) -> Option<usize> {
    let pattern = LOW * u64::from(byte);
    let hit = |w: u64| {
        let x = w ^ pattern;
        x.wrapping_sub(LOW) & !x & HIGH
    };
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let h = hit(load_word(c));
        if h != 0 {
            return Some(at + (h.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = chunks.remainder().len();
    if rest == 0 {
        return None;
    }
    if hay.len() >= 8 {
        let last = hay.len() - 8;
        let h = hit(load_word(&hay[last..]));
        return (h != 0).then(|| last + (h.trailing_zeros() / 8) as usize);
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|i| at + i)
}

/// The first 8 bytes of `c` (at least 8) as a little-endian word: one `ldr` on AArch64,
/// where the target's strict alignment makes `from_le_bytes` eight byte loads and seven
/// `orr`s (EL0 runs with alignment checking off: a load at any address is fine).
#[inline(always)]
fn load_word(c: &[u8]) -> u64 {
    let c = &c[..8];
    #[cfg(target_arch = "aarch64")]
    {
        let w: u64;
        // SAFETY: reads the 8 bytes of `c` (borrowed for the call), at whatever alignment
        // (alignment checking is off at EL0); no register but `w` is written.
        unsafe {
            core::arch::asm!(
                "ldr {w}, [{p}]",
                w = out(reg) w,
                p = in(reg) c.as_ptr(),
                options(nostack, readonly, pure, preserves_flags),
            );
        }
        w
    }
    #[cfg(not(target_arch = "aarch64"))]
    u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
}

/// Stores `w` (little-endian) into the first 8 bytes of `d` (at least 8): one `str` (see
/// [`load_word`]).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn store_word(d: &mut [u8], w: u64) {
    let d = &mut d[..8];
    // SAFETY: writes the 8 bytes of `d` (borrowed mutably: no other reference to them
    // lives), at whatever alignment (alignment checking is off at EL0).
    unsafe {
        core::arch::asm!(
            "str {w}, [{p}]",
            w = in(reg) w,
            p = in(reg) d.as_mut_ptr(),
            options(nostack, preserves_flags),
        );
    }
}

/// `fgets`'s step: copies `src` into `dst` up to and including the first `byte`, or all of
/// it: (the bytes copied, whether `byte` ended them). `dst` must be at least as long as
/// `src`; nothing of `dst` past the bytes copied is written. On AArch64 the whole 64-byte
/// steps before the match are scanned and copied in one pass (the compare and the copy
/// share the loads: `neon::copy_clear`), the rest by [`find_words`] and [`copy`].
pub fn copy_through(dst: &mut [u8], src: &[u8], byte: u8) -> (usize, bool) {
    assert!(dst.len() >= src.len(), "copy_through: dst too short");
    #[cfg(target_arch = "aarch64")]
    let from = neon::copy_clear(dst, src, byte);
    #[cfg(not(target_arch = "aarch64"))]
    let from = 0;
    let (n, found) = match find_words(&src[from..], byte) {
        Some(i) => (from + i + 1, true),
        None => (src.len(), false),
    };
    copy(&mut dst[from..n], &src[from..n]);
    (n, found)
}

/// The plain loop for [`copy_through`] (the tests' reference).
pub fn copy_through_bytewise(dst: &mut [u8], src: &[u8], byte: u8) -> (usize, bool) {
    let (n, found) = match find_byte_bytewise(src, byte) {
        Some(i) => (i + 1, true),
        None => (src.len(), false),
    };
    dst[..n].copy_from_slice(&src[..n]);
    (n, found)
}

/// `dst.copy_from_slice(src)` (same lengths), 64 bytes a step on AArch64 (`ldp q`/`stp q`
/// pairs). The target's `memcpy` goes a word at a time; this is the copy of every `read`
/// and `write` on the mapped path and of stdio's buffer.
pub fn copy(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy: lengths differ");
    #[cfg(target_arch = "aarch64")]
    neon::copy(dst, src);
    #[cfg(not(target_arch = "aarch64"))]
    dst.copy_from_slice(src);
}

/// `dst.fill(0)`, 64 bytes a step on AArch64 (`stp q` pairs of a zero register): the
/// page cache's new blocks. The target's `memset` goes a word at a time.
pub fn zero(dst: &mut [u8]) {
    #[cfg(target_arch = "aarch64")]
    let done = neon::zero64(dst);
    #[cfg(not(target_arch = "aarch64"))]
    let done = 0;
    dst[done..].fill(0);
}

#[cfg(target_arch = "aarch64")]
mod neon {
    //! Inline assembly, not the NEON intrinsics: on this strict-alignment target LLVM
    //! turns `vld1q_u8` of a `*const u8` into sixteen byte loads (`filebench`'s
    //! `sum_words` says the same). EL0 runs with alignment checking off, so `ldp q`/`ldr q`
    //! of normal memory at any address are fine.

    /// 64 bytes a step: (the index of the first `byte` in the whole steps of `hay`, or
    /// `None`; where the steps end, when none was found: the caller searches the rest).
    pub fn find(hay: &[u8], byte: u8) -> (Option<usize>, usize) {
        let steps = hay.len() / 64;
        if steps == 0 {
            return (None, 0);
        }
        let left: usize;
        // SAFETY: reads `steps * 64` bytes from `hay`'s start, all inside `hay` (borrowed
        // for the call); FP/SIMD is enabled for EL0 and every vector register used is
        // declared clobbered. `left` counts the steps not taken when a match stopped it.
        unsafe {
            core::arch::asm!(
                "dup v16.16b, {b:w}",
                "2:",
                "ldp q0, q1, [{p}], #32",
                "ldp q2, q3, [{p}], #32",
                "cmeq v0.16b, v0.16b, v16.16b",
                "cmeq v1.16b, v1.16b, v16.16b",
                "cmeq v2.16b, v2.16b, v16.16b",
                "cmeq v3.16b, v3.16b, v16.16b",
                "orr v0.16b, v0.16b, v1.16b",
                "orr v2.16b, v2.16b, v3.16b",
                "orr v0.16b, v0.16b, v2.16b",
                "umaxp v0.16b, v0.16b, v0.16b",
                "fmov {t}, d0",
                "cbnz {t}, 3f",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                "3:",
                b = in(reg) u32::from(byte),
                p = inout(reg) hay.as_ptr() => _,
                n = inout(reg) steps => left,
                t = out(reg) _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v16") _,
                options(nostack, readonly),
            );
        }
        if left == 0 {
            return (None, steps * 64);
        }
        // The step that matched: its exact index a word at a time (at most 8 words).
        let at = (steps - left) * 64;
        (
            super::find_words(&hay[at..at + 64], byte).map(|i| at + i),
            at + 64,
        )
    }

    /// The whole 64-byte steps of `src` before the first that holds `byte`, copied into
    /// `dst` (at least as long) as they are scanned: how many bytes (a multiple of 64).
    /// The step that holds `byte` is not written.
    pub fn copy_clear(dst: &mut [u8], src: &[u8], byte: u8) -> usize {
        let steps = src.len() / 64;
        if steps == 0 || dst.len() < src.len() {
            return 0;
        }
        let left: usize;
        // SAFETY: reads the `steps * 64` bytes from `src`'s start and writes at most as
        // many from `dst`'s start, all inside the two slices (`dst` is at least as long;
        // borrowed mutably, so no other reference to it lives and it cannot overlap
        // `src`). FP/SIMD is enabled for EL0; every vector register used is declared
        // clobbered. `left` counts the steps not copied when a match stopped it.
        unsafe {
            core::arch::asm!(
                "dup v16.16b, {b:w}",
                "2:",
                "ldp q0, q1, [{s}]",
                "ldp q2, q3, [{s}, #32]",
                "cmeq v4.16b, v0.16b, v16.16b",
                "cmeq v5.16b, v1.16b, v16.16b",
                "cmeq v6.16b, v2.16b, v16.16b",
                "cmeq v7.16b, v3.16b, v16.16b",
                "orr v4.16b, v4.16b, v5.16b",
                "orr v6.16b, v6.16b, v7.16b",
                "orr v4.16b, v4.16b, v6.16b",
                "umaxp v4.16b, v4.16b, v4.16b",
                "fmov {t}, d4",
                "cbnz {t}, 3f",
                "stp q0, q1, [{d}], #32",
                "stp q2, q3, [{d}], #32",
                "add {s}, {s}, #64",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                "3:",
                b = in(reg) u32::from(byte),
                s = inout(reg) src.as_ptr() => _,
                d = inout(reg) dst.as_mut_ptr() => _,
                n = inout(reg) steps => left,
                t = out(reg) _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                out("v4") _, out("v5") _, out("v6") _, out("v7") _, out("v16") _,
                options(nostack),
            );
        }
        (steps - left) * 64
    }

    /// Zeroes the whole 64-byte steps of `dst`: how many bytes.
    pub fn zero64(dst: &mut [u8]) -> usize {
        let steps = dst.len() / 64;
        if steps == 0 {
            return 0;
        }
        // SAFETY: writes `steps * 64` bytes from `dst`'s start, inside `dst` (borrowed
        // mutably: no other reference to it lives); FP/SIMD is enabled for EL0 and `v0` is
        // declared clobbered.
        unsafe {
            core::arch::asm!(
                "movi v0.2d, #0",
                "2:",
                "stp q0, q0, [{d}], #32",
                "stp q0, q0, [{d}], #32",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                d = inout(reg) dst.as_mut_ptr() => _,
                n = inout(reg) steps => _,
                out("v0") _,
                options(nostack),
            );
        }
        steps * 64
    }

    /// `dst.copy_from_slice(src)` for equal lengths: 64 bytes a step (two `ldp q`, two
    /// `stp q`), then 16 at a time, the last 16 bytes once more from the end (overlapping
    /// what was copied); below 16 bytes, two overlapping words or single bytes.
    pub fn copy(dst: &mut [u8], src: &[u8]) {
        let n = src.len().min(dst.len());
        if n < 16 {
            if n >= 8 {
                let (head, tail) = (super::load_word(src), super::load_word(&src[n - 8..n]));
                super::store_word(dst, head);
                super::store_word(&mut dst[n - 8..n], tail);
            } else {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = *s;
                }
            }
            return;
        }
        // SAFETY: every load reads 16 or 32 bytes inside `src[..n]` and every store writes
        // inside `dst[..n]` (the big loop runs `n / 64` times, the small one while 16 or
        // more bytes are left, the last pair at `n - 16`); `dst` is borrowed mutably, so
        // no other reference to it lives and it cannot overlap `src`. FP/SIMD is enabled
        // for EL0; the vector registers used are declared clobbered.
        unsafe {
            core::arch::asm!(
                "add {se}, {s}, {n}",
                "add {de}, {d}, {n}",
                "lsr {k}, {n}, #6",
                "cbz {k}, 3f",
                "2:",
                "ldp q0, q1, [{s}], #32",
                "ldp q2, q3, [{s}], #32",
                "stp q0, q1, [{d}], #32",
                "stp q2, q3, [{d}], #32",
                "subs {k}, {k}, #1",
                "b.ne 2b",
                "3:",
                "sub {k}, {se}, {s}",
                "cmp {k}, #16",
                "b.lo 4f",
                "ldr q0, [{s}], #16",
                "str q0, [{d}], #16",
                "b 3b",
                "4:",
                "ldr q0, [{se}, #-16]",
                "str q0, [{de}, #-16]",
                s = inout(reg) src.as_ptr() => _,
                d = inout(reg) dst.as_mut_ptr() => _,
                n = in(reg) n,
                se = out(reg) _,
                de = out(reg) _,
                k = out(reg) _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                options(nostack),
            );
        }
    }
}
