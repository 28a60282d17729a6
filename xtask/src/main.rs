//! `cargo xtask`: build the XDP program, run the tests, the demo and the benchmarks.
//!
//! Each command installs what it needs when it is missing (Debian packages, nightly's
//! rust-src, a bpf-linker built against nightly's own LLVM) and says what it is doing.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod bench;
mod demo;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "vipd build, test, demo and benchmark tasks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the eBPF toolchain if missing and build the XDP object.
    BuildEbpf,
    /// Install prerequisites, build, lint and run every test (unit and netns integration).
    Test {
        /// Extra arguments for the integration tests (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        filter: Vec<String>,
    },
    /// Two vipd nodes and a client in network namespaces: hand the VIP over while pinging it.
    Demo,
    /// Failover and data-plane benchmarks side by side with ucarp and keepalived.
    Bench {
        /// A short run for smoke testing (fewer repetitions and scenarios).
        #[arg(long)]
        quick: bool,
    },
}

/// Debian packages the tests, demo and benchmarks use.
const APT_PACKAGES: &[&str] = &[
    "iproute2",
    "iputils-ping",
    "iputils-arping",
    "tcpdump",
    "ucarp",
    "keepalived",
    "iperf3",
];

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::BuildEbpf => build_ebpf(),
        Cmd::Test { filter } => test(&filter),
        Cmd::Demo => {
            ensure_apt()?;
            build_all()?;
            demo::run(&vipd_bin())
        }
        Cmd::Bench { quick } => {
            ensure_apt()?;
            build_all()?;
            bench::run(&workspace_root(), &vipd_bin(), quick)
        }
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn vipd_bin() -> PathBuf {
    workspace_root().join("target/release/vipd")
}

fn step(what: &str) {
    eprintln!("==> {what}");
}

/// Runs a command, failing with its command line when it does not succeed.
fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// A cargo invocation for the given toolchain, free of the variables of the cargo that runs
/// xtask (they would pin the toolchain and its rustc).
pub fn cargo(toolchain: &str) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg(format!("+{toolchain}"));
    for var in [
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTDOC",
        "CARGO",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(workspace_root());
    cmd
}

fn ensure_apt() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn nightly_sysroot() -> Result<PathBuf> {
    let out = Command::new("rustc")
        .args(["+nightly", "--print", "sysroot"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .context("running rustc +nightly")?;
    if !out.status.success() {
        bail!(
            "the nightly toolchain is not installed (rustup toolchain install nightly): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

fn ensure_rust_src() -> Result<()> {
    let sysroot = nightly_sysroot()?;
    if sysroot.join("lib/rustlib/src/rust/library/core").exists() {
        return Ok(());
    }
    step("installing nightly's rust-src");
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

/// rustfmt and clippy for nightly, which lints the eBPF crate.
fn ensure_nightly_lints() -> Result<()> {
    let works = |tool: &str| {
        cargo("nightly")
            .args([tool, "--version"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if works("fmt") && works("clippy") {
        return Ok(());
    }
    step("installing nightly's rustfmt and clippy");
    run(Command::new("rustup").args([
        "component",
        "add",
        "rustfmt",
        "clippy",
        "--toolchain",
        "nightly",
    ]))
}

fn bpf_linker_works() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// bpf-linker must read nightly's LLVM 22 bitcode, so it is built against nightly's own
/// libLLVM. The folder of symlinks it is linked with stays: it is the linker's RUNPATH.
fn ensure_bpf_linker() -> Result<()> {
    if bpf_linker_works() {
        return Ok(());
    }
    let lib = nightly_sysroot()?.join("lib");
    let llvm = std::fs::read_dir(&lib)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {}", lib.display()))?;
    let home = std::env::var("HOME").context("HOME is not set")?;
    let prefix = PathBuf::from(home).join(".local/share/vipd/nightly-llvm");
    let plib = prefix.join("lib");
    std::fs::create_dir_all(&plib)?;
    for name in ["libLLVM.so", llvm.as_str()] {
        let link = plib.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(lib.join(&llvm), &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    step(&format!(
        "building bpf-linker against nightly's {llvm} (one to two minutes)"
    ));
    run(cargo("stable")
        .args([
            "install",
            "bpf-linker",
            "--version",
            "0.13.0",
            "--locked",
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("LLVM_PREFIX", &prefix))?;
    if !bpf_linker_works() {
        bail!(
            "bpf-linker was installed but `bpf-linker --version` fails; is ~/.cargo/bin on PATH?"
        );
    }
    Ok(())
}

fn build_ebpf() -> Result<()> {
    ensure_rust_src()?;
    ensure_bpf_linker()?;
    step("building the XDP object (vipd-ebpf, nightly, bpfel-unknown-none)");
    let root = workspace_root();
    run(cargo("nightly")
        .current_dir(root.join("vipd-ebpf"))
        .args([
            "build",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ])
        .env("CARGO_TARGET_DIR", root.join("target/ebpf")))?;
    eprintln!(
        "    {}",
        root.join("target/ebpf/bpfel-unknown-none/release/vipd-ebpf")
            .display()
    );
    Ok(())
}

fn build_all() -> Result<()> {
    build_ebpf()?;
    step("building vipd (release)");
    run(cargo("stable").args(["build", "--release", "-p", "vipd"]))
}

fn test(filter: &[String]) -> Result<()> {
    if !nix_is_root() {
        bail!("the integration tests need root (network namespaces, XDP); run as root");
    }
    ensure_apt()?;
    build_ebpf()?;
    step("cargo fmt --check");
    run(cargo("stable").args(["fmt", "--all", "--check"]))?;
    step("vipd-ebpf: cargo fmt --check and clippy -D warnings (nightly, bpfel-unknown-none)");
    ensure_nightly_lints()?;
    let root = workspace_root();
    run(cargo("nightly")
        .current_dir(root.join("vipd-ebpf"))
        .args(["fmt", "--check"]))?;
    run(cargo("nightly")
        .current_dir(root.join("vipd-ebpf"))
        .args([
            "clippy",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ])
        .env("CARGO_TARGET_DIR", root.join("target/ebpf")))?;
    step("cargo clippy --workspace --all-targets -- -D warnings");
    run(cargo("stable").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("unit tests");
    run(cargo("stable").args(["test", "--workspace", "--exclude", "vipd-tests"]))?;
    step("building the vipd binary the integration tests run");
    run(cargo("stable").args(["build", "-p", "vipd", "--bin", "vipd"]))?;
    step("integration tests in network namespaces (serial, real kernel XDP)");
    run(cargo("stable")
        .args(["test", "-p", "vipd-tests", "--"])
        .args(filter)
        .args(["--test-threads=1"])
        .env("VIPD_BIN", workspace_root().join("target/debug/vipd")))?;
    step("all tests passed");
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
