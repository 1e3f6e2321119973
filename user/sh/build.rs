//! Links the shell and its programs with the user program layout from user/rt (on the
//! target only: on the host the binaries are empty stubs, so that `cargo test -p sh` can
//! build the library).
fn main() {
    println!("cargo:rerun-if-changed=../rt/link.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/../rt/link.ld");
}
