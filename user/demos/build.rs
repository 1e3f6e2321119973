//! Links the demos with the user program layout from user/rt.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/../rt/link.ld");
    println!("cargo:rerun-if-changed=../rt/link.ld");
}
