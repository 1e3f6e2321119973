//! An attacker imitating the kernel: page-fault messages sent to vm through the task's own
//! request capability. vm must refuse every one (`EPERM`) and serve none: faults reach vm
//! only through the fault endpoint, whose badge no task capability carries
//! (`proto::pid::FAULT_BADGE`).
//!
//! What a forged fault could do if vm believed it: a forged write fault on a page that maps
//! the shared zero frame read-only made that frame writable (every fresh anonymous page of
//! every task then read the attacker's bytes); after `fork`, a forged write fault on a
//! copy-on-write page freed a page the parent still mapped.
#![no_std]
#![no_main]

use abi::message::{FaultLabel, vm_fault};
use demos::{Checks, PAGE, anon, peek, poke, stats};
use libmk::{Cap, Endpoint, Message};
use rt::proto::{Errno, task_slots};
use rt::{PROT_READ, PROT_WRITE, println};

rt::entry!(main);

const VM: Cap<Endpoint> = Cap::from_cptr(task_slots::VM);

/// Sends a message with a fault label and fault-shaped registers to vm, as a task can;
/// returns vm's answer (MR0 = 0 or an errno).
fn forge(label: FaultLabel, addr: u64, access: vm_fault::Access, kind: vm_fault::Kind) -> u64 {
    let mut mrs = [0u64; vm_fault::LENGTH];
    mrs[vm_fault::ADDRESS] = addr;
    mrs[vm_fault::IP] = addr;
    mrs[vm_fault::ACCESS] = access as u64;
    mrs[vm_fault::KIND] = kind as u64;
    mrs[vm_fault::ESR] = 0x9200_004f;
    match VM.call(&Message::new(label as u64, &mrs)) {
        Ok(r) => r.mrs[0],
        Err(e) => {
            println!("attack-faults: the call itself failed: {e:?}");
            u64::MAX
        }
    }
}

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    demos::prefault();
    let eperm = Errno::EPERM as u64;

    // A page mapped to the shared zero frame (read, never written).
    let Ok(zeroed) = anon(1, PROT_READ | PROT_WRITE) else {
        println!("FAIL attack-fault-setup: mmap failed");
        return 1;
    };
    let _ = peek(zeroed);
    let before = stats();
    let answer = forge(
        FaultLabel::VmFault,
        zeroed,
        vm_fault::Access::Write,
        vm_fault::Kind::Permission,
    );
    let after = stats();
    c.check(
        "attack-fault-write-refused",
        answer == eperm,
        "vm answered a forged write fault on the zero page with something other than EPERM",
    );
    c.check(
        "attack-fault-not-served",
        after.faults == before.faults && after.pages_in_use == before.pages_in_use,
        "vm served a forged fault (its fault or page counters moved)",
    );
    // The attacker writes its page; a fresh page (here and in a child) must still read 0.
    poke(zeroed, 0x6666_6666);
    let Ok(fresh) = anon(1, PROT_READ | PROT_WRITE) else {
        println!("FAIL attack-fault-setup: mmap failed");
        return 1;
    };
    c.check(
        "attack-fault-zero-page-intact",
        peek(fresh) == 0 && peek(zeroed) == 0x6666_6666,
        "a fresh anonymous page does not read zero after the forged fault",
    );

    // mprotect over pages that map the shared zero frame read-only: the zero frame must
    // stay read-only (a write gets a page of its own).
    if let Ok(ro) = anon(4, PROT_READ) {
        let _ = peek(ro) + peek(ro + PAGE);
        let protected = rt::mprotect(ro, 4 * PAGE, PROT_READ | PROT_WRITE);
        poke(ro, 0x7777);
        let fresh = anon(1, PROT_READ).map(peek);
        c.check(
            "attack-mprotect-zero-page-intact",
            protected.is_ok() && fresh == Ok(0) && peek(ro + PAGE) == 0 && peek(ro) == 0x7777,
            "after mprotect(PROT_WRITE) over the zero page, a write reached other pages",
        );
    }

    // Copy-on-write after fork: the child forges a write fault on a shared page, then
    // writes it for real; the parent must keep its own value and every page stays sane.
    let Ok(cow) = anon(1, PROT_READ | PROT_WRITE) else {
        println!("FAIL attack-fault-setup: mmap failed");
        return 1;
    };
    poke(cow, 0x1111);
    match rt::fork() {
        Ok(0) => {
            let a = forge(
                FaultLabel::VmFault,
                cow,
                vm_fault::Access::Write,
                vm_fault::Kind::Permission,
            );
            poke(cow, 0x2222);
            rt::exit(if a == eperm && peek(cow) == 0x2222 {
                0
            } else {
                1
            })
        }
        Ok(child) => {
            let status = rt::wait(child);
            c.check(
                "attack-fault-cow-child-refused",
                matches!(status, Ok((_, rt::WaitStatus::Exited, 0))),
                "the child's forged COW fault was not refused",
            );
            c.check(
                "attack-fault-cow-parent-intact",
                peek(cow) == 0x1111,
                "the parent's copy-on-write page changed",
            );
        }
        Err(_) => {
            c.check("attack-fault-cow-child-refused", false, "fork failed");
        }
    }

    // mprotect in a fork child over pages it shares copy-on-write with its parent: the
    // pages must stay copy-on-write (the child's write gets a copy).
    if let Ok(shared) = anon(2, PROT_READ | PROT_WRITE) {
        poke(shared, 0xaaaa);
        poke(shared + PAGE, 0xbbbb);
        match rt::fork() {
            Ok(0) => {
                let ok = rt::mprotect(shared, 2 * PAGE, PROT_READ | PROT_WRITE).is_ok();
                poke(shared, 0xcccc);
                let _ = rt::mprotect(shared + PAGE, PAGE, PROT_READ);
                let ok2 = rt::mprotect(shared + PAGE, PAGE, PROT_READ | PROT_WRITE).is_ok();
                poke(shared + PAGE, 0xdddd);
                rt::exit(if ok && ok2 { 0 } else { 1 })
            }
            Ok(child) => {
                let status = rt::wait(child);
                c.check(
                    "attack-mprotect-cow-parent-intact",
                    matches!(status, Ok((_, rt::WaitStatus::Exited, 0)))
                        && peek(shared) == 0xaaaa
                        && peek(shared + PAGE) == 0xbbbb,
                    "a child's write after mprotect reached its parent's copy-on-write page",
                );
            }
            Err(_) => {
                c.check("attack-mprotect-cow-parent-intact", false, "fork failed");
            }
        }
    }

    // Every fault label, every access and kind, at addresses mapped and not: all refused,
    // and the task is not killed (a forged fault is an error, never a fault).
    let labels = [
        FaultLabel::VmFault,
        FaultLabel::UnknownSyscall,
        FaultLabel::UndefinedInstruction,
        FaultLabel::AlignmentFault,
        FaultLabel::UserException,
    ];
    let accesses = [
        vm_fault::Access::Read,
        vm_fault::Access::Write,
        vm_fault::Access::Execute,
    ];
    let kinds = [vm_fault::Kind::Translation, vm_fault::Kind::Permission];
    let mut refused = true;
    for label in labels {
        for access in accesses {
            for kind in kinds {
                for addr in [0, zeroed, cow + PAGE, u64::MAX] {
                    refused &= forge(label, addr, access, kind) == eperm;
                }
            }
        }
    }
    c.check(
        "attack-fault-every-label-refused",
        refused,
        "a forged fault message was not answered with EPERM",
    );
    c.failures
}
