//! `attack-review`'s helper for close-on-exec: run by `exec` in a child that holds one
//! plain file descriptor, one opened `O_CLOEXEC` and one shm descriptor. Its exit status
//! counts the file descriptors (3..64) and shm descriptors still open after the `exec`:
//! `files | shm << 8`. POSIX wants 1 file (the plain one) and no shm descriptor.
#![no_std]
#![no_main]

use rt::proto::shm::FIRST_FD;

rt::entry!(main);

fn main() -> i32 {
    let files = (3..64).filter(|&fd| rt::fstat(fd).is_ok()).count() as i32;
    let shm = (FIRST_FD..FIRST_FD + 64)
        .filter(|&fd| rt::fstat(fd).is_ok())
        .count() as i32;
    files | shm << 8
}
