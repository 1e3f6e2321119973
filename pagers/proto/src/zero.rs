//! The zero server's message: vm asks for a chunk (the 300s).

use crate::wire::Wire;
use crate::{Label, ProtoError};

/// vm's request to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroRequest {
    /// → a 2 MiB zeroed frame capability travels with the reply (no results).
    GetChunk,
}

impl ZeroRequest {
    pub fn encode(&self) -> Wire {
        match self {
            Self::GetChunk => Wire::request(Label::GetChunk, &[]),
        }
    }

    /// `UnknownLabel` for any label that is not a request to zero.
    pub fn decode(label: u64, _mrs: &[u64]) -> Result<Self, ProtoError> {
        match Label::try_from(label) {
            Ok(Label::GetChunk) => Ok(Self::GetChunk),
            _ => Err(ProtoError::UnknownLabel(label)),
        }
    }
}
