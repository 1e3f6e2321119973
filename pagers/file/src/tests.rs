//! Host tests of the file server's core: [`crate::pending`]'s bookkeeping alone, and the
//! whole core ([`crate::fs::Files`]) over a RAM disk holding a FAT image (`host`).

mod dirs;
mod fs;
mod host;
mod pending;
mod pipes;
mod volume;
