//! Embeds the XDP object built by `cargo xtask build-ebpf`. Without it (a fresh clone, lint,
//! docs, a crate that only needs the library's types) an empty placeholder is embedded
//! instead, and loading the programs fails at run time with a message that says so.
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let obj = root.join("target/ebpf/bpfel-unknown-none/release/vipd-ebpf");
    println!("cargo:rerun-if-changed={}", obj.display());
    let embedded = if obj.exists() {
        obj
    } else {
        let placeholder = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("no-ebpf-object");
        std::fs::write(&placeholder, b"").expect("writing the placeholder object");
        placeholder
    };
    println!("cargo:rustc-env=VIPD_EBPF_OBJ={}", embedded.display());
}
