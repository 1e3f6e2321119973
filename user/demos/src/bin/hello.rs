//! The smallest task: greets, checks its pid, exits with status 3.
#![no_std]
#![no_main]

use rt::println;

rt::entry!(main);

fn main() -> i32 {
    let pid = rt::getpid();
    println!("hello: hello from task {pid}");
    match rt::getppid() {
        Ok(parent) if pid >= rt::proto::pid::FIRST_USER => {
            println!("PASS hello-getpid (pid {pid}, parent {parent})")
        }
        other => println!("FAIL hello-getpid: pid {pid}, parent {other:?}"),
    }
    3
}
