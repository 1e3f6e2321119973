//! One declaration per server interface ([`interface!`]): the request type, its wire form
//! (`encode`, `decode`), which labels it owns (`serves`, used by servers that answer several
//! interfaces to pick the one decoder a label belongs to: [`requests!`]), and its client
//! calls (one function per request, typed with the request's result, over any
//! [`Transport`]). Hubris's `idol` is the model; a declarative macro is enough here.
//!
//! A request's message registers are its fields in the order declared, each field as many
//! words as its [`Field`] type says. Decoding never panics: fewer words than the fields need
//! is `Short` (words after them are ignored), a field out of range, or a declared check that
//! fails, is `BadField`, and a label the interface does not own is `UnknownLabel`.

use crate::wire::{Text, Wire};
use crate::{Errno, ProtoError, ReplyBody};

/// One field of a request as it travels: [`Field::WORDS`] message registers.
pub trait Field: Sized {
    const WORDS: usize;
    /// Appends the field's words to `w`.
    fn put<const N: usize>(&self, w: &mut Wire<N>);
    /// The field from exactly [`Field::WORDS`] words; `BadField` when they are out of range.
    fn take(words: &[u64]) -> Result<Self, ProtoError>;
}

/// The one word of a field (the caller gives exactly `WORDS`).
fn word(words: &[u64]) -> Result<u64, ProtoError> {
    words.first().copied().ok_or(ProtoError::Short)
}

impl Field for u64 {
    const WORDS: usize = 1;

    fn put<const N: usize>(&self, w: &mut Wire<N>) {
        w.push(*self);
    }

    fn take(words: &[u64]) -> Result<Self, ProtoError> {
        word(words)
    }
}

/// Two's complement bits in one word (`lseek`'s offset).
impl Field for i64 {
    const WORDS: usize = 1;

    fn put<const N: usize>(&self, w: &mut Wire<N>) {
        w.push(*self as u64);
    }

    fn take(words: &[u64]) -> Result<Self, ProtoError> {
        word(words).map(|v| v as i64)
    }
}

/// Sign-extended to a word; a word that is not a sign-extended `i32` is `BadField`.
impl Field for i32 {
    const WORDS: usize = 1;

    fn put<const N: usize>(&self, w: &mut Wire<N>) {
        w.push(i64::from(*self) as u64);
    }

    fn take(words: &[u64]) -> Result<Self, ProtoError> {
        i32::try_from(word(words)? as i64).map_err(|_| ProtoError::BadField)
    }
}

/// 0 or 1; any other word is `BadField`.
impl Field for bool {
    const WORDS: usize = 1;

    fn put<const N: usize>(&self, w: &mut Wire<N>) {
        w.push(u64::from(*self));
    }

    fn take(words: &[u64]) -> Result<Self, ProtoError> {
        match word(words)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProtoError::BadField),
        }
    }
}

/// A name or a path: `W` words ([`Text::from_words`] says what is valid).
impl<const W: usize> Field for Text<W> {
    const WORDS: usize = W;

    fn put<const N: usize>(&self, w: &mut Wire<N>) {
        for word in self.to_words() {
            w.push(word);
        }
    }

    fn take(words: &[u64]) -> Result<Self, ProtoError> {
        Self::from_words(words.try_into().map_err(|_| ProtoError::Short)?)
    }
}

/// A field of an `abi::numbered!` enum: its value in one word; any other word is `BadField`.
#[macro_export]
macro_rules! numbered_field {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::interface::Field for $t {
            const WORDS: usize = 1;

            fn put<const N: usize>(&self, w: &mut $crate::Wire<N>) {
                w.push(*self as u64);
            }

            fn take(words: &[u64]) -> Result<Self, $crate::ProtoError> {
                let v = words.first().copied().ok_or($crate::ProtoError::Short)?;
                <$t>::try_from(v).map_err(|_| $crate::ProtoError::BadField)
            }
        }
    )*};
}

/// How a client reaches a server: sends a request and waits for its reply (`rt` implements
/// it on a capability to the server's endpoint; tests implement it with a function).
pub trait Transport {
    /// The results of the reply to `request`, or the errno it carries (a reply that cannot
    /// be decoded, or a server that is gone, is an errno too).
    fn call<T: ReplyBody, const N: usize>(&self, request: &Wire<N>) -> Result<T, Errno>;
}

/// The words an interface's messages may have: `declared` (an interface's `[N]`), else
/// [`crate::MAX_WORDS`].
pub const fn capacity(declared: &[usize]) -> usize {
    match declared {
        [n, ..] => *n,
        [] => crate::MAX_WORDS,
    }
}

/// Declares a server interface: a request enum (or a one-request struct), each request with
/// its label, its fields in wire order, an optional check on them, the client function that
/// sends it and the type of its result.
///
/// ```ignore
/// proto::interface! {
///     /// Doc of the enum.
///     pub enum FileRequest {
///         /// Doc of the request.
///         Read { fd: u64, offset: u64, len: u64 } = Label::Read => fn read -> u64;
///         Write { fd: u64, offset: u64, len: u64, total: u64 } = Label::Write
///             => fn write -> u64, if len <= READ_MAX as u64 && total >= len;
///         FileStats = Label::FileStats => fn file_stats -> FileStats;
///     }
/// }
/// ```
///
/// makes `FileRequest` with `encode`, `decode`, `label`, `serves` and, for each request, a
/// client function (`FileRequest::read(&server, fd, offset, len) -> Result<u64, Errno>`).
/// `pub enum FileRequest [64] { .. }` gives its messages 64 words instead of
/// [`crate::MAX_WORDS`] (`Wire<64>`).
#[macro_export]
macro_rules! interface {
    (
        $(#[$meta:meta])*
        pub enum $name:ident $([$words:expr])? {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $({ $($field:ident : $ty:ty),* $(,)? })?
                    = $label:path => fn $client:ident -> $reply:ty $(, if $check:expr)?;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant $({ $($field: $ty),* })?,)*
        }

        impl $name {
            /// Its label.
            pub fn label(&self) -> $crate::Label {
                match self {
                    $(Self::$variant { .. } => $label,)*
                }
            }

            /// Whether `label` is one of this interface's requests.
            pub fn serves(label: u64) -> bool {
                $(label == $label as u64)||*
            }

            /// The message: the label and the fields in order.
            pub fn encode(&self) -> $crate::Wire<{ $crate::interface::capacity(&[$($words)?]) }> {
                #[allow(unused_mut)]
                let mut w = $crate::Wire::new(self.label() as u64);
                match self {
                    $(Self::$variant $({ $($field),* })? => {
                        $($($crate::interface::Field::put($field, &mut w);)*)?
                    })*
                }
                w
            }

            /// The request a message carries (see the module's rules for errors).
            #[allow(unused_variables, unused_mut, unused_assignments)]
            pub fn decode(label: u64, mrs: &[u64]) -> Result<Self, $crate::ProtoError> {
                $(
                    if label == $label as u64 {
                        let need = 0 $($(+ <$ty as $crate::interface::Field>::WORDS)*)?;
                        if mrs.len() < need {
                            return Err($crate::ProtoError::Short);
                        }
                        let mut at = 0;
                        $($(
                            let n = <$ty as $crate::interface::Field>::WORDS;
                            let $field: $ty = $crate::interface::Field::take(&mrs[at..at + n])?;
                            at += n;
                        )*)?
                        $(if !($check) {
                            return Err($crate::ProtoError::BadField);
                        })?
                        return Ok(Self::$variant $({ $($field),* })?);
                    }
                )*
                Err($crate::ProtoError::UnknownLabel(label))
            }

            $(
                $(#[$vmeta])*
                ///
                /// The client call: sends the request to `server` and waits for its result.
                // One argument per field: a request of seven fields has eight.
                #[allow(clippy::too_many_arguments)]
                pub fn $client<T: $crate::interface::Transport + ?Sized>(
                    server: &T
                    $($(, $field: $ty)*)?
                ) -> Result<$reply, $crate::Errno> {
                    server.call(&Self::$variant $({ $($field),* })?.encode())
                }
            )*
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)?
        } = $label:path => fn $client:ident -> $reply:ty $(, if $check:expr)?;
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty),*
        }

        impl $name {
            /// Its label.
            pub const LABEL: $crate::Label = $label;

            /// Whether `label` is this request's.
            pub fn serves(label: u64) -> bool {
                label == $label as u64
            }

            /// The message: the label and the fields in order.
            pub fn encode(&self) -> $crate::Wire {
                let mut w = $crate::Wire::new($label as u64);
                $($crate::interface::Field::put(&self.$field, &mut w);)*
                w
            }

            /// The request a message carries (see the module's rules for errors).
            pub fn decode(label: u64, mrs: &[u64]) -> Result<Self, $crate::ProtoError> {
                if label != $label as u64 {
                    return Err($crate::ProtoError::UnknownLabel(label));
                }
                let need = 0 $(+ <$ty as $crate::interface::Field>::WORDS)*;
                if mrs.len() < need {
                    return Err($crate::ProtoError::Short);
                }
                let mut at = 0;
                $(
                    let n = <$ty as $crate::interface::Field>::WORDS;
                    let $field: $ty = $crate::interface::Field::take(&mrs[at..at + n])?;
                    at += n;
                )*
                let _ = at;
                $(if !($check) {
                    return Err($crate::ProtoError::BadField);
                })?
                Ok(Self { $($field),* })
            }

            /// The client call: sends the request to `server` and waits for its result.
            pub fn $client<T: $crate::interface::Transport + ?Sized>(
                &self,
                server: &T,
            ) -> Result<$reply, $crate::Errno> {
                server.call(&self.encode())
            }
        }
    };
}

/// What one server answers: several interfaces, one variant each. `decode` picks the one
/// decoder a label belongs to (each interface's `serves`) instead of trying them in turn;
/// a label none serves is `UnknownLabel`.
///
/// ```ignore
/// proto::requests! {
///     pub enum ShmServes { Shm(ShmRequest), Object(ObjectRequest), File(FileRequest) }
/// }
/// ```
#[macro_export]
macro_rules! requests {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident($ty:ty)),* $(,)? }
    ) => {
        $(#[$meta])*
        // A server decodes one request at a time, on its stack: `FileRequest`'s paths make
        // its variant large, and boxing it would put every request on the heap.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant($ty),)*
        }

        impl $name {
            /// The request a message carries, decoded by the interface its label belongs to.
            $vis fn decode(label: u64, mrs: &[u64]) -> Result<Self, $crate::ProtoError> {
                $(
                    if <$ty>::serves(label) {
                        return <$ty>::decode(label, mrs).map(Self::$variant);
                    }
                )*
                Err($crate::ProtoError::UnknownLabel(label))
            }
        }
    };
}
