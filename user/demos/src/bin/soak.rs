//! `soak` (boot scenario `soak`, `file.cache=2`, a private copy of the disk): several tasks
//! exec programs from the disk, fork, and map the same files privately and shared while a
//! page cache of two blocks evicts all the time, each checking every byte it reads against
//! the file's known content (`demos::soak` says what each step does). Runs from the disk,
//! like the workers it forks and the program they start. Exits with the number of failed
//! checks.
#![no_std]
#![no_main]

rt::entry!(main);

fn main() -> i32 {
    demos::soak::run("soak", demos::soak::ROUNDS)
}
