//! The zero server's message: vm asks for a chunk (the 300s).

use crate::Label;

crate::interface! {
    /// vm's request to zero.
    pub enum ZeroRequest {
        /// → a 2 MiB zeroed frame capability travels with the reply (no results).
        GetChunk = Label::GetChunk => fn get_chunk -> ();
    }
}
