//! The netns suite, one test file at a time: builds the test binaries of `tests/`, runs
//! each (on this machine, or hands them to `vm` for another kernel) and reports, per file,
//! the kernel it ran on, its counts and its time, then the suite's total.
//!
//! A test the kernel cannot run is passed to libtest as `--skip` and counted as skipped,
//! with its reason, never as passed.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, step, workspace_root};

/// One test file of `tests/tests/`, built.
#[derive(Debug, Clone)]
pub struct TestBinary {
    /// The file's stem (`failover` for `tests/tests/failover.rs`).
    pub name: String,
    pub path: PathBuf,
}

/// A test left out on this kernel, and why.
#[derive(Debug, Clone)]
pub struct Skip {
    pub file: &'static str,
    pub test: &'static str,
    pub reason: String,
}

/// What one test file did.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub name: String,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub time: Duration,
    /// The binary exited 0 and printed its summary.
    pub ok: bool,
}

/// Builds the netns test binaries (`--release` for the VM, where the emulator makes every
/// instruction count) and lists them by file, in name order.
pub fn build(release: bool) -> Result<Vec<TestBinary>> {
    step(&format!(
        "building the netns test binaries{}",
        if release { " (release)" } else { "" }
    ));
    let mut cmd = cargo("stable");
    cmd.args([
        "test",
        "-p",
        "vipd-tests",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    if release {
        cmd.arg("--release");
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo test --no-run")?;
    if !out.status.success() {
        bail!("building the test binaries failed");
    }
    let mut bins = executables(&String::from_utf8_lossy(&out.stdout));
    bins.sort_by(|a, b| a.name.cmp(&b.name));
    if bins.is_empty() {
        bail!("cargo built no test binaries for vipd-tests");
    }
    Ok(bins)
}

/// The test executables (the harness's own unit tests and each file of `tests/tests/`)
/// named in cargo's JSON messages.
fn executables(json_lines: &str) -> Vec<TestBinary> {
    json_lines
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter_map(|m| {
            Some(TestBinary {
                name: m["target"]["name"].as_str()?.to_owned(),
                path: PathBuf::from(m["executable"].as_str()?),
            })
        })
        .collect()
}

/// The arguments a test binary is run with: one test at a time, the filter, the skips.
pub fn args(bin: &TestBinary, filter: &[String], skips: &[Skip]) -> Vec<String> {
    let mut args: Vec<String> = filter.to_vec();
    args.push("--test-threads=1".into());
    for s in skips.iter().filter(|s| s.file == bin.name) {
        args.push("--skip".into());
        args.push(s.test.into());
    }
    args
}

/// The skips that apply to `bin` under `filter` (libtest filters are substrings).
fn skipped_in(bin: &TestBinary, filter: &[String], skips: &[Skip]) -> u64 {
    let free: Vec<&String> = filter.iter().filter(|f| !f.starts_with('-')).collect();
    skips
        .iter()
        .filter(|s| s.file == bin.name)
        .filter(|s| free.is_empty() || free.iter().any(|f| s.test.contains(f.as_str())))
        .count() as u64
}

/// Runs each binary here, output passed through, with `vipd` as the daemon under test.
pub fn run_here(
    bins: &[TestBinary],
    filter: &[String],
    skips: &[Skip],
    vipd: &Path,
    kernel: &str,
) -> Result<Vec<FileResult>> {
    let mut results = Vec::new();
    for bin in bins {
        let start = Instant::now();
        let out = Command::new(&bin.path)
            .args(args(bin, filter, skips))
            .env("VIPD_BIN", vipd)
            .current_dir(workspace_root().join("tests"))
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot start {}", bin.path.display()))?;
        let log = String::from_utf8_lossy(&out.stdout);
        print!("{log}");
        let r = result_of(
            bin,
            &log,
            out.status.success(),
            start.elapsed(),
            filter,
            skips,
        );
        println!("{}", line(&r, kernel));
        results.push(r);
    }
    Ok(results)
}

/// The result of one binary from its output and exit status.
pub fn result_of(
    bin: &TestBinary,
    log: &str,
    exited_ok: bool,
    time: Duration,
    filter: &[String],
    skips: &[Skip],
) -> FileResult {
    let summary = log.lines().rev().find_map(test_result);
    let (passed, failed) = summary.unwrap_or((0, 0));
    FileResult {
        name: bin.name.clone(),
        passed,
        failed,
        skipped: skipped_in(bin, filter, skips),
        time,
        ok: exited_ok && summary.is_some() && failed == 0,
    }
}

/// `failover on 6.1.0-57-amd64: 10 passed, 0 failed, 0 skipped in 75.2s`
pub fn line(r: &FileResult, kernel: &str) -> String {
    format!(
        "{} on {kernel}: {} passed, {} failed, {} skipped in {:.1}s{}",
        r.name,
        r.passed,
        r.failed,
        r.skipped,
        r.time.as_secs_f64(),
        if r.ok { "" } else { "  FAILED" }
    )
}

/// Prints the skips with their reasons and the suite's total line; true if all passed.
pub fn summary(kernel: &str, results: &[FileResult], skips: &[Skip], time: Duration) -> bool {
    for s in skips {
        println!("skipped: {} {}: {}", s.file, s.test, s.reason);
    }
    let sum = |f: fn(&FileResult) -> u64| results.iter().map(f).sum::<u64>();
    let failing: Vec<&str> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.name.as_str())
        .collect();
    println!(
        "netns suite on {kernel}: {} passed, {} failed, {} skipped in {:.0}s{}",
        sum(|r| r.passed),
        sum(|r| r.failed),
        sum(|r| r.skipped),
        time.as_secs_f64(),
        if failing.is_empty() {
            String::new()
        } else {
            format!(" (failing files: {})", failing.join(", "))
        }
    );
    failing.is_empty()
}

/// The passed and failed counts of a libtest summary line
/// (`test result: ok. 10 passed; 0 failed; 0 ignored; ...`).
pub fn test_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| {
        rest.split(';')
            .filter_map(|part| part.trim().strip_suffix(word))
            .filter_map(|n| n.trim().rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    Some((count("passed"), count("failed")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(name: &str) -> TestBinary {
        TestBinary {
            name: name.into(),
            path: PathBuf::from("/x"),
        }
    }

    fn skip(file: &'static str, test: &'static str) -> Skip {
        Skip {
            file,
            test,
            reason: "no vlan".into(),
        }
    }

    #[test]
    fn summary_lines_are_counted() {
        assert_eq!(
            test_result(
                "test result: ok. 10 passed; 0 failed; 0 ignored; 0 measured; 2 filtered out; finished in 89.76s"
            ),
            Some((10, 0))
        );
        assert_eq!(
            test_result("test result: FAILED. 3 passed; 7 failed; 0 ignored; 0 measured"),
            Some((3, 7))
        );
        assert_eq!(test_result("test a_test_that_failed ... FAILED"), None);
    }

    #[test]
    fn cargo_messages_name_the_test_executables() {
        let json = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"vipd_tests"},"profile":{"test":false},"executable":null}
{"reason":"compiler-artifact","target":{"kind":["test"],"name":"failover"},"profile":{"test":true},"executable":"/t/failover-1"}
{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"vipd_tests"},"profile":{"test":true},"executable":"/t/vipd_tests-2"}
{"reason":"build-finished","success":true}"#;
        let bins = executables(json);
        assert_eq!(bins.len(), 2);
        assert_eq!(bins[0].name, "failover");
        assert_eq!(bins[0].path, PathBuf::from("/t/failover-1"));
        assert_eq!(bins[1].name, "vipd_tests");
    }

    #[test]
    fn skips_go_to_their_file_and_are_counted_under_a_filter() {
        let skips = [skip("links", "a_vlan_test"), skip("links", "a_bond_test")];
        let a = args(&bin("links"), &[], &skips);
        assert_eq!(
            a,
            [
                "--test-threads=1",
                "--skip",
                "a_vlan_test",
                "--skip",
                "a_bond_test"
            ]
        );
        assert_eq!(args(&bin("failover"), &[], &skips), ["--test-threads=1"]);
        assert_eq!(skipped_in(&bin("links"), &[], &skips), 2);
        assert_eq!(skipped_in(&bin("links"), &["vlan".into()], &skips), 1);
        assert_eq!(skipped_in(&bin("links"), &["graceful".into()], &skips), 0);
        assert_eq!(skipped_in(&bin("failover"), &[], &skips), 0);
    }

    #[test]
    fn a_binary_without_a_summary_or_with_a_failure_is_not_ok() {
        let t = Duration::from_secs(1);
        let ok = "test result: ok. 2 passed; 0 failed; 0 ignored";
        assert!(result_of(&bin("a"), ok, true, t, &[], &[]).ok);
        assert!(!result_of(&bin("a"), ok, false, t, &[], &[]).ok);
        assert!(!result_of(&bin("a"), "thread panicked", true, t, &[], &[]).ok);
        let bad = "test result: FAILED. 1 passed; 1 failed; 0 ignored";
        let r = result_of(&bin("a"), bad, false, t, &[], &[]);
        assert_eq!((r.passed, r.failed, r.ok), (1, 1, false));
    }
}
