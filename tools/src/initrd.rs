//! The initrd archives: the real one, and the broken ones that test the kernel's error paths.

use crate::cpio;
use crate::elf64::{self, Segment};

/// Which archive a boot gets as `-initrd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initrd {
    /// `init` as built, with the servers and programs it starts.
    Normal,
    /// The kernel's test root task, `ktest`, alone, under the name `init` (the kernel boots
    /// the archive's `init`): boot checks, the kernel test suite, the fuzzer, the kernel
    /// benchmarks.
    Tests,
    /// No `-initrd` at all.
    None,
    /// 4 KiB that are not a cpio archive.
    NotCpio,
    /// A valid archive without `init`.
    NoInit,
    /// `init` is a well-formed ELF for x86-64.
    X86Elf,
    /// `init` is a shell script.
    NotElf,
}

impl Initrd {
    pub const ALL: [Initrd; 7] = [
        Initrd::Normal,
        Initrd::Tests,
        Initrd::None,
        Initrd::NotCpio,
        Initrd::NoInit,
        Initrd::X86Elf,
        Initrd::NotElf,
    ];

    /// The file under `target/images/`, if the variant has one.
    pub fn file_name(self) -> Option<&'static str> {
        match self {
            Initrd::Normal => Some("initrd.cpio"),
            Initrd::Tests => Some("initrd-ktest.cpio"),
            Initrd::None => None,
            Initrd::NotCpio => Some("initrd-not-cpio.img"),
            Initrd::NoInit => Some("initrd-no-init.cpio"),
            Initrd::X86Elf => Some("initrd-x86-elf.cpio"),
            Initrd::NotElf => Some("initrd-not-elf.cpio"),
        }
    }

    /// The archive's bytes, given the programs (`init` first, then the servers and demos it
    /// starts, by name, and [`TEST_ROOT`]); `None` for [`Initrd::None`]. The normal archive
    /// holds every program but the test root task; the test archive holds only that one, as
    /// `init`; the bad variants hold only their `init`.
    pub fn contents(self, programs: &[(&str, Vec<u8>)]) -> Result<Option<Vec<u8>>, String> {
        let archive = |name: &str, data: &[u8]| -> Result<Option<Vec<u8>>, String> {
            let mut writer = cpio::Writer::new();
            writer.add_file(name, EXECUTABLE, data)?;
            Ok(Some(writer.finish()))
        };
        match self {
            Initrd::Normal => {
                let mut writer = cpio::Writer::new();
                for (name, data) in programs.iter().filter(|(name, _)| *name != TEST_ROOT) {
                    writer.add_file(name, EXECUTABLE, data)?;
                }
                Ok(Some(writer.finish()))
            }
            Initrd::Tests => {
                let (_, data) = programs
                    .iter()
                    .find(|(name, _)| *name == TEST_ROOT)
                    .ok_or_else(|| format!("no {TEST_ROOT} program was built"))?;
                archive("init", data)
            }
            Initrd::None => Ok(None),
            Initrd::NotCpio => Ok(Some(not_cpio())),
            Initrd::NoInit => {
                let mut writer = cpio::Writer::new();
                writer.add_file("readme.txt", 0o644, b"This initrd has no init.\n")?;
                Ok(Some(writer.finish()))
            }
            Initrd::X86Elf => archive("init", &x86_64_elf()),
            Initrd::NotElf => archive("init", b"#!/bin/sh\necho hi\n"),
        }
    }
}

/// The kernel's test root task (`microkernel/ktest`): the program [`Initrd::Tests`] boots.
pub const TEST_ROOT: &str = "ktest";

impl Initrd {
    /// The root task's name, as its first and last lines say (`<name>: hello from user
    /// space`, `<name>: done`).
    pub fn root_name(self) -> &'static str {
        match self {
            Initrd::Tests => TEST_ROOT,
            _ => "init",
        }
    }

    /// The archive an interactive boot (`make run`) with these bootargs gets: the test root
    /// task when they ask for the kernel's tests (`test=...`) or its benchmarks
    /// (`bench=kernel`), init otherwise.
    pub fn for_bootargs(bootargs: &str) -> Initrd {
        let asks = |word: &str| bootargs.split_whitespace().any(|w| w.starts_with(word));
        if asks("test=") || asks("bench=kernel") {
            Initrd::Tests
        } else {
            Initrd::Normal
        }
    }
}

/// Mode bits of `init` (with `S_IFREG` added by the writer: 0o100755).
const EXECUTABLE: u32 = 0o755;

/// 4 KiB of fixed pseudo-random bytes (a 64-bit LCG, Knuth's MMIX constants): no cpio magic,
/// and the same bytes on every build.
fn not_cpio() -> Vec<u8> {
    let mut state: u64 = 0x6d69_6372_6f6b_726e;
    let mut out = Vec::with_capacity(4096);
    while out.len() < 4096 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.extend_from_slice(&state.to_be_bytes()[..4]);
    }
    out
}

/// A complete x86-64 Linux program (`exit(0)`) in one PT_LOAD segment: a valid ELF the kernel
/// must refuse because of `e_machine`, not because it is malformed.
fn x86_64_elf() -> Vec<u8> {
    // mov eax, 60 (exit); xor edi, edi; syscall
    const CODE: &[u8] = &[0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
    // Right after the file and program headers (64 + 56 bytes), as the classic tiny ELF does.
    const ENTRY: u64 = 0x40_0078;
    elf64::write_exec(
        elf64::EM_X86_64,
        ENTRY,
        &[Segment {
            p_type: elf64::PT_LOAD,
            flags: elf64::PF_R | elf64::PF_X,
            vaddr: ENTRY,
            paddr: ENTRY,
            data: CODE,
            memsz: CODE.len() as u64,
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::tests::parse;
    use object::read::elf::{FileHeader, ProgramHeader};

    fn files(kind: Initrd) -> Vec<(String, u32, Vec<u8>)> {
        let programs = [
            ("init", b"\x7fELF aarch64".to_vec()),
            ("vm", b"\x7fELF vm".to_vec()),
        ];
        let archive = kind.contents(&programs).unwrap().unwrap();
        parse(&archive)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.mode, e.data))
            .collect()
    }

    #[test]
    fn normal_holds_every_program_init_first() {
        assert_eq!(
            files(Initrd::Normal),
            [
                ("init".to_string(), 0o100_755, b"\x7fELF aarch64".to_vec()),
                ("vm".to_string(), 0o100_755, b"\x7fELF vm".to_vec())
            ]
        );
        assert_eq!(Initrd::None.contents(&[]).unwrap(), None);
        assert_eq!(Initrd::None.file_name(), None);
    }

    #[test]
    fn tests_hold_only_the_test_root_as_init() {
        let programs = [
            ("init", b"\x7fELF init".to_vec()),
            ("ktest", b"\x7fELF ktest".to_vec()),
        ];
        let parsed = |kind: Initrd| -> Vec<(String, Vec<u8>)> {
            let archive = kind.contents(&programs).unwrap().unwrap();
            parse(&archive)
                .unwrap()
                .into_iter()
                .map(|e| (e.name, e.data))
                .collect()
        };
        assert_eq!(
            parsed(Initrd::Tests),
            [("init".to_string(), b"\x7fELF ktest".to_vec())]
        );
        assert_eq!(
            parsed(Initrd::Normal),
            [("init".to_string(), b"\x7fELF init".to_vec())]
        );
        assert!(Initrd::Tests.contents(&programs[..1]).is_err());
    }

    #[test]
    fn bootargs_choose_the_root_task() {
        assert_eq!(Initrd::for_bootargs(""), Initrd::Normal);
        assert_eq!(Initrd::for_bootargs("run=anon"), Initrd::Normal);
        assert_eq!(Initrd::for_bootargs("bench=boot"), Initrd::Normal);
        assert_eq!(
            Initrd::for_bootargs("test=kernel ktest=fault"),
            Initrd::Tests
        );
        assert_eq!(Initrd::for_bootargs("x=1 test=boot"), Initrd::Tests);
        assert_eq!(Initrd::for_bootargs("bench=kernel"), Initrd::Tests);
        assert_eq!(Initrd::Tests.root_name(), "ktest");
        assert_eq!(Initrd::Normal.root_name(), "init");
    }

    #[test]
    fn not_cpio_is_4k_fixed_and_not_cpio() {
        let bytes = Initrd::NotCpio.contents(&[]).unwrap().unwrap();
        assert_eq!(bytes.len(), 4096);
        assert_ne!(&bytes[..6], cpio::MAGIC);
        assert!(parse(&bytes).is_err());
        let other = [("init", b"x".to_vec())];
        assert_eq!(Initrd::NotCpio.contents(&other).unwrap().unwrap(), bytes);
    }

    #[test]
    fn no_init_holds_only_a_readme() {
        let names: Vec<String> = files(Initrd::NoInit).into_iter().map(|f| f.0).collect();
        assert_eq!(names, ["readme.txt"]);
    }

    #[test]
    fn x86_init_is_a_well_formed_x86_64_executable() {
        let [(name, mode, elf)] = &files(Initrd::X86Elf)[..] else {
            panic!("one file expected")
        };
        assert_eq!((name.as_str(), *mode), ("init", 0o100_755));
        let header = object::elf::FileHeader64::<object::Endianness>::parse(&elf[..]).unwrap();
        let endian = header.endian().unwrap();
        assert_eq!(header.e_machine(endian), object::elf::EM_X86_64);
        assert_eq!(header.e_type(endian), object::elf::ET_EXEC);
        let phdrs = header.program_headers(endian, &elf[..]).unwrap();
        assert_eq!(phdrs.len(), 1);
        assert_eq!(phdrs[0].p_type(endian), object::elf::PT_LOAD);
        // The entry point is inside the loaded code, at the offset the segment maps.
        let entry = header.e_entry(endian);
        assert_eq!(entry, phdrs[0].p_vaddr(endian));
        assert_eq!(phdrs[0].p_offset(endian), 0x78);
        assert_eq!(phdrs[0].data(endian, &elf[..]).unwrap()[..2], [0xb8, 0x3c]);
        assert!(
            matches!(object::File::parse(&elf[..]), Ok(f) if object::Object::architecture(&f) == object::Architecture::X86_64)
        );
    }

    #[test]
    fn not_elf_init_is_a_script() {
        assert_eq!(files(Initrd::NotElf)[0].2, b"#!/bin/sh\necho hi\n");
    }
}
