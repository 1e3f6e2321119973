//! Does nothing and exits with status 0: what `vmbench`'s fork + exec + exit + wait cycle
//! execs (like `true`).
#![no_std]
#![no_main]

rt::entry!(main);

fn main() -> i32 {
    0
}
