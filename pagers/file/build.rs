//! Links the file server with the user program layout from user/rt.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/../../user/rt/link.ld");
    println!("cargo:rerun-if-changed=../../user/rt/link.ld");
}
