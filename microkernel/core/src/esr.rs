//! Names for exception syndromes (ESR_ELx), for fault reports on the console (ARM ARM
//! D17.2.37, ESR_EL1; ISS encodings for instruction and data aborts).
//!
//! ```text
//!  63     56 55      32 31    26  25  24                                0
//! |  RES0   |   ISS2   |   EC   | IL |               ISS                |
//! ```

/// ESR_ELx.EC, bits [31:26]: the exception class.
pub const fn exception_class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// EC values for the aborts whose ISS holds a fault status code.
const EC_IABT_LOWER: u8 = 0x20;
const EC_IABT_SAME: u8 = 0x21;
const EC_DABT_LOWER: u8 = 0x24;
const EC_DABT_SAME: u8 = 0x25;

/// The exception class by name.
pub fn exception_class_name(esr: u64) -> &'static str {
    match exception_class(esr) {
        0x00 => "Unknown reason",
        0x01 => "WFI/WFE",
        0x03 => "MCR/MRC (coproc 0b1111, AArch32)",
        0x04 => "MCRR/MRRC (coproc 0b1111, AArch32)",
        0x05 => "MCR/MRC (coproc 0b1110, AArch32)",
        0x06 => "LDC/STC (AArch32)",
        0x07 => "SVE/SIMD/FP access",
        0x08 => "VMRS (ID group trap, AArch32)",
        0x09 => "Pointer authentication instruction",
        0x0a => "LD64B/ST64B",
        0x0c => "MRRC (coproc 0b1110, AArch32)",
        0x0d => "Branch Target Exception",
        0x0e => "Illegal execution state",
        0x11 => "SVC (AArch32)",
        0x12 => "HVC (AArch32)",
        0x13 => "SMC (AArch32)",
        0x15 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        0x18 => "MSR/MRS/system instruction",
        0x19 => "SVE access",
        0x1a => "ERET/ERETAA/ERETAB",
        0x1c => "Pointer authentication failure",
        0x1d => "SME access",
        0x1f => "IMPLEMENTATION DEFINED (EL3)",
        EC_IABT_LOWER => "Instruction abort from a lower EL",
        EC_IABT_SAME => "Instruction abort (same EL)",
        0x22 => "PC alignment fault",
        EC_DABT_LOWER => "Data abort from a lower EL",
        EC_DABT_SAME => "Data abort (same EL)",
        0x26 => "SP alignment fault",
        0x27 => "Memory operation (MOPS)",
        0x28 => "FP exception (AArch32)",
        0x2c => "FP exception",
        0x2f => "SError",
        0x30 => "Breakpoint from a lower EL",
        0x31 => "Breakpoint (same EL)",
        0x32 => "Software step from a lower EL",
        0x33 => "Software step (same EL)",
        0x34 => "Watchpoint from a lower EL",
        0x35 => "Watchpoint (same EL)",
        0x38 => "BKPT (AArch32)",
        0x3a => "Vector catch (AArch32)",
        0x3c => "BRK instruction",
        _ => "reserved exception class",
    }
}

const fn is_abort(ec: u8) -> bool {
    matches!(
        ec,
        EC_IABT_LOWER | EC_IABT_SAME | EC_DABT_LOWER | EC_DABT_SAME
    )
}

const fn is_data_abort(ec: u8) -> bool {
    matches!(ec, EC_DABT_LOWER | EC_DABT_SAME)
}

/// The fault status (IFSC/DFSC, ISS bits [5:0]) of an instruction or data abort by name;
/// `None` for other exception classes.
pub fn fault_status_name(esr: u64) -> Option<&'static str> {
    if !is_abort(exception_class(esr)) {
        return None;
    }
    Some(match esr & 0x3f {
        0b00_0000 => "address size fault, level 0",
        0b00_0001 => "address size fault, level 1",
        0b00_0010 => "address size fault, level 2",
        0b00_0011 => "address size fault, level 3",
        0b00_0100 => "translation fault, level 0",
        0b00_0101 => "translation fault, level 1",
        0b00_0110 => "translation fault, level 2",
        0b00_0111 => "translation fault, level 3",
        0b00_1000 => "access flag fault, level 0",
        0b00_1001 => "access flag fault, level 1",
        0b00_1010 => "access flag fault, level 2",
        0b00_1011 => "access flag fault, level 3",
        0b00_1100 => "permission fault, level 0",
        0b00_1101 => "permission fault, level 1",
        0b00_1110 => "permission fault, level 2",
        0b00_1111 => "permission fault, level 3",
        0b01_0000 => "synchronous external abort",
        0b01_0001 => "synchronous tag check fault",
        0b01_0011 => "synchronous external abort on translation table walk, level -1",
        0b01_0100 => "synchronous external abort on translation table walk, level 0",
        0b01_0101 => "synchronous external abort on translation table walk, level 1",
        0b01_0110 => "synchronous external abort on translation table walk, level 2",
        0b01_0111 => "synchronous external abort on translation table walk, level 3",
        0b01_1000 => "synchronous parity or ECC error",
        0b01_1011 => "synchronous parity or ECC error on translation table walk, level -1",
        0b01_1100 => "synchronous parity or ECC error on translation table walk, level 0",
        0b01_1101 => "synchronous parity or ECC error on translation table walk, level 1",
        0b01_1110 => "synchronous parity or ECC error on translation table walk, level 2",
        0b01_1111 => "synchronous parity or ECC error on translation table walk, level 3",
        0b10_0001 => "alignment fault",
        0b10_0011 => "granule protection fault on translation table walk, level -1",
        0b10_0100 => "granule protection fault on translation table walk, level 0",
        0b10_0101 => "granule protection fault on translation table walk, level 1",
        0b10_0110 => "granule protection fault on translation table walk, level 2",
        0b10_0111 => "granule protection fault on translation table walk, level 3",
        0b10_1000 => "granule protection fault",
        0b10_1001 => "address size fault, level -1",
        0b10_1011 => "translation fault, level -1",
        0b11_0000 => "TLB conflict abort",
        0b11_0001 => "unsupported atomic hardware update fault",
        0b11_0100 => "IMPLEMENTATION DEFINED fault (lockdown)",
        0b11_0101 => "IMPLEMENTATION DEFINED fault (unsupported exclusive or atomic access)",
        _ => "reserved fault status",
    })
}

/// For a data abort, whether it was caused by a write (ISS.WnR, bit 6); `None` for other
/// exception classes. Cache maintenance and address translation instructions report
/// "write" (ISS.CM, bit 8, tells them apart).
pub fn abort_is_write(esr: u64) -> Option<bool> {
    is_data_abort(exception_class(esr)).then_some(esr & (1 << 6) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esr(ec: u64, iss: u64) -> u64 {
        ec << 26 | 1 << 25 | iss
    }

    #[test]
    fn exception_classes() {
        assert_eq!(exception_class(esr(0x15, 0)), 0x15);
        assert_eq!(exception_class(u64::MAX), 0x3f);
        assert_eq!(exception_class_name(esr(0x15, 0)), "SVC (AArch64)");
        assert_eq!(
            exception_class_name(esr(0x24, 0)),
            "Data abort from a lower EL"
        );
        assert_eq!(exception_class_name(esr(0x25, 0)), "Data abort (same EL)");
        assert_eq!(
            exception_class_name(esr(0x20, 0)),
            "Instruction abort from a lower EL"
        );
        assert_eq!(exception_class_name(esr(0x3c, 0)), "BRK instruction");
        assert_eq!(exception_class_name(0), "Unknown reason");
        assert_eq!(exception_class_name(esr(0x07, 0)), "SVE/SIMD/FP access");
        assert_eq!(
            exception_class_name(esr(0x0e, 0)),
            "Illegal execution state"
        );
        assert_eq!(exception_class_name(esr(0x2f, 0)), "SError");
        assert_eq!(
            exception_class_name(esr(0x3f, 0)),
            "reserved exception class"
        );
        // Every class has some name.
        for ec in 0..64 {
            assert!(!exception_class_name(esr(ec, 0)).is_empty());
        }
    }

    #[test]
    fn real_syndromes() {
        // A user store to an unmapped page: EC 0x24, IL, WnR, DFSC translation fault L3.
        let store = 0x9200_0047;
        assert_eq!(exception_class(store), 0x24);
        assert_eq!(fault_status_name(store), Some("translation fault, level 3"));
        assert_eq!(abort_is_write(store), Some(true));
        // A kernel load hitting a permission fault at level 2: EC 0x25, DFSC 0b001110.
        let load = 0x9600_000e;
        assert_eq!(fault_status_name(load), Some("permission fault, level 2"));
        assert_eq!(abort_is_write(load), Some(false));
        // A user instruction fetch from a non-executable page: EC 0x20, IFSC 0b001111.
        let fetch = 0x8200_000f;
        assert_eq!(fault_status_name(fetch), Some("permission fault, level 3"));
        assert_eq!(abort_is_write(fetch), None, "not a data abort");
        // SVC #0 from EL0.
        let svc = 0x5600_0000;
        assert_eq!(fault_status_name(svc), None);
        assert_eq!(abort_is_write(svc), None);
    }

    #[test]
    fn fault_status_codes() {
        for (fsc, name) in [
            (0x00, "address size fault, level 0"),
            (0x05, "translation fault, level 1"),
            (0x0b, "access flag fault, level 3"),
            (0x10, "synchronous external abort"),
            (0x21, "alignment fault"),
            (0x30, "TLB conflict abort"),
            (0x3f, "reserved fault status"),
        ] {
            for ec in [0x20, 0x21, 0x24, 0x25] {
                assert_eq!(fault_status_name(esr(ec, fsc)), Some(name));
            }
        }
        assert_eq!(
            fault_status_name(esr(0x22, 0x21)),
            None,
            "PC alignment has no FSC"
        );
    }
}
