//! Embeds the XDP object built by `cargo xtask build-ebpf`.
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let obj = root.join("target/ebpf/bpfel-unknown-none/release/vipd-ebpf");
    println!("cargo:rerun-if-changed={}", obj.display());
    if !obj.exists() {
        println!(
            "cargo::error=the XDP object {} is missing: run `cargo xtask build-ebpf` first",
            obj.display()
        );
        return;
    }
    println!("cargo:rustc-env=VIPD_EBPF_OBJ={}", obj.display());
}
