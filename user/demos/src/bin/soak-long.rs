//! `soak-long` (boot scenario `soak-long`, not part of `make test`: `make test
//! TEST=soak-long`): the soak of `soak` with ten times the rounds (`demos::soak`).
#![no_std]
#![no_main]

rt::entry!(main);

fn main() -> i32 {
    demos::soak::run("soak-long", demos::soak::LONG_ROUNDS)
}
