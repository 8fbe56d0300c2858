//! Link arguments for the cdylib: the SONAME `libpeerlb.so.<major>` and a version script
//! that keeps every symbol but `peerlb_*` out of the dynamic symbol table.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets it");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpeerlb.so.{major}");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/peerlb.map");
    }
    println!("cargo:rerun-if-changed=peerlb.map");
    println!("cargo:rerun-if-changed=build.rs");
}
