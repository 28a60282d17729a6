//! Another kernel in a qemu VM: Debian's kernel package unpacked under `target/vm/`,
//! booted with virtme-ng, which shares this machine's root into the guest read-only over
//! 9p. The guest runs a shell script written here; what it produces (each job's output,
//! exit status and time) lands in a `--rwdir` folder the host reads, because vng does not
//! return the guest's exit status.
//!
//! KVM is used when it boots a guest; otherwise qemu's TCG emulator, and every report
//! says which. Timings under TCG are not comparable with the host's; ownership and loss
//! are.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{run, step, workspace_root};

/// The virtme-ng release the VM runner is written against.
const VIRTME_NG: &str = "virtme-ng==1.42";
/// Debian packages the VM needs: qemu, modprobe/depmod, and busybox for virtme's initramfs.
const APT: &[&str] = &["qemu-system-x86", "kmod", "busybox-static"];
/// Modules the netns suite needs on a modular kernel.
const MODULES: &str = "veth 8021q bonding dummy sch_ingress";
/// How long a KVM guest may take to run `true` before KVM is taken as unusable.
const KVM_PROBE: Duration = Duration::from_secs(60);
/// How long a boot may take to reach the guest's script.
const BOOT_LIMIT: Duration = Duration::from_secs(180);

/// A kernel unpacked and ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// `6.1.0-57-amd64`
    pub release: String,
    pub vmlinuz: PathBuf,
}

/// How qemu runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// `KVM` or `TCG`.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG (qemu's emulator; /dev/kvm is missing or does not boot a guest)",
        }
    }
}

/// One command the guest runs; its output goes to `OUT/NAME.log`, and
/// `rc start end` (exit status, guest clock in seconds) to `OUT/NAME.rc`.
pub struct Job {
    pub name: String,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
}

/// What a job did in the guest.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub rc: i32,
    pub time: Duration,
    pub log: String,
}

fn vm_dir() -> PathBuf {
    workspace_root().join("target/vm")
}

/// Installs qemu, kmod, busybox and virtme-ng when missing.
pub fn ensure_tools() -> Result<()> {
    let missing: Vec<&str> = APT
        .iter()
        .copied()
        .filter(|p| !crate::dpkg_installed(p))
        .collect();
    if !missing.is_empty() {
        step(&format!("installing {}", missing.join(" ")));
        crate::apt_install(&missing)
            .context("cannot install qemu for the VM (no access to Debian's packages?)")?;
    }
    if !works(Command::new("vng").arg("--version")) {
        step(&format!("installing {VIRTME_NG} (pip)"));
        run(Command::new("python3").args(["-m", "pip", "install", "-q", VIRTME_NG]))
            .context("cannot install virtme-ng (no access to PyPI?)")?;
        if !works(Command::new("vng").arg("--version")) {
            bail!(
                "virtme-ng was installed but `vng --version` fails; is pip's bin folder on PATH?"
            );
        }
    }
    Ok(())
}

fn works(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The newest Debian kernel of `series` (`6.1`), unpacked under `target/vm/` (used from
/// there when already present, without asking the registry).
pub fn kernel(series: &str) -> Result<Kernel> {
    if series != "6.1" {
        bail!("no Debian kernel package is known for {series}; Debian 12 ships 6.1 (--kernel 6.1)");
    }
    let dir = vm_dir();
    fs::create_dir_all(&dir)?;
    if let Some(k) = unpacked(&dir, series) {
        return Ok(k);
    }
    let pattern = r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$";
    let mut pkg = newest(pattern)?;
    if pkg.is_none() {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        pkg = newest(pattern)?;
    }
    let pkg = pkg.context("Debian's registry offers no linux-image-6.1.0-*-amd64-unsigned")?;
    let release = pkg
        .strip_prefix("linux-image-")
        .and_then(|p| p.strip_suffix("-unsigned"))
        .context("unexpected kernel package name")?
        .to_owned();
    step(&format!("fetching and unpacking {pkg}"));
    let debs = dir.join("debs");
    fs::create_dir_all(&debs)?;
    run(Command::new("apt-get")
        .args(["download", "-qq", &pkg])
        .current_dir(&debs))
    .with_context(|| format!("cannot download {pkg}"))?;
    let deb = fs::read_dir(&debs)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&pkg) && n.ends_with(".deb"))
        })
        .context("apt-get download left no .deb")?;
    let root = dir.join(format!("linux-{release}"));
    let _ = fs::remove_dir_all(&root);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    run(Command::new("depmod")
        .args(["-a", "-b"])
        .arg(&root)
        .arg(&release))?;
    fs::write(root.join(".ready"), &release)?;
    let _ = fs::remove_file(&deb);
    unpacked(&dir, series).context("the unpacked kernel is incomplete")
}

/// A kernel of `series` already unpacked in `dir` (the newest if several).
fn unpacked(dir: &Path, series: &str) -> Option<Kernel> {
    let mut found: Vec<Kernel> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let release = fs::read_to_string(e.path().join(".ready")).ok()?;
            let release = release.trim().to_owned();
            let vmlinuz = e.path().join(format!("boot/vmlinuz-{release}"));
            (release.starts_with(&format!("{series}.")) && vmlinuz.exists())
                .then_some(Kernel { release, vmlinuz })
        })
        .collect();
    found.sort_by_key(|k| version_key(&k.release));
    found.pop()
}

/// `6.1.0-57-amd64` → [6, 1, 0, 57]: numeric order of kernel releases.
fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The newest package whose name matches `pattern`, per the registry's package lists.
fn newest(pattern: &str) -> Result<Option<String>> {
    let out = Command::new("apt-cache")
        .args(["search", "--names-only", pattern])
        .output()
        .context("cannot run apt-cache")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .max_by_key(|name| version_key(name))
        .map(str::to_owned))
}

/// KVM if a KVM guest boots here (found out once per host kernel and qemu, kept under
/// `target/vm/`), TCG otherwise.
pub fn accel(kernel: &Kernel) -> Result<Accel> {
    if !Path::new("/dev/kvm").exists() {
        return Ok(Accel::Tcg);
    }
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    let key = format!("{} {qemu} {}", crate::kernel_release(), kernel.release);
    let cache = vm_dir().join("kvm-probe");
    if let Ok(text) = fs::read_to_string(&cache)
        && let Some((k, verdict)) = text.rsplit_once('\n')
        && k == key
    {
        return Ok(if verdict == Accel::Kvm.name() {
            Accel::Kvm
        } else {
            Accel::Tcg
        });
    }
    step("finding out whether KVM boots a guest here");
    let out = vm_dir().join("kvm-probe.d");
    let job = Job {
        name: "probe".into(),
        dir: PathBuf::from("/"),
        env: vec![],
        argv: vec!["true".into()],
    };
    let ok = boot(kernel, Accel::Kvm, &out, &[job], KVM_PROBE)
        .map(|b| {
            b.results
                .first()
                .is_some_and(|r| r.as_ref().is_some_and(|r| r.rc == 0))
        })
        .unwrap_or(false);
    let verdict = if ok { Accel::Kvm } else { Accel::Tcg };
    fs::write(&cache, format!("{key}\n{}", verdict.name()))?;
    Ok(verdict)
}

/// What a boot did: the time to the guest's script and each job's result, in order
/// (`None` for a job that never finished).
pub struct Boot {
    pub boot_time: Duration,
    pub results: Vec<Option<JobResult>>,
}

/// Boots `kernel`, runs `jobs` one after another as root (modules loaded, bpffs mounted)
/// and collects their results in `out`; `on_done` is called as each job finishes. The VM
/// is killed after `limit`.
pub fn boot_with(
    kernel: &Kernel,
    accel: Accel,
    out: &Path,
    jobs: &[Job],
    limit: Duration,
    mut on_done: impl FnMut(usize, &JobResult),
) -> Result<Boot> {
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(out)?;
    let script = out.join("run.sh");
    fs::write(&script, guest_script(out, jobs, "poweroff -f"))?;
    let console = fs::File::create(out.join("console.log"))?;
    let mut cmd = vng(kernel, accel, out);
    cmd.arg("-v")
        .arg("--exec")
        .arg(format!("sh {}", script.display()))
        .stdin(Stdio::null())
        .stdout(console.try_clone()?)
        .stderr(console);
    let start = Instant::now();
    let mut child = KillOnDrop(cmd.spawn().context("cannot start vng")?);
    let mut boot_time = None;
    let mut results: Vec<Option<JobResult>> = vec![None; jobs.len()];
    let mut next = 0;
    loop {
        if boot_time.is_none() && out.join("booted").exists() {
            boot_time = Some(start.elapsed());
        }
        // Whether the VM is gone is read before its results, so that what the guest wrote
        // just before powering off is still collected.
        let exited = child.0.try_wait()?.is_some();
        while next < jobs.len() {
            match job_result(out, &jobs[next].name) {
                Some(r) => {
                    on_done(next, &r);
                    results[next] = Some(r);
                    next += 1;
                }
                None => break,
            }
        }
        if next == jobs.len() || exited {
            break;
        }
        if boot_time.is_none() && start.elapsed() > BOOT_LIMIT {
            bail!(
                "the VM did not reach its script within {}s (console: {})",
                BOOT_LIMIT.as_secs(),
                out.join("console.log").display()
            );
        }
        if start.elapsed() > limit {
            bail!(
                "the VM ran over its {}s limit (console: {})",
                limit.as_secs(),
                out.join("console.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let Some(boot_time) = boot_time else {
        bail!(
            "the VM exited before its script ran (console: {})",
            out.join("console.log").display()
        );
    };
    Ok(Boot { boot_time, results })
}

/// `boot_with` without progress reports.
pub fn boot(
    kernel: &Kernel,
    accel: Accel,
    out: &Path,
    jobs: &[Job],
    limit: Duration,
) -> Result<Boot> {
    boot_with(kernel, accel, out, jobs, limit, |_, _| {})
}

/// An interactive shell in the guest on this terminal, after the same set-up as a job.
pub fn shell(kernel: &Kernel, accel: Accel) -> Result<()> {
    let out = vm_dir().join("shell");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out)?;
    let script = out.join("shell.sh");
    fs::write(&script, guest_script(&out, &[], "exec bash -i"))?;
    run(Command::new("chmod").arg("+x").arg(&script))?;
    vng(kernel, accel, &out)
        .arg("--shell")
        .arg(&script)
        .status()
        .context("cannot start vng")?;
    Ok(())
}

/// `vng` booting `kernel` with two CPUs, 2 GiB and `out` writable in the guest, started
/// from the workspace (the guest starts in the same path).
fn vng(kernel: &Kernel, accel: Accel, out: &Path) -> Command {
    let mut cmd = Command::new("vng");
    if accel == Accel::Tcg {
        cmd.arg("--disable-kvm");
    }
    cmd.arg("-r")
        .arg(&kernel.vmlinuz)
        .args(["--cpus", "2", "--memory", "2G", "--rwdir"])
        .arg(out)
        .current_dir(workspace_root());
    cmd
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            // vng runs qemu as its child: end the whole group so no emulator is left behind.
            let _ = Command::new("pkill")
                .args(["-TERM", "-P", &self.0.id().to_string()])
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn job_result(out: &Path, name: &str) -> Option<JobResult> {
    let rc = fs::read_to_string(out.join(format!("{name}.rc"))).ok()?;
    let mut f = rc.split_whitespace();
    let rc: i32 = f.next()?.parse().ok()?;
    let start: f64 = f.next()?.parse().ok()?;
    let end: f64 = f.next()?.parse().ok()?;
    let log = fs::read(out.join(format!("{name}.log")))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Some(JobResult {
        rc,
        time: Duration::from_secs_f64((end - start).max(0.0)),
        log,
    })
}

/// Runs `command` as this process's child with this process as the subreaper of every
/// orphan below it, reaping them as they exit, and returns the command's exit status.
/// virtme-ng's init does not reap orphans: without this, a daemon that a test starts in the
/// background (`start-stop-daemon --background`) stays a zombie after it exits, and a pid
/// file check takes it for running.
pub fn reap(command: &[String]) -> Result<i32> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a plain integer and changes only
    // this process's attribute.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        bail!(
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
    }
    let child = Command::new(&command[0])
        .args(&command[1..])
        .spawn()
        .with_context(|| format!("cannot start {}", command[0]))?;
    let main = child.id() as libc::pid_t;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`, a valid local.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            bail!("waitpid: {}", std::io::Error::last_os_error());
        }
        if pid == main {
            return Ok(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
    }
}

/// Single-quotes `s` for sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script the guest runs: set-up, then each job with its output, status and time
/// written to `out`, then `last` (power off, or a shell).
fn guest_script(out: &Path, jobs: &[Job], last: &str) -> String {
    let o = quote(&out.display().to_string());
    let path = std::env::var("PATH").unwrap_or_default();
    let mut s = format!(
        "#!/bin/sh\n\
         # written by cargo xtask: runs in the VM as root\n\
         export PATH={}:/usr/sbin:/usr/bin:/sbin:/bin\n\
         export HOME=/root\n\
         mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf\n\
         modprobe -a {MODULES} > {o}/modprobe.log 2>&1\n\
         uname -r > {o}/booted\n",
        quote(&path)
    );
    let reaper = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "xtask".into());
    for job in jobs {
        let argv: Vec<String> = [reaper.clone(), "reap".into(), "--".into()]
            .iter()
            .chain(&job.argv)
            .map(|a| quote(a))
            .collect();
        let env: Vec<String> = job
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        let n = quote(&job.name);
        s += &format!(
            "start=$(date +%s.%N)\n\
             (cd {} && env {} {}) > {o}/{n}.log 2>&1 < /dev/null\n\
             rc=$?\n\
             echo \"$rc $start $(date +%s.%N)\" > {o}/{n}.rc.tmp && mv {o}/{n}.rc.tmp {o}/{n}.rc\n",
            quote(&job.dir.display().to_string()),
            env.join(" "),
            argv.join(" "),
        );
    }
    s += last;
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_sort_by_number() {
        let mut r = vec!["6.1.0-9-amd64", "6.1.0-57-amd64", "6.1.0-10-amd64"];
        r.sort_by_key(|r| version_key(r));
        assert_eq!(r, ["6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-57-amd64"]);
    }

    #[test]
    fn the_guest_script_records_each_job_and_quotes_its_words() {
        let jobs = [Job {
            name: "failover".into(),
            dir: PathBuf::from("/w/tests"),
            env: vec![("VIPD_BIN".into(), "/w/vipd".into())],
            argv: vec!["/w/t/failover-1".into(), "it's".into()],
        }];
        let s = guest_script(Path::new("/w/out"), &jobs, "poweroff -f");
        assert!(s.contains("mount -t bpf bpf /sys/fs/bpf"));
        assert!(s.contains(&format!("modprobe -a {MODULES}")));
        assert!(s.contains("(cd '/w/tests' && env VIPD_BIN='/w/vipd' "));
        assert!(s.contains("'reap' '--' '/w/t/failover-1' 'it'\\''s') > '/w/out'/'failover'.log"));
        assert!(s.contains("mv '/w/out'/'failover'.rc.tmp '/w/out'/'failover'.rc"));
        assert!(s.find("booted").unwrap() < s.find("failover-1").unwrap());
    }

    #[test]
    fn a_job_result_is_read_only_once_complete() {
        let dir = std::env::temp_dir().join(format!("vipd-vm-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert!(job_result(&dir, "a").is_none());
        fs::write(dir.join("a.log"), "hello").unwrap();
        fs::write(dir.join("a.rc"), "3 100.5 102.0\n").unwrap();
        let r = job_result(&dir, "a").unwrap();
        assert_eq!((r.rc, r.log.as_str()), (3, "hello"));
        assert_eq!(r.time, Duration::from_millis(1500));
        fs::remove_dir_all(&dir).unwrap();
    }
}
