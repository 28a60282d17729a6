//! `cargo xtask`: build the XDP program, run the tests, the demo, the benchmarks and the
//! fuzz targets, build the Debian package.
//!
//! Each command installs what it needs when it is missing (Debian packages, nightly's
//! rust-src, a bpf-linker built against nightly's own LLVM, cargo-fuzz) and says what it is
//! doing.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod bench;
mod demo;
mod package;
mod suite;
mod vm;

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
    /// Install prerequisites, build, lint and run every test (unit, a short run of each fuzz
    /// target, netns integration).
    Test {
        /// The kernels the netns suite runs on: this machine's, then Debian 12's 6.1 in a
        /// VM (all); only this machine's (host, or none: no VM); only the VM's (6.1).
        #[arg(long, value_enum, default_value_t = Kernels::All)]
        kernel: Kernels,
        /// Extra arguments for the integration tests (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        filter: Vec<String>,
    },
    /// Run a command as a reaper of the orphans it leaves (what PID 1 does on a real
    /// system; the VM's init does not), returning its exit status. The VM runs each test
    /// file through it.
    #[command(hide = true)]
    Reap {
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Boot Debian 12's 6.1 kernel in a VM (this machine's root shared in, the suite's
    /// modules loaded, bpffs mounted) and run one command there as root, or a shell.
    Vm {
        /// The kernel series (Debian's package of it is fetched and kept under target/vm/).
        #[arg(long, default_value = "6.1")]
        kernel: String,
        /// The command and its arguments, after `--`; an interactive shell if omitted.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// The quick loop, without root or network namespaces: format, clippy and the unit
    /// tests (the eBPF crate is linted by `test`).
    Check,
    /// Two vipd nodes and a client in network namespaces: hand the VIP over while pinging it.
    Demo,
    /// Build the Debian package (target/debian/vipd_*.deb) with its man page and shell
    /// completions, and check its contents.
    Deb,
    /// Failover and data-plane benchmarks side by side with ucarp and keepalived.
    Bench {
        /// A short run for smoke testing (fewer repetitions and scenarios).
        #[arg(long)]
        quick: bool,
        /// Run only these scenarios (comma-separated); the report shows only what ran.
        #[arg(long, value_delimiter = ',', value_name = "SCENARIOS")]
        only: Vec<bench::Scenario>,
    },
    /// Fuzz a target (or each in turn) with libFuzzer, keeping what it learns in
    /// target/fuzz/corpus/TARGET; a crashing input is saved under fuzz/artifacts/TARGET/.
    Fuzz {
        /// carp_decode, rx_receive, config_toml, config_flags or control; all if omitted.
        target: Option<String>,
        /// How long to fuzz each target (0: until it fails or is interrupted).
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// More libFuzzer options, after `--` (e.g. `-- -fork=2`).
        #[arg(last = true)]
        libfuzzer: Vec<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kernels {
    All,
    Host,
    None,
    #[value(name = "6.1")]
    V6_1,
}

/// The fuzz targets (fuzz/fuzz_targets/), each with seed inputs in fuzz/corpus/TARGET/.
const FUZZ_TARGETS: &[&str] = &[
    "carp_decode",
    "rx_receive",
    "config_toml",
    "config_flags",
    "control",
];
/// How long `cargo xtask test` fuzzes each target.
const FUZZ_SMOKE_SECONDS: u64 = 20;
/// libFuzzer's limits on every run: an input that needs more memory is a failure.
const FUZZ_LIMITS: &[&str] = &["-rss_limit_mb=512", "-malloc_limit_mb=256"];
/// The cargo-fuzz installed when it is missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Debian packages the tests, demo and benchmarks use.
const APT_PACKAGES: &[&str] = &[
    "iproute2",
    "iputils-ping",
    "iputils-arping",
    "nftables",
    "tcpdump",
    "ucarp",
    "keepalived",
    "iperf3",
    "ethtool",
    "curl",
    "prometheus",
    "ifupdown",
    "man-db",
];

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::BuildEbpf => build_ebpf(),
        Cmd::Test { kernel, filter } => test(kernel, &filter),
        Cmd::Vm { kernel, command } => vm_command(&kernel, &command),
        Cmd::Reap { command } => std::process::exit(vm::reap(&command)?),
        Cmd::Check => check(),
        Cmd::Deb => package::build().and_then(|deb| package::check(&deb)),
        Cmd::Demo => {
            ensure_apt()?;
            build_all()?;
            demo::run(&vipd_bin())
        }
        Cmd::Bench { quick, only } => {
            ensure_apt()?;
            build_all()?;
            bench::run(&workspace_root(), &vipd_bin(), quick, &only)
        }
        Cmd::Fuzz {
            target,
            seconds,
            libfuzzer,
        } => fuzz(target.as_deref(), seconds, &libfuzzer),
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

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn ensure_apt() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    apt_install(&missing)
}

fn apt_install(missing: &[&str]) -> Result<()> {
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(missing)
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

pub fn build_all() -> Result<()> {
    build_ebpf()?;
    step("building vipd (release)");
    run(cargo("stable").args(["build", "--release", "-p", "vipd"]))
}

/// The checks that need neither root nor a network namespace: formatting, clippy, the
/// unit tests.
fn lint_and_unit() -> Result<()> {
    step("cargo fmt --check");
    run(cargo("stable").args(["fmt", "--all", "--check"]))?;
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
    run(cargo("stable").args(["test", "--workspace", "--exclude", "vipd-tests"]))
}

fn check() -> Result<()> {
    lint_and_unit()?;
    step("checks passed (the netns suite: cargo xtask test)");
    Ok(())
}

fn ebpf_lints() -> Result<()> {
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
        .env("CARGO_TARGET_DIR", root.join("target/ebpf")))
}

/// How many times slower than the host a TCG guest runs the spawned work tests time
/// (`VIPD_TEST_SLOWDOWN`, see `vipd_tests::slowdown`).
const TCG_SLOWDOWN: u32 = 5;
/// How long the whole suite may run in the VM before it is stopped.
const VM_SUITE_LIMIT: Duration = Duration::from_secs(50 * 60);

fn test(kernels: Kernels, filter: &[String]) -> Result<()> {
    if !nix_is_root() {
        bail!("the integration tests need root (network namespaces, XDP); run as root");
    }
    ensure_apt()?;
    build_ebpf()?;
    ebpf_lints()?;
    lint_and_unit()?;
    fuzz_smoke()?;
    let deb = package::build()?;
    package::check(&deb)?;
    let mut failed = Vec::new();
    if kernels != Kernels::V6_1 {
        step("building the vipd binary the integration tests run");
        run(cargo("stable").args(["build", "-p", "vipd", "--bin", "vipd"]))?;
        let bins = suite::build(false)?;
        let skips = kernel_skips();
        let kernel = kernel_release();
        step(&format!(
            "integration tests in network namespaces on this machine's kernel ({kernel}), one test at a time"
        ));
        let start = Instant::now();
        let vipd = workspace_root().join("target/debug/vipd");
        let results = suite::run_here(&bins, filter, &skips, &vipd, &kernel)?;
        if !suite::summary(&kernel, &results, &skips, start.elapsed()) {
            failed.push(kernel);
        }
    }
    if matches!(kernels, Kernels::All | Kernels::V6_1) {
        match vm_suite("6.1", filter) {
            Ok((kernel, true)) => drop(kernel),
            Ok((kernel, false)) => failed.push(kernel),
            Err(e) => {
                println!(
                    "the 6.1 VM could not run the suite: {e:#} (--kernel none leaves the VM out)"
                );
                failed.push("6.1 (VM)".into());
            }
        }
    }
    if !failed.is_empty() {
        bail!("integration tests failed on {}", failed.join(", "));
    }
    step("all tests passed");
    Ok(())
}

/// Runs the netns suite in a VM on Debian's `series` kernel, with the release vipd and
/// release test binaries; in the VM nothing is skipped. Returns the kernel and whether
/// every file passed.
fn vm_suite(series: &str, filter: &[String]) -> Result<(String, bool)> {
    vm::ensure_tools()?;
    let kernel = vm::kernel(series)?;
    let accel = vm::accel(&kernel)?;
    let bins = suite::build(true)?;
    let root = workspace_root();
    // The deadlines tests give vipd for what it spawns (script trackers), widened under
    // the emulator, which makes a fork and exec of sh take well over 100 ms.
    let slowdown = if accel == vm::Accel::Tcg {
        TCG_SLOWDOWN
    } else {
        1
    };
    let vipd = root.join("target/release/vipd");
    let jobs: Vec<vm::Job> = bins
        .iter()
        .map(|b| vm::Job {
            name: b.name.clone(),
            dir: root.join("tests"),
            env: vec![
                ("VIPD_BIN".into(), vipd.display().to_string()),
                ("VIPD_TEST_SLOWDOWN".into(), slowdown.to_string()),
            ],
            argv: std::iter::once(b.path.display().to_string())
                .chain(suite::args(b, filter, &[]))
                .collect(),
        })
        .collect();
    let name = format!("{} (VM, {})", kernel.release, accel.name());
    step(&format!(
        "integration tests on {} in a VM under {}, one test at a time (VIPD_TEST_SLOWDOWN={slowdown})",
        kernel.release,
        accel.describe()
    ));
    let start = Instant::now();
    let mut results = Vec::new();
    let boot = vm::boot_with(
        &kernel,
        accel,
        &root.join("target/vm/suite"),
        &jobs,
        VM_SUITE_LIMIT,
        |i, r| {
            let ok = r.rc == 0;
            if !ok {
                print!("{}", r.log);
            }
            let fr = suite::result_of(&bins[i], &r.log, ok, r.time, filter, &[]);
            println!("{}", suite::line(&fr, &name));
            results.push(fr);
        },
    )?;
    println!(
        "VM: {} booted in {:.1}s under {}",
        kernel.release,
        boot.boot_time.as_secs_f64(),
        accel.name()
    );
    for (bin, r) in bins.iter().zip(&boot.results) {
        if r.is_none() {
            println!("{} on {name}: did not finish", bin.name);
        }
    }
    let all_ran = boot.results.iter().all(Option::is_some);
    let passed = suite::summary(&name, &results, &[], start.elapsed()) && all_ran;
    Ok((name, passed))
}

/// `cargo xtask vm`: one command in the VM (its output printed, its exit status returned)
/// or an interactive shell.
fn vm_command(series: &str, command: &[String]) -> Result<()> {
    if !nix_is_root() {
        bail!("the VM runs as root (its guest shares this machine's root); run as root");
    }
    vm::ensure_tools()?;
    let kernel = vm::kernel(series)?;
    let accel = vm::accel(&kernel)?;
    eprintln!("    {} under {}", kernel.release, accel.describe());
    if command.is_empty() {
        return vm::shell(&kernel, accel);
    }
    let job = vm::Job {
        name: "command".into(),
        dir: std::env::current_dir()?,
        env: vec![],
        argv: command.to_vec(),
    };
    let out = workspace_root().join("target/vm/command");
    let boot = vm::boot(&kernel, accel, &out, &[job], Duration::from_secs(24 * 3600))?;
    let Some(r) = boot.results.into_iter().next().flatten() else {
        bail!("the command did not finish in the VM");
    };
    print!("{}", r.log);
    eprintln!(
        "    booted in {:.1}s; the command took {:.1}s and exited {}",
        boot.boot_time.as_secs_f64(),
        r.time.as_secs_f64(),
        r.rc
    );
    if r.rc != 0 {
        std::process::exit(r.rc.clamp(1, 255));
    }
    Ok(())
}

/// The netns tests the running kernel cannot run, with the reason: those that need a
/// device kind it cannot make (found out in a throwaway network namespace).
fn kernel_skips() -> Vec<suite::Skip> {
    /// Each device kind a test may need, and how to make one on the probe's veth.
    const DEVICES: &[(&str, &str)] = &[
        (
            "vlan",
            "ip link add link probe0 name probe0.5 type vlan id 5",
        ),
        ("bond", "ip link add probe1 type bond"),
    ];
    const NEEDS: &[(&str, &str, &[&str])] = &[
        (
            "links",
            "a_vip_on_a_vlan_interface_fails_over_with_one_owner",
            &["vlan"],
        ),
        (
            "links",
            "a_vip_on_a_bond_fails_over_with_one_owner_and_survives_a_slave_failure",
            &["bond"],
        ),
        (
            "links",
            "a_vip_on_a_vlan_over_a_bond_fails_over_with_one_owner",
            &["vlan", "bond"],
        ),
    ];
    let ns = format!("vipd-probe-{}", std::process::id());
    let sh = |script: &str| {
        Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let made = sh(&format!(
        "ip netns add {ns} && ip -n {ns} link add probe0 type veth peer name probe9"
    ));
    let can: Vec<&str> = DEVICES
        .iter()
        .filter(|(_, make)| made && sh(&format!("ip netns exec {ns} {make}")))
        .map(|(kind, _)| *kind)
        .collect();
    sh(&format!("ip netns del {ns}"));
    NEEDS
        .iter()
        .filter(|(_, _, kinds)| !kinds.iter().all(|k| can.contains(k)))
        .map(|(file, test, kinds)| suite::Skip {
            file,
            test,
            reason: format!(
                "this kernel ({}) cannot create {} devices",
                kernel_release(),
                kinds.join(" and ")
            ),
        })
        .collect()
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn cargo_fuzz_works() -> bool {
    cargo("nightly")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ensure_cargo_fuzz() -> Result<()> {
    if cargo_fuzz_works() {
        return Ok(());
    }
    step(&format!("installing cargo-fuzz {CARGO_FUZZ_VERSION}"));
    run(cargo("stable").args([
        "install",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
        "--locked",
    ]))?;
    if !cargo_fuzz_works() {
        bail!(
            "cargo-fuzz was installed but `cargo +nightly fuzz --version` fails; is ~/.cargo/bin on PATH?"
        );
    }
    Ok(())
}

/// How the fuzz targets are built: the smoke test in `cargo xtask test` trades speed of
/// execution for build time (no sanitizer, parallel code generation); long runs add
/// AddressSanitizer. Each has a build directory of its own, so neither rebuilds the other.
#[derive(Clone, Copy)]
enum FuzzBuild {
    Smoke,
    Long,
}

/// `cargo +nightly fuzz SUB` with the options of `build`.
fn cargo_fuzz(sub: &str, build: FuzzBuild) -> Command {
    let root = workspace_root();
    let (sanitizer, codegen_units) = match build {
        FuzzBuild::Smoke => ("none", Some("16")),
        FuzzBuild::Long => ("address", None),
    };
    let mut cmd = cargo("nightly");
    cmd.args(["fuzz", sub, "--fuzz-dir"])
        .arg(root.join("fuzz"))
        .arg("--target-dir")
        .arg(root.join("target/fuzz").join(sanitizer))
        .args(["--sanitizer", sanitizer]);
    if let Some(n) = codegen_units {
        cmd.args(["--codegen-units", n]);
    }
    cmd
}

/// Fuzzing `target` for `seconds` from its seeds and the corpus it has grown so far
/// (target/fuzz/corpus/TARGET, where new inputs go: the seeds stay as they are).
fn fuzz_run(target: &str, build: FuzzBuild, seconds: u64, extra: &[String]) -> Result<Command> {
    let root = workspace_root();
    let corpus = root.join("target/fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let mut cmd = cargo_fuzz("run", build);
    cmd.arg(target)
        .arg(&corpus)
        .arg(root.join("fuzz/corpus").join(target))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args(FUZZ_LIMITS)
        .args(extra);
    Ok(cmd)
}

/// The fuzz step of `cargo xtask test`: every target for a few seconds, as many at a time
/// as there are cores, each writing to a log of its own that is shown if it fails.
fn fuzz_smoke() -> Result<()> {
    ensure_cargo_fuzz()?;
    let root = workspace_root();
    step("fuzz targets: cargo fmt --check (nightly)");
    run(cargo("nightly")
        .current_dir(root.join("fuzz"))
        .args(["fmt", "--check"]))?;
    step("building the fuzz targets (nightly, libFuzzer)");
    run(&mut cargo_fuzz("build", FuzzBuild::Smoke))?;
    let logs = root.join("target/fuzz/logs");
    std::fs::create_dir_all(&logs)?;
    let at_once = std::thread::available_parallelism().map_or(1, |n| n.get());
    step(&format!(
        "fuzzing each target for {FUZZ_SMOKE_SECONDS} s ({at_once} at a time; logs in {})",
        logs.display()
    ));
    let mut failed = Vec::new();
    for batch in FUZZ_TARGETS.chunks(at_once) {
        let mut running = Vec::new();
        for &target in batch {
            let log_path = logs.join(format!("{target}.log"));
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("creating {}", log_path.display()))?;
            let mut cmd = fuzz_run(target, FuzzBuild::Smoke, FUZZ_SMOKE_SECONDS, &[])?;
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            let child = cmd
                .spawn()
                .with_context(|| format!("cannot start {cmd:?}"))?;
            running.push((target, child, log_path));
        }
        for (target, mut child, log_path) in running {
            let status = child.wait()?;
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if status.success() {
                let done = log
                    .lines()
                    .rfind(|l| l.contains("DONE"))
                    .unwrap_or("no summary");
                eprintln!("    {target}: {done}");
            } else {
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!(
                    "    {target} FAILED ({status}); end of {}:",
                    log_path.display()
                );
                for line in tail.iter().rev() {
                    eprintln!("      {line}");
                }
                failed.push(target);
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (a failing input is saved in fuzz/artifacts/TARGET/; `cargo +nightly fuzz run TARGET FILE` replays it)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// `cargo xtask fuzz`: long runs, with AddressSanitizer, output on the terminal.
fn fuzz(target: Option<&str>, seconds: u64, extra: &[String]) -> Result<()> {
    let targets: Vec<&str> = match target {
        Some(t) if FUZZ_TARGETS.contains(&t) => vec![t],
        Some(t) => bail!(
            "no fuzz target {t:?}; there are {}",
            FUZZ_TARGETS.join(", ")
        ),
        None => FUZZ_TARGETS.to_vec(),
    };
    // The vipd library embeds the XDP object.
    build_ebpf()?;
    ensure_cargo_fuzz()?;
    step("building the fuzz targets (nightly, libFuzzer, AddressSanitizer)");
    run(&mut cargo_fuzz("build", FuzzBuild::Long))?;
    for target in targets {
        if seconds == 0 {
            step(&format!(
                "fuzzing {target} until it fails or is interrupted"
            ));
        } else {
            step(&format!("fuzzing {target} for {seconds} s"));
        }
        run(&mut fuzz_run(target, FuzzBuild::Long, seconds, extra)?).with_context(|| {
            format!("{target} failed: the input that did it is under fuzz/artifacts/{target}/")
        })?;
    }
    step("no failure found");
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
