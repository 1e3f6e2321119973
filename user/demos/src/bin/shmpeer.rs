//! The unrelated task of the `shm` demo: started with `spawn` (a new program, not a fork),
//! it shares nothing with `shm` but the names of shared memory objects. Its part is the size
//! of `/shm-step`: 1 reads the slide's `/shm1`, 2 follows `/list` mapped at another address,
//! 3 follows `/same` mapped at the agreed one, 4 finds `/shm1` unlinked. Exits with 0 when
//! what it saw is what the slide says.
#![no_std]
#![no_main]

use demos::peek;
use demos::shm_demo::{LIST_ADDR_READER, LIST_ADDR_WRITER, NODE_BYTES, NODES, SAME_ADDR};
use rt::{Errno, MAP_FIXED, MAP_SHARED, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE, println};

rt::entry!(main);

fn main() -> i32 {
    let step = rt::shm_open("/shm-step", O_RDONLY, 0)
        .and_then(|fd| rt::fstat(fd).map(|s| (fd, s.size)))
        .and_then(|(fd, size)| rt::close(fd).map(|()| size));
    let ok = match step {
        Ok(1) => read_slide_example(),
        Ok(2) => Ok(different_address()),
        Ok(3) => same_address(),
        Ok(4) => Ok(rt::shm_open("/shm1", O_RDONLY, 0) == Err(Errno::ENOENT)).inspect(|&ok| {
            if ok {
                println!("shmpeer: shm_open(\"/shm1\") -> ENOENT: the name is gone for everyone");
            }
        }),
        _ => Err("no part given in /shm-step"),
    };
    match ok {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(why) => {
            println!("shmpeer: {why}");
            1
        }
    }
}

/// Opens and maps `/shm1` like a second, unrelated program would, checks 0..1023 and
/// writes -1 into `p[0]` for `shm` to see.
fn read_slide_example() -> Result<bool, &'static str> {
    let fd = rt::shm_open("/shm1", O_RDWR, 0).map_err(|_| "shm_open(\"/shm1\") failed")?;
    let size = rt::fstat(fd).map_err(|_| "fstat failed")?.size;
    let p =
        rt::mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
    rt::close(fd).map_err(|_| "close failed")?;
    let read = |i: u64| {
        // SAFETY: `p + 4 * i` lies inside the `size`-byte shared mapping just made, which no
        // Rust reference covers; a fault ends the task.
        unsafe { core::ptr::read_volatile((p + 4 * i) as *const i32) }
    };
    let all = (0..1024).all(|i| read(i) == i as i32);
    println!(
        "shmpeer: mapped \"/shm1\" ({size} bytes) at {p:#x}: p[0] = {}, p[1] = {}, p[1023] = {}",
        read(0),
        read(1),
        read(1023)
    );
    // SAFETY: as for `read`.
    unsafe { core::ptr::write_volatile(p as *mut i32, -1) };
    Ok(size == 4096 && all)
}

/// `/list` at another address than `shm`'s: the next pointers stored in it are `shm`'s
/// addresses, which lead nowhere here; offsets from the start would still work.
fn different_address() -> bool {
    let Ok(at) = map("/list", LIST_ADDR_READER) else {
        println!("shmpeer: could not map /list");
        return false;
    };
    let next = peek(at + 8);
    let inside = (at..at + 4096).contains(&next);
    println!(
        "shmpeer: /list mapped here at {at:#x}; head->next = {next:#x}, which is {} my mapping",
        if inside { "inside" } else { "outside" }
    );
    // What shm meant: the same offset from the start of its mapping.
    let offset = next.wrapping_sub(LIST_ADDR_WRITER);
    let via_offset = if offset < 4096 { peek(at + offset) } else { 0 };
    println!(
        "shmpeer: following it would read whatever is at {next:#x} in this task (unmapped: SEGV); as an offset ({offset:#x}) it finds {via_offset}"
    );
    !inside && via_offset == 20
}

/// `/same` at the agreed address: the stored pointers are right here too.
fn same_address() -> Result<bool, &'static str> {
    let at = map("/same", SAME_ADDR).map_err(|_| "could not map /same at the agreed address")?;
    let mut values = [0u64; NODES as usize];
    let mut node = at;
    let mut n = 0;
    while node != 0 && n < values.len() {
        if !(at..at + NODES * NODE_BYTES).contains(&node) {
            return Err("a pointer left the list");
        }
        values[n] = peek(node);
        node = peek(node + 8);
        n += 1;
    }
    println!("shmpeer: /same mapped here at {at:#x} too; following head->next...: {values:?}");
    Ok(values == [10, 20, 30, 40] && node == 0)
}

fn map(name: &str, at: u64) -> Result<u64, Errno> {
    let fd = rt::shm_open(name, O_RDWR, 0)?;
    let p = rt::mmap(
        at,
        4096,
        PROT_READ | PROT_WRITE,
        MAP_SHARED | MAP_FIXED,
        fd,
        0,
    );
    rt::close(fd)?;
    p
}
