//! Messages as they travel: a label and message registers ([`Wire`]), the pieces messages
//! are made of (task [`Name`]s, fixed field counts), and replies (MR0 = 0 or an errno, then
//! the results of a [`ReplyBody`]).

use crate::{Errno, ProtoError};

/// The most words a message carries, but for the requests that carry paths: a reply's code
/// and [`crate::FileStats`]' fifteen counters.
pub const MAX_WORDS: usize = 16;

/// The most words any message carries: MR0..MR63, the kernel's message registers (the
/// requests of [`crate::FileRequest`], whose paths take 32 words each).
pub const MESSAGE_WORDS: usize = 64;

/// A message as the kernel carries it: its label and its message registers (MR0 first), at
/// most `N` of them ([`MAX_WORDS`] unless an interface says more: building and copying a
/// message costs what its capacity is, so only the file server's requests have 64).
///
/// # Invariants
/// `len <= N`; `words[len..]` are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire<const N: usize = MAX_WORDS> {
    label: u64,
    len: usize,
    words: [u64; N],
}

impl<const N: usize> Wire<N> {
    /// An empty message with `label` (0 for replies).
    pub const fn new(label: u64) -> Self {
        Self {
            label,
            len: 0,
            words: [0; N],
        }
    }

    /// A message with `label` and `words`; `None` if there are more than `N`.
    pub fn from_words(label: u64, words: &[u64]) -> Option<Self> {
        let mut w = Self::new(label);
        for &word in words {
            w.push(word).then_some(())?;
        }
        Some(w)
    }

    /// Appends one word; false (and no change) when the message is full.
    pub fn push(&mut self, word: u64) -> bool {
        match self.words.get_mut(self.len) {
            Some(slot) => {
                *slot = word;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    pub const fn label(&self) -> u64 {
        self.label
    }

    /// The same message with room for `M >= N` words (checked when compiled).
    pub fn widen<const M: usize>(&self) -> Wire<M> {
        const { assert!(M >= N) };
        let mut w = Wire::new(self.label);
        for &word in self.mrs() {
            w.push(word);
        }
        w
    }

    /// The same message with room for `M` words; `None` if it has more.
    pub fn resized<const M: usize>(&self) -> Option<Wire<M>> {
        Wire::from_words(self.label, self.mrs())
    }

    /// The message registers, MR0 first.
    pub fn mrs(&self) -> &[u64] {
        self.words.get(..self.len).unwrap_or(&[])
    }
}

/// Text of 1 to `8 * W` bytes of UTF-8 without NUL, carried in `W` words (little-endian,
/// zero-padded): a task [`Name`] or a file [`Path`](crate::file::Path).
///
/// # Invariants
/// `1 <= len <= 8 * W`, the bytes before `len` are UTF-8 without NUL, the rest are zero.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text<const W: usize> {
    words: [[u8; 8]; W],
    len: u16,
}

/// A task name: 1 to 16 bytes, two words.
pub type Name = Text<2>;

impl<const W: usize> Text<W> {
    /// The longest text, in bytes.
    pub const MAX: usize = 8 * W;

    /// `s` as text: `BadField` if it is empty, longer than [`Self::MAX`] bytes, or holds a
    /// NUL.
    pub fn new(s: &str) -> Result<Self, ProtoError> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > Self::MAX || b.contains(&0) {
            return Err(ProtoError::BadField);
        }
        let mut words = [[0u8; 8]; W];
        words
            .as_flattened_mut()
            .get_mut(..b.len())
            .ok_or(ProtoError::BadField)?
            .copy_from_slice(b);
        Ok(Self {
            words,
            len: b.len() as u16,
        })
    }

    /// The text in `W` words: `BadField` unless the bytes up to the first zero are valid
    /// text and every byte after it is zero.
    pub fn from_words(w: [u64; W]) -> Result<Self, ProtoError> {
        let words = w.map(u64::to_le_bytes);
        let bytes = words.as_flattened();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(Self::MAX);
        let (text, padding) = bytes.split_at(len);
        if len == 0 || padding.iter().any(|&b| b != 0) || core::str::from_utf8(text).is_err() {
            return Err(ProtoError::BadField);
        }
        Ok(Self {
            words,
            len: len as u16,
        })
    }

    pub fn to_words(&self) -> [u64; W] {
        self.words.map(u64::from_le_bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.words
            .as_flattened()
            .get(..usize::from(self.len))
            .unwrap_or(&[])
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl<const W: usize> core::fmt::Debug for Text<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const W: usize> core::fmt::Display for Text<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The results a successful reply carries after MR0.
pub trait ReplyBody: Sized {
    /// Appends the results to `w`.
    fn encode_body(&self, w: &mut Wire);
    /// The results from the words after MR0 (words after them are ignored).
    fn decode_body(w: &[u64]) -> Result<Self, ProtoError>;
}

/// No results.
impl ReplyBody for () {
    fn encode_body(&self, _: &mut Wire) {}

    fn decode_body(_: &[u64]) -> Result<Self, ProtoError> {
        Ok(())
    }
}

/// One word: mmap's address, spawn's and fork's child pid.
impl ReplyBody for u64 {
    fn encode_body(&self, w: &mut Wire) {
        w.push(*self);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        w.first().copied().ok_or(ProtoError::Short)
    }
}

/// A reply: label 0, MR0 = 0 and the results, or MR0 = the errno alone.
pub fn encode_reply<T: ReplyBody>(r: &Result<T, Errno>) -> Wire {
    let mut w = Wire::new(0);
    match r {
        Ok(body) => {
            w.push(0);
            body.encode_body(&mut w);
        }
        Err(e) => {
            w.push(*e as u64);
        }
    }
    w
}

/// A reply's registers as the server meant them: its results or its errno. `Short` if MR0
/// or a result is missing, `BadField` if MR0 is not an errno value or a result is out of
/// range.
pub fn decode_reply<T: ReplyBody>(mrs: &[u64]) -> Result<Result<T, Errno>, ProtoError> {
    let (&code, rest) = mrs.split_first().ok_or(ProtoError::Short)?;
    match code {
        0 => T::decode_body(rest).map(Ok),
        e => Errno::try_from(e)
            .map(Err)
            .map_err(|_| ProtoError::BadField),
    }
}

/// A reply as its caller uses it: a malformed reply is `EIO` (the server is at fault).
pub fn reply_result<T: ReplyBody>(mrs: &[u64]) -> Result<T, Errno> {
    decode_reply(mrs).unwrap_or(Err(Errno::EIO))
}
