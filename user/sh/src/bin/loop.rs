//! `loop [lines]`: runs until it is ended (Ctrl-C, `kill`), giving the processor away
//! each round. With `lines`, prints that many numbered lines first (`loop 3 | wc`), then
//! exits. For trying Ctrl-C, `&` and `ps`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
rt::entry!(main);

#[cfg(target_os = "none")]
fn main(args: &[&str]) -> i32 {
    use rt::println;
    if let Some(arg) = args.get(1) {
        let Ok(lines) = arg.parse::<u64>() else {
            rt::eprintln!("usage: loop [lines]");
            return 2;
        };
        for i in 0..lines {
            println!("loop: line {i}");
        }
        return 0;
    }
    // On descriptor 2: seen on the console even when the output is a pipe.
    rt::eprintln!("loop: running (pid {}) until it is ended", rt::getpid());
    loop {
        rt::sched_yield();
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
