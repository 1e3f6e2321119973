//! The emulated machine: CPU model, RAM, CPU count, GIC version, and whether the kernel starts at EL2.

use std::fmt;

/// A QEMU CPU model and the name the kernel's banner prints for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// The `-cpu` argument.
    pub qemu: &'static str,
    /// What the kernel prints on its `cpu:` line (it decodes MIDR_EL1).
    pub banner: &'static str,
}

pub const CORTEX_A53: Cpu = Cpu {
    qemu: "cortex-a53",
    banner: "Cortex-A53",
};
pub const CORTEX_A57: Cpu = Cpu {
    qemu: "cortex-a57",
    banner: "Cortex-A57",
};
pub const CORTEX_A72: Cpu = Cpu {
    qemu: "cortex-a72",
    banner: "Cortex-A72",
};
pub const MAX: Cpu = Cpu {
    qemu: "max",
    banner: "QEMU max",
};

/// The CPU models the system supports (docs/design.md §3).
pub const CPUS: [Cpu; 4] = [CORTEX_A53, CORTEX_A57, CORTEX_A72, MAX];

impl Cpu {
    pub fn from_qemu_name(name: &str) -> Option<Cpu> {
        CPUS.iter().copied().find(|cpu| cpu.qemu == name)
    }
}

/// Guest RAM, a whole number of MiB (what the kernel's `ram:` line reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mem {
    mib: u64,
}

impl Mem {
    pub const fn mib(mib: u64) -> Mem {
        Mem { mib }
    }

    pub const fn gib(gib: u64) -> Mem {
        Mem { mib: gib * 1024 }
    }

    pub fn in_mib(self) -> u64 {
        self.mib
    }

    /// Parses QEMU's `-m` syntax restricted to whole MiB: `512M`, `2G`, `1T`, or a bare number of MiB.
    pub fn parse(text: &str) -> Result<Mem, String> {
        let bad = || format!("{text:?} is not a RAM size like 512M or 2G");
        let (digits, scale) = match text.char_indices().last() {
            Some((at, 'M' | 'm')) => (&text[..at], 1),
            Some((at, 'G' | 'g')) => (&text[..at], 1024),
            Some((at, 'T' | 't')) => (&text[..at], 1024 * 1024),
            Some(_) => (text, 1),
            None => return Err(bad()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let mib = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(bad)?;
        if mib == 0 {
            return Err(format!("{text:?}: RAM size must not be zero"));
        }
        Ok(Mem { mib })
    }
}

impl fmt::Display for Mem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mib.is_multiple_of(1024) {
            write!(f, "{}G", self.mib / 1024)
        } else {
            write!(f, "{}M", self.mib)
        }
    }
}

/// The interrupt controller `virt` emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gic {
    V2,
    V3,
}

impl Gic {
    pub fn version(self) -> u8 {
        match self {
            Gic::V2 => 2,
            Gic::V3 => 3,
        }
    }

    /// The most CPUs QEMU's `virt` accepts with this GIC (a GICv2 has 8 CPU interfaces).
    pub fn max_cpus(self) -> u32 {
        match self {
            Gic::V2 => 8,
            Gic::V3 => 512,
        }
    }
}

/// Everything about the emulated board that a boot depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    pub cpu: Cpu,
    pub mem: Mem,
    pub smp: u32,
    pub gic: Gic,
    /// Start the kernel at EL2 (`virtualization=on`); it drops to EL1 itself.
    pub el2: bool,
}

/// `cargo xtask run` without overrides, and the base most scenarios vary.
pub const DEFAULT_MACHINE: Machine = Machine {
    cpu: CORTEX_A53,
    mem: Mem::mib(512),
    smp: 1,
    gic: Gic::V2,
    el2: false,
};

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}, smp {}, GICv{}",
            self.cpu.qemu,
            self.mem,
            self.smp,
            self.gic.version()
        )?;
        if self.el2 {
            f.write_str(", EL2")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_sizes() {
        assert_eq!(Mem::parse("128M").map(Mem::in_mib), Ok(128));
        assert_eq!(Mem::parse("2G").map(Mem::in_mib), Ok(2048));
        assert_eq!(Mem::parse("512m").map(Mem::in_mib), Ok(512));
        assert_eq!(Mem::parse("1024").map(Mem::in_mib), Ok(1024));
        assert_eq!(Mem::gib(1).to_string(), "1G");
        assert_eq!(Mem::mib(512).to_string(), "512M");
        for bad in [
            "",
            "M",
            "0M",
            "-1G",
            "1.5G",
            "512MB",
            "12K",
            " 512M",
            "99999999999999999999T",
        ] {
            assert!(Mem::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cpu_names() {
        assert_eq!(Cpu::from_qemu_name("max"), Some(MAX));
        assert_eq!(
            Cpu::from_qemu_name("cortex-a72").map(|c| c.banner),
            Some("Cortex-A72")
        );
        assert_eq!(Cpu::from_qemu_name("Cortex-A53"), None);
    }
}
