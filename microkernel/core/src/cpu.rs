//! CPU names from MIDR_EL1, for the boot console (ARM ARM D17.2, MIDR_EL1).
//!
//! ```text
//!  31        24 23     20 19          16 15            4 3        0
//! | Implementer | Variant | Architecture |    PartNum    | Revision |
//! ```

/// MIDR_EL1.Implementer for Arm Limited.
const ARM: u64 = 0x41;

/// (implementer, part number, name).
const PARTS: &[(u64, u64, &str)] = &[
    (ARM, 0xd03, "Cortex-A53"),
    (ARM, 0xd04, "Cortex-A35"),
    (ARM, 0xd05, "Cortex-A55"),
    (ARM, 0xd07, "Cortex-A57"),
    (ARM, 0xd08, "Cortex-A72"),
    (ARM, 0xd09, "Cortex-A73"),
    (ARM, 0xd0a, "Cortex-A75"),
    (ARM, 0xd0b, "Cortex-A76"),
    (ARM, 0xd0c, "Neoverse-N1"),
    (ARM, 0xd0d, "Cortex-A77"),
    (ARM, 0xd40, "Neoverse-V1"),
    (ARM, 0xd41, "Cortex-A78"),
    (ARM, 0xd46, "Cortex-A510"),
    (ARM, 0xd47, "Cortex-A710"),
    (ARM, 0xd49, "Neoverse-N2"),
    (ARM, 0xd4f, "Neoverse-V2"),
    // QEMU's `-cpu max` reports implementer 0 and part 0x051 ('Q'): MIDR 0x000f0510 in 7.2.
    (0x00, 0x051, "QEMU max"),
];

/// MIDR_EL1.Implementer, bits [31:24].
pub const fn implementer(midr: u64) -> u64 {
    (midr >> 24) & 0xff
}

/// MIDR_EL1.PartNum, bits [15:4].
pub const fn part_number(midr: u64) -> u64 {
    (midr >> 4) & 0xfff
}

/// MIDR_EL1.Variant and Revision as the usual "rNpM" pair, `(N, M)`.
pub const fn variant_revision(midr: u64) -> (u8, u8) {
    (((midr >> 20) & 0xf) as u8, (midr & 0xf) as u8)
}

/// The core's marketing name, or `"unknown"`.
pub fn cpu_name(midr: u64) -> &'static str {
    PARTS
        .iter()
        .find(|&&(imp, part, _)| imp == implementer(midr) && part == part_number(midr))
        .map_or("unknown", |&(_, _, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_real_midrs() {
        // Values as QEMU 7.2 reports them.
        assert_eq!(cpu_name(0x410f_d034), "Cortex-A53");
        assert_eq!(cpu_name(0x411f_d070), "Cortex-A57");
        assert_eq!(cpu_name(0x410f_d083), "Cortex-A72");
        assert_eq!(cpu_name(0x414f_d0b1), "Cortex-A76");
        assert_eq!(cpu_name(0x414f_d0c1), "Neoverse-N1");
        assert_eq!(cpu_name(0x000f_0510), "QEMU max");
        assert_eq!(variant_revision(0x411f_d070), (1, 0));
        assert_eq!(variant_revision(0x410f_d034), (0, 4));
    }

    #[test]
    fn every_listed_part() {
        for &(imp, part, name) in PARTS {
            let midr = imp << 24 | 0xf << 16 | part << 4;
            assert_eq!(cpu_name(midr), name);
            // Variant, revision and the upper 32 bits (RES0) do not matter.
            assert_eq!(
                cpu_name(midr | 0xffff_ffff_0000_0000 | 0x3 << 20 | 0x7),
                name
            );
        }
    }

    #[test]
    fn unknown_parts() {
        assert_eq!(cpu_name(0), "unknown");
        assert_eq!(cpu_name(0x410f_d999), "unknown");
        // Right part number, wrong implementer (0x51 is Qualcomm).
        assert_eq!(cpu_name(0x510f_d030), "unknown");
        assert_eq!(cpu_name(0x410f_0510), "unknown");
    }
}
