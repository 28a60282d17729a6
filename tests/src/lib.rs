//! A network-namespace lab for vipd's integration tests, demo and benchmarks.
//!
//! A lab is N nodes and one client, each a network namespace with an `eth0` plugged into a
//! bridge that lives in a namespace of its own, so no traffic of the lab touches the host.
//! Every name carries a prefix unique to the lab; the [`Lab`] guard kills what it started
//! and removes every namespace (and with them every link) and bpffs pin when dropped, even
//! when the test panics.
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Subnet of every lab: labs are isolated, so they can all use the same one.
pub const SUBNET_PREFIX: u8 = 24;
/// The client's address.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 200);
/// The VIP most tests share.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// A second VIP for two-group tests.
pub const VIP2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 101);

/// How many times slower than real hardware this machine runs code: 1, or what
/// `VIPD_TEST_SLOWDOWN` says (`cargo xtask test` sets it for a VM under qemu's emulator).
/// Tests multiply by it only the deadlines they give vipd for work it spawns (a script
/// tracker's `timeout_ms`), never the protocol's times or the bounds they check.
pub fn slowdown() -> u64 {
    std::env::var("VIPD_TEST_SLOWDOWN")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// Address of node `i` (1-based).
pub fn node_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, i as u8)
}

/// The vipd binary under test: `$VIPD_BIN`, or the workspace's debug build.
pub fn vipd_bin() -> PathBuf {
    std::env::var_os("VIPD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .join("target/debug/vipd")
        })
}

/// Fails unless running as root: the lab needs namespaces and XDP, and a test that quietly
/// skips would report success for nothing.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "vipd's integration tests need root (network namespaces, XDP)"
    );
}

/// One namespace of the lab.
#[derive(Clone, Debug)]
pub struct Host {
    pub ns: String,
    pub addr: Ipv4Addr,
}

impl Host {
    /// A command run inside this namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).arg(program);
        c
    }

    /// Runs `sh -c script` in the namespace and returns its output (any exit status).
    pub fn sh(&self, script: &str) -> Output {
        self.cmd("sh")
            .args(["-c", script])
            .output()
            .expect("cannot run ip netns exec")
    }

    /// Runs `sh -c script` in the namespace, failing unless it succeeds; returns stdout.
    pub fn ok(&self, script: &str) -> Result<String> {
        let out = self.sh(script);
        if !out.status.success() {
            bail!(
                "in {}: `{script}` failed ({}): {}",
                self.ns,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Ifindex of `eth0` in this namespace.
    pub fn ifindex(&self) -> u32 {
        self.ok("cat /sys/class/net/eth0/ifindex")
            .expect("eth0 exists")
            .trim()
            .parse()
            .expect("ifindex is a number")
    }

    /// MAC address of `eth0`.
    pub fn mac(&self) -> String {
        self.ok("cat /sys/class/net/eth0/address")
            .expect("eth0 exists")
            .trim()
            .to_owned()
    }

    /// MAC address of interface `ifname` in this namespace.
    pub fn mac_of(&self, ifname: &str) -> String {
        self.ok(&format!("cat /sys/class/net/{ifname}/address"))
            .expect("interface exists")
            .trim()
            .to_owned()
    }

    /// Whether `addr` is configured on `eth0`.
    pub fn has_addr(&self, addr: Ipv4Addr) -> bool {
        self.ok("ip -4 -o addr show dev eth0")
            .map(|s| s.contains(&format!("inet {addr}/")))
            .unwrap_or(false)
    }

    /// Sets `eth0` up or down.
    pub fn link(&self, up: bool) -> Result<()> {
        self.ok(&format!(
            "ip link set eth0 {}",
            if up { "up" } else { "down" }
        ))
        .map(drop)
    }
}

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A bpffs shared by every lab: outside /sys, so daemons started with `ip netns exec` pin
/// where the host (and a restarted daemon) sees it.
pub const LAB_BPFFS: &str = "/run/vipd-lab/bpf";

fn ensure_lab_bpffs() -> Result<()> {
    std::fs::create_dir_all(LAB_BPFFS)?;
    let mounted = std::fs::read_to_string("/proc/self/mounts")?
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(LAB_BPFFS));
    if !mounted {
        run_sh(&format!("mount -t bpf bpf {LAB_BPFFS}"))?;
    }
    Ok(())
}

/// The lab guard.
pub struct Lab {
    pub prefix: String,
    pub nodes: Vec<Host>,
    pub client: Host,
    /// Start vipd and talk to it exactly as a user types it (`ip netns exec NS vipd ...`):
    /// no control socket or bpffs path of the lab.
    pub as_user: bool,
    switch: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    /// Builds a lab of `n` nodes and a client. `tag` names the test in the prefix.
    pub fn new(tag: &str, n: usize) -> Result<Lab> {
        require_root();
        ensure_lab_bpffs()?;
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(sweep_stale_labs);
        let seq = LAB_SEQ.fetch_add(1, Ordering::SeqCst);
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        let prefix = format!("vipd-{tag}-{}-{seq}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir)?;
        let mut lab = Lab {
            switch: format!("{prefix}-sw"),
            nodes: (1..=n)
                .map(|i| Host {
                    ns: format!("{prefix}-n{i}"),
                    addr: node_addr(i),
                })
                .collect(),
            client: Host {
                ns: format!("{prefix}-c"),
                addr: CLIENT,
            },
            prefix,
            dir,
            children: Vec::new(),
            as_user: false,
        };
        // From here on, Drop cleans up whatever part of the lab exists.
        lab.build()?;
        Ok(lab)
    }

    fn build(&mut self) -> Result<()> {
        let mut script = String::new();
        let sw = &self.switch;
        writeln!(script, "set -e; ip netns add {sw}")?;
        writeln!(
            script,
            "ip -n {sw} link add br0 type bridge; ip -n {sw} link set br0 up; ip -n {sw} link set lo up"
        )?;
        // The bridge must forward at once, and multicast must reach every port.
        writeln!(
            script,
            "ip -n {sw} link set br0 type bridge forward_delay 0 stp_state 0 mcast_snooping 0"
        )?;
        let hosts: Vec<(String, Host)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("p{}", i + 1), h.clone()))
            .chain(std::iter::once(("pc".to_owned(), self.client.clone())))
            .collect();
        for (port, h) in &hosts {
            let ns = &h.ns;
            writeln!(script, "ip netns add {ns}; ip -n {ns} link set lo up")?;
            writeln!(
                script,
                "ip -n {sw} link add {port} type veth peer name eth0 netns {ns}"
            )?;
            writeln!(
                script,
                "ip -n {sw} link set {port} master br0 up; ip -n {ns} addr add {}/{SUBNET_PREFIX} dev eth0; ip -n {ns} link set eth0 up",
                h.addr
            )?;
        }
        run_sh(&script)
    }

    /// A per-lab scratch directory (logs, configs, pid files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// bpffs pin directory for vipd on node `i` (0-based), removed with the lab. It lies on
    /// the lab bpffs, which `ip netns exec` does not hide (it remounts /sys).
    pub fn pin_dir(&self, i: usize) -> PathBuf {
        Path::new(LAB_BPFFS)
            .join(&self.prefix)
            .join(format!("n{}", i + 1))
    }

    /// Control socket path for vipd on node `i`.
    pub fn socket(&self, i: usize) -> PathBuf {
        self.dir.join(format!("n{}.sock", i + 1))
    }

    /// Log file of vipd on node `i`.
    pub fn log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("n{}.log", i + 1))
    }

    /// Starts `vipd` on node `i` with `args` (ucarp-style flags or `run --config ...`);
    /// the lab's socket and pin paths are added. Output goes to the node's log.
    pub fn start_vipd(&mut self, i: usize, args: &[&str]) -> Result<u32> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(i))?;
        let mut cmd = self.nodes[i].cmd(vipd_bin());
        if !self.as_user {
            cmd.args(["--control-socket", &self.socket(i).to_string_lossy()])
                .args(["--bpffs-dir", &self.pin_dir(i).to_string_lossy()]);
        }
        cmd.args(args)
            .env("RUST_LOG", "vipd=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.spawn_vipd(i, cmd)
    }

    /// Spawns a vipd of node `i` and returns once it is running (its log says so) or has
    /// exited, or after `STARTUP` in any case: one node is up before the next starts, as
    /// when an operator starts them, and the protocol's times in a test count from there,
    /// not from a program load that an emulated CPU can make take seconds.
    fn spawn_vipd(&mut self, i: usize, mut cmd: Command) -> Result<u32> {
        const STARTUP: Duration = Duration::from_secs(30);
        let running = |lab: &Lab| lab.log_text(i).matches("vipd running").count();
        let before = running(self);
        let child = cmd.spawn().context("starting vipd")?;
        let pid = child.id();
        self.children.push(child);
        let start = Instant::now();
        while running(self) == before && start.elapsed() < STARTUP {
            let child = self.children.last_mut().expect("just pushed");
            if child.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(pid)
    }

    /// Starts `vipd` on node `i` exactly as a user types it: `ip netns exec NS vipd ARGS`,
    /// no control socket or bpffs path of the lab. Output goes to the node's log.
    pub fn start_vipd_as_user(&mut self, i: usize, args: &[&str]) -> Result<u32> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(i))?;
        let mut cmd = self.nodes[i].cmd(vipd_bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.spawn_vipd(i, cmd)
    }

    /// `vipd status --json` on node `i` as a user types it (the default control socket).
    pub fn status_as_user(&self, i: usize) -> Result<Status> {
        let out = self.nodes[i]
            .cmd(vipd_bin())
            .args(["status", "--json"])
            .output()?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Waits until node `i`, queried as a user would, reports `state` for group 1.
    pub fn wait_state_as_user(&self, i: usize, state: &str, timeout: Duration) -> bool {
        Lab::wait_for(timeout, || {
            self.status_as_user(i)
                .map(|s| s.groups.first().is_some_and(|g| g.state == state))
                .unwrap_or(false)
        })
    }

    /// Starts any long-running command in a namespace; it is killed with the lab.
    pub fn spawn(&mut self, host: &Host, args: &[&str], log_name: &str) -> Result<u32> {
        let log = std::fs::File::create(self.dir.join(log_name))?;
        let child = host
            .cmd(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {args:?}"))?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    /// Sends `signal` (0: none) to a process the lab started and waits up to `wait` for it
    /// to exit. Returns whether it exited.
    pub fn signal(&mut self, pid: u32, signal: i32, wait: Duration) -> bool {
        if signal != 0 {
            // `ip netns exec` execs the program, so the child's pid is the program's.
            // SAFETY: sending a signal to a child we own.
            unsafe { libc::kill(pid as i32, signal) };
        }
        let Some(child) = self.children.iter_mut().find(|c| c.id() == pid) else {
            return false;
        };
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Contents of node `i`'s vipd log.
    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(self.log(i)).unwrap_or_default()
    }

    /// Runs `vipd <args>` (a control command) on node `i` against its daemon.
    pub fn vipd_ctl(&self, i: usize, args: &[&str]) -> Result<String> {
        let mut cmd = self.nodes[i].cmd(vipd_bin());
        cmd.args(args);
        if !self.as_user {
            cmd.args(["--control-socket", &self.socket(i).to_string_lossy()]);
        }
        let out = cmd.output()?;
        if !out.status.success() {
            bail!(
                "vipd {args:?} on node {}: {}",
                i + 1,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Polls `cond` every 10 ms until it holds or `timeout` passes.
    pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The MACs that answer ARP for `addr` from the client: `arping -c count`.
    pub fn arp_owners(&self, addr: Ipv4Addr, count: u32) -> Vec<String> {
        let out = self.client.sh(&format!(
            "arping -I eth0 -c {count} -w {} {addr}",
            count + 1
        ));
        parse_arping_macs(&String::from_utf8_lossy(&out.stdout))
    }

    /// Starts pinging `addr` from the client: `count` probes, one every `interval`.
    pub fn start_probe(&mut self, addr: Ipv4Addr, interval: Duration, count: u32) -> Result<Probe> {
        let name = format!("probe-{}.log", self.children.len());
        let path = self.dir.join(&name);
        let secs = format!("{:.3}", interval.as_secs_f64());
        // -D: timestamp each reply; -O: report each missed reply; -W: how long the last
        // probes may take to be answered before ping prints its summary.
        let pid = self.spawn(
            &self.client.clone(),
            &[
                "ping",
                "-D",
                "-O",
                "-n",
                "-W",
                "1",
                "-i",
                &secs,
                "-c",
                &count.to_string(),
                &addr.to_string(),
            ],
            &name,
        )?;
        // iputils ping sleeps in whole scheduler ticks when the interval is 10 ms or more
        // (`-i 0.01` sends every ~16 ms at HZ=250), so allow a tick per probe on top.
        let per_probe = interval + Duration::from_millis(10);
        Ok(Probe {
            pid,
            path,
            until: Instant::now() + per_probe * count + Duration::from_secs(5),
        })
    }

    /// Waits for a probe to finish its count and summarises what it saw.
    pub fn finish_probe(&mut self, probe: Probe) -> Result<ProbeReport> {
        let wait = probe.until.saturating_duration_since(Instant::now());
        if !self.signal(probe.pid, 0, wait) {
            bail!("ping did not finish in time");
        }
        let text = std::fs::read_to_string(&probe.path)?;
        ProbeReport::parse(&text)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let mut names: Vec<&str> = self.nodes.iter().map(|h| h.ns.as_str()).collect();
        names.push(&self.client.ns);
        names.push(&self.switch);
        remove_lab(&self.prefix, &names, &self.dir);
    }
}

/// Kills what runs in a lab's namespaces, deletes them, its bpffs pins and (unless
/// `VIPD_KEEP_LOGS` is set) its scratch directory.
fn remove_lab(prefix: &str, namespaces: &[&str], dir: &Path) {
    for ns in namespaces {
        // vipd's default control socket, instance lock and demotions are named by the
        // namespace.
        if let Ok(meta) = std::fs::metadata(format!("/run/netns/{ns}")) {
            use std::os::unix::fs::MetadataExt;
            for ext in ["sock", "lock"] {
                let _ = std::fs::remove_file(format!("/run/vipd/netns-{}.{ext}", meta.ino()));
            }
            let _ = std::fs::remove_file(format!("/var/lib/vipd/netns-{}.demoted", meta.ino()));
        }
        // Kill anything still running in the namespace (daemons started by scripts).
        let _ = Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: killing a process of the lab's own namespace.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            });
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
    let _ = std::fs::remove_dir_all(Path::new(LAB_BPFFS).join(prefix));
    if std::env::var_os("VIPD_KEEP_LOGS").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes labs whose process is gone (killed by a signal, so no Drop ran): a lab's prefix
/// `vipd-<tag>-<pid>-<seq>` names the process that built it.
pub fn sweep_stale_labs() {
    let dead = |prefix: &str| {
        let pid = prefix.split('-').nth(2).and_then(|p| p.parse::<i32>().ok());
        // SAFETY: signal 0 only checks that the process exists.
        pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } != 0)
    };
    let prefix_of = |name: &str| -> Option<String> {
        let parts: Vec<&str> = name.splitn(5, '-').collect();
        (parts.len() >= 4 && parts[0] == "vipd").then(|| parts[..4].join("-"))
    };
    let listed = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut stale: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for name in listed.lines().filter_map(|l| l.split_whitespace().next()) {
        if let Some(prefix) = prefix_of(name).filter(|p| dead(p)) {
            stale.entry(prefix).or_default().push(name.to_owned());
        }
    }
    if let Ok(pins) = std::fs::read_dir(LAB_BPFFS) {
        for e in pins.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(prefix) = prefix_of(&name).filter(|p| dead(p)) {
                stale.entry(prefix).or_default();
            }
        }
    }
    for (prefix, namespaces) in stale {
        let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
        remove_lab(&prefix, &names, &std::env::temp_dir().join(&prefix));
    }
}

fn run_sh(script: &str) -> Result<()> {
    let out = Command::new("sh").args(["-c", script]).output()?;
    if !out.status.success() {
        bail!(
            "lab set-up failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// MACs in arping's replies (`Unicast reply from 10.0.0.100 [AA:BB:..]  0.8ms`), deduplicated.
pub fn parse_arping_macs(out: &str) -> Vec<String> {
    let mut macs: Vec<String> = out
        .lines()
        .filter(|l| l.contains("reply from"))
        .filter_map(|l| {
            let start = l.find('[')?;
            let end = l[start..].find(']')?;
            Some(l[start + 1..start + end].to_ascii_lowercase())
        })
        .collect();
    macs.sort();
    macs.dedup();
    macs
}

/// A running ping.
pub struct Probe {
    pid: u32,
    path: PathBuf,
    until: Instant,
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub sent: u64,
    pub received: u64,
    /// Longest time between two consecutive replies (ping's `-D` timestamps).
    pub longest_gap: Duration,
    /// Median time between two consecutive replies: how often ping really probed.
    pub cadence: Duration,
}

impl ProbeReport {
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }

    /// How long the client went without an answer beyond its usual wait between replies.
    pub fn outage(&self) -> Duration {
        self.longest_gap.saturating_sub(self.cadence)
    }

    /// Parses ping's output.
    pub fn parse(text: &str) -> Result<ProbeReport> {
        let mut stamps: Vec<f64> = Vec::new();
        let mut sent = None;
        let mut received = None;
        for line in text.lines() {
            if line.contains("bytes from")
                && let Some(ts) = line
                    .strip_prefix('[')
                    .and_then(|l| l.split(']').next())
                    .and_then(|t| t.parse::<f64>().ok())
            {
                stamps.push(ts);
            }
            if line.contains("packets transmitted") {
                let nums: Vec<u64> = line
                    .split([',', ' '])
                    .filter_map(|w| w.parse().ok())
                    .collect();
                sent = nums.first().copied();
                received = nums.get(1).copied();
            }
        }
        let (Some(sent), Some(received)) = (sent, received) else {
            bail!("no ping summary in:\n{text}");
        };
        let mut gaps: Vec<f64> = stamps.windows(2).map(|w| (w[1] - w[0]).max(0.0)).collect();
        gaps.sort_by(f64::total_cmp);
        let secs = |g: Option<&f64>| Duration::from_secs_f64(g.copied().unwrap_or(0.0));
        Ok(ProbeReport {
            sent,
            received,
            longest_gap: secs(gaps.last()),
            cadence: secs(gaps.get(gaps.len() / 2)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labs_left_by_a_killed_process_are_swept() {
        require_root();
        // A process that built a lab and died without running Drop.
        let mut child = Command::new("sleep").arg("0").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let ns = format!("vipd-sweep-{pid}-0-n1");
        let live = format!("vipd-sweep-{}-0-n1", std::process::id());
        for n in [&ns, &live] {
            assert!(
                Command::new("ip")
                    .args(["netns", "add", n])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        sweep_stale_labs();
        let list = String::from_utf8(
            Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let _ = Command::new("ip").args(["netns", "del", &live]).status();
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        assert!(
            !list.contains(&ns),
            "the dead process's lab is gone: {list}"
        );
        assert!(list.contains(&live), "a live process's lab stays: {list}");
    }

    #[test]
    fn parses_ping_output() {
        // `ping -i 0.01` that really sends every 16 ms, with 18 probes lost in a row.
        let text = "PING 10.0.0.100 (10.0.0.100) 56(84) bytes of data.\n\
[1700000000.100000] 64 bytes from 10.0.0.100: icmp_seq=1 ttl=64 time=0.05 ms\n\
[1700000000.116000] 64 bytes from 10.0.0.100: icmp_seq=2 ttl=64 time=0.05 ms\n\
[1700000000.132000] 64 bytes from 10.0.0.100: icmp_seq=3 ttl=64 time=0.05 ms\n\
[1700000000.148000] 64 bytes from 10.0.0.100: icmp_seq=4 ttl=64 time=0.05 ms\n\
[1700000000.164000] no answer yet for icmp_seq=5\n\
[1700000000.452000] 64 bytes from 10.0.0.100: icmp_seq=23 ttl=64 time=0.05 ms\n\
[1700000000.468000] 64 bytes from 10.0.0.100: icmp_seq=24 ttl=64 time=0.05 ms\n\
\n--- 10.0.0.100 ping statistics ---\n\
24 packets transmitted, 6 received, 75% packet loss, time 368ms\n";
        let r = ProbeReport::parse(text).unwrap();
        assert_eq!(r.sent, 24);
        assert_eq!(r.received, 6);
        assert_eq!(r.lost(), 18);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        assert!((ms(r.longest_gap) - 304.0).abs() < 1e-3, "{r:?}");
        assert!((ms(r.cadence) - 16.0).abs() < 1e-3, "{r:?}");
        assert!((ms(r.outage()) - 288.0).abs() < 1e-3, "{r:?}");
    }

    #[test]
    fn parses_arping_replies() {
        let text = "ARPING 10.0.0.100 from 10.0.0.200 eth0\n\
Unicast reply from 10.0.0.100 [AA:BB:CC:00:00:01]  0.7ms\n\
Unicast reply from 10.0.0.100 [aa:bb:cc:00:00:01]  0.6ms\n\
Sent 2 probes (1 broadcast(s))\nReceived 2 response(s)\n";
        assert_eq!(parse_arping_macs(text), vec!["aa:bb:cc:00:00:01"]);
    }
}

/// What [`Lab::arp_probe`] saw: requests sent, requests answered (within the interval that
/// followed each), and every MAC that answered.
#[derive(Debug, Default)]
pub struct ArpProbe {
    pub sent: u32,
    pub answered: u32,
    pub macs: Vec<String>,
}

impl Lab {
    /// Sends `count` ARP requests for `addr` from the client, one every `interval`, on a
    /// packet socket, and counts the requests answered before the next one leaves.
    pub fn arp_probe(&self, addr: Ipv4Addr, count: u32, interval: Duration) -> Result<ArpProbe> {
        let mac = self.client.mac();
        let mac: Vec<u8> = mac
            .split(':')
            .map(|h| u8::from_str_radix(h, 16))
            .collect::<std::result::Result<_, _>>()?;
        let me = self.client.addr;
        in_netns(&self.client.ns.clone(), move || {
            arp_probe(&mac, me, addr, count, interval)
        })
    }
}

impl Lab {
    /// Stops (or lets through again) multicast towards node `i` at its port of the lab's
    /// bridge: CARP advertisements no longer reach it, while broadcast (ARP, gratuitous
    /// ARP) and unicast still do.
    pub fn block_multicast_to(&self, i: usize, blocked: bool) -> Result<()> {
        let flood = if blocked { "off" } else { "on" };
        run_sh(&format!(
            "ip netns exec {} bridge link set dev p{} mcast_flood {flood}",
            self.switch,
            i + 1
        ))
    }

    /// Makes the lab's bridge drop every multicast frame (broadcast still passes, so ARP
    /// works), with a rule of nftables' bridge family, as a network that carries no
    /// multicast does.
    pub fn drop_multicast(&self) -> Result<()> {
        self.switch_ok(
            "nft add table bridge vipdtest && \
             nft add chain bridge vipdtest nomcast '{ type filter hook forward priority 0; }' && \
             nft add rule bridge vipdtest nomcast ether daddr '&' 01:00:00:00:00:00 == \
             01:00:00:00:00:00 ether daddr != ff:ff:ff:ff:ff:ff counter drop",
        )?;
        Ok(())
    }

    /// How many multicast frames the rule of [`Lab::drop_multicast`] dropped.
    pub fn multicast_dropped(&self) -> Result<u64> {
        let out = self.switch_ok("nft list chain bridge vipdtest nomcast")?;
        let packets = out
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .context("no counter in the bridge's rule")?;
        Ok(packets.parse()?)
    }

    /// Two nodes started as users type vipd (group 1, advskew 0 and 100), node 1 MASTER and
    /// node 2 BACKUP.
    pub fn pair_as_user(tag: &str) -> Lab {
        let mut lab = Lab::new(tag, 2).expect("lab");
        lab.as_user = true;
        lab.start_node(0, 0, &[]).expect("vipd on node 1");
        lab.start_node(1, 100, &[]).expect("vipd on node 2");
        lab.expect_roles(&["MASTER", "BACKUP"]);
        lab
    }

    /// Waits for each node to reach its role (group 1), panicking with its log if not.
    pub fn expect_roles(&self, roles: &[&str]) {
        for (i, role) in roles.iter().enumerate() {
            let wait = if i == 0 { 8 } else { 2 };
            assert!(
                self.wait_state(i, 1, role, Duration::from_secs(wait)),
                "node {} never became {role}:\n{}",
                i + 1,
                self.log_text(i)
            );
        }
    }

    /// Advertisements node `i` rejected for `reason` (group 1).
    pub fn rejected(&self, i: usize, reason: &str) -> u64 {
        self.status(i)
            .map(|s| {
                s.groups[0]
                    .rejected
                    .iter()
                    .filter(|(r, _)| r == reason)
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// A second link from node `i` to the lab's bridge, named `ifname` in the node.
    pub fn add_link(&self, i: usize, ifname: &str) -> Result<()> {
        let (sw, ns) = (&self.switch, &self.nodes[i].ns);
        let port = format!("p{}{ifname}", i + 1);
        run_sh(&format!(
            "ip -n {sw} link add {port} type veth peer name {ifname} netns {ns} && \
             ip -n {sw} link set {port} master br0 up"
        ))
    }

    /// The MACs that answer ARP for `addr` from the client on its interface `ifname`.
    pub fn arp_owners_on(&self, ifname: &str, addr: Ipv4Addr, count: u32) -> Vec<String> {
        let out = self.client.sh(&format!(
            "arping -I {ifname} -c {count} -w {} {addr}",
            count + 1
        ));
        parse_arping_macs(&String::from_utf8_lossy(&out.stdout))
    }

    /// The MAC the client's neighbour table holds for `addr`, if any.
    pub fn client_neighbour(&self, addr: Ipv4Addr) -> Option<String> {
        let out = self
            .client
            .ok(&format!("ip neigh show to {addr} dev eth0"))
            .ok()?;
        let mut words = out.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_owned)
    }
}

fn arp_probe(
    mac: &[u8],
    me: Ipv4Addr,
    target: Ipv4Addr,
    count: u32,
    interval: Duration,
) -> Result<ArpProbe> {
    const ETH_P_ARP: u16 = 0x0806;
    // SAFETY: plain socket(2); checked below and closed by OwnedFd.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(ETH_P_ARP.to_be()),
        )
    };
    if raw < 0 {
        bail!("packet socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: raw is a socket we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let fd_raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let name = std::ffi::CString::new("eth0")?;
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        bail!("no eth0 in the client namespace");
    }
    // SAFETY: sockaddr_ll is plain old data.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ARP.to_be();
    sll.sll_ifindex = ifindex as i32;
    let sll_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: binding our socket to a valid sockaddr_ll.
    if unsafe { libc::bind(fd_raw, (&sll as *const libc::sockaddr_ll).cast(), sll_len) } < 0 {
        bail!("bind: {}", std::io::Error::last_os_error());
    }
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 1000,
    };
    // SAFETY: setsockopt with a timeval we own.
    unsafe {
        libc::setsockopt(
            fd_raw,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let mut request = vec![0xff; 6];
    request.extend_from_slice(mac);
    request.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    request.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    request.extend_from_slice(mac);
    request.extend_from_slice(&me.octets());
    request.extend_from_slice(&[0; 6]);
    request.extend_from_slice(&target.octets());
    let mut probe = ArpProbe::default();
    let mut buf = [0u8; 1600];
    for _ in 0..count {
        let next = Instant::now() + interval;
        // SAFETY: the frame and the bound socket are valid for the call.
        let n = unsafe { libc::send(fd_raw, request.as_ptr().cast(), request.len(), 0) };
        if n < 0 {
            bail!("send: {}", std::io::Error::last_os_error());
        }
        probe.sent += 1;
        let mut answered = false;
        while Instant::now() < next {
            // SAFETY: reading into a buffer we own.
            let n = unsafe { libc::recv(fd_raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 42 {
                continue;
            }
            let f = &buf[..n as usize];
            let is_reply = f[12..14] == ETH_P_ARP.to_be_bytes() && f[20..22] == [0, 2];
            if is_reply && f[28..32] == target.octets() && f[38..42] == me.octets() {
                let sender: Vec<String> = f[22..28].iter().map(|b| format!("{b:02x}")).collect();
                let sender = sender.join(":");
                if !probe.macs.contains(&sender) {
                    probe.macs.push(sender);
                }
                if !answered {
                    answered = true;
                    probe.answered += 1;
                }
            }
        }
    }
    Ok(probe)
}

/// Raw IPv4 packets on a lab link, for hostile-input tests: capture an advertisement,
/// rewrite it without the key, send it back.
pub mod packets {
    use std::net::Ipv4Addr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use anyhow::{Result, bail};

    const ETH_P_IP: u16 = 0x0800;

    fn checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            sum += u32::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn packet_socket(ifname: &str) -> Result<(OwnedFd, i32)> {
        // SAFETY: plain socket(2), checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_IP.to_be()),
            )
        };
        if raw < 0 {
            bail!("packet socket: {}", std::io::Error::last_os_error());
        }
        // SAFETY: raw is a socket we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = std::ffi::CString::new(ifname)?;
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        if ifindex == 0 {
            bail!("no interface {ifname}");
        }
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_IP.to_be();
        sll.sll_ifindex = ifindex;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: binding our socket to a valid address.
        if unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                len,
            )
        } < 0
        {
            bail!("bind: {}", std::io::Error::last_os_error());
        }
        Ok((fd, ifindex))
    }

    /// The IPv4 packet of the first CARP advertisement seen on `ifname` (call it inside the
    /// namespace, e.g. through `in_netns`).
    pub fn capture_carp(ifname: &str, timeout: Duration) -> Result<Vec<u8>> {
        let (fd, _) = packet_socket(ifname)?;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: setsockopt with a timeval we own.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            // SAFETY: reading into our buffer.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 14 + 56 && buf[14 + 9] == 112 {
                return Ok(buf[14..14 + 56].to_vec());
            }
        }
        bail!("no CARP advertisement on {ifname} within {timeout:?}")
    }

    /// `packet` (IPv4 + 36 CARP bytes) from `src`, with `edit` applied to the CARP bytes and
    /// both checksums recomputed: what a host without the key can forge.
    pub fn rewrite_carp(packet: &[u8], src: Ipv4Addr, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut p = packet.to_vec();
        p[12..16].copy_from_slice(&src.octets());
        edit(&mut p[20..56]);
        p[26..28].fill(0);
        let sum = checksum(&p[20..56]);
        p[26..28].copy_from_slice(&sum.to_be_bytes());
        p[10..12].fill(0);
        let sum = checksum(&p[..20]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p
    }

    /// Sends IPv4 packets to their multicast group's MAC on one interface.
    pub struct Sender {
        fd: OwnedFd,
        ifindex: i32,
    }

    impl Sender {
        pub fn open(ifname: &str) -> Result<Sender> {
            let (fd, ifindex) = packet_socket(ifname)?;
            Ok(Sender { fd, ifindex })
        }

        pub fn send_ipv4_multicast(&self, packet: &[u8]) -> Result<()> {
            let dst = [0x01, 0x00, 0x5e, packet[17] & 0x7f, packet[18], packet[19]];
            self.send_ipv4(dst, packet)
        }

        /// Sends an IPv4 packet in a frame to `dst` (a unicast MAC, say).
        pub fn send_ipv4(&self, dst: [u8; 6], packet: &[u8]) -> Result<()> {
            let mut frame = dst.to_vec();
            frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x66]);
            frame.extend_from_slice(&ETH_P_IP.to_be_bytes());
            frame.extend_from_slice(packet);
            // SAFETY: sockaddr_ll is plain old data.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = self.ifindex;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&dst);
            let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: the frame and address are valid for the call.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    len,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                // A full transmit queue under a flood: the packet is simply not sent.
                if e.raw_os_error() == Some(libc::ENOBUFS) {
                    return Ok(());
                }
                bail!("send: {e}");
            }
            Ok(())
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns`: sockets, interfaces and BPF
/// attachments made by `f` live in that namespace.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("namespace exists");
        // SAFETY: setns on this thread only, with a valid namespace fd.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns into {path}: {}",
            std::io::Error::last_os_error()
        );
        f()
    })
    .join()
    .expect("thread in namespace panicked")
}

/// Frames for BPF_PROG_TEST_RUN.
pub mod frames {
    use std::net::Ipv4Addr;

    const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&SRC_MAC);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// An ARP frame: opcode 1 (request) or 2 (reply).
    pub fn arp(op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let mut a = vec![0, 1, 0x08, 0, 6, 4];
        a.extend_from_slice(&op.to_be_bytes());
        a.extend_from_slice(&SRC_MAC);
        a.extend_from_slice(&sender.octets());
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&target.octets());
        eth(0x0806, &a)
    }

    /// `frame` with VLAN tags (ethertype, VID) inserted after the MAC addresses, outermost
    /// first.
    pub fn tagged(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
        let mut f = frame[..12].to_vec();
        for (ethertype, vid) in tags {
            f.extend_from_slice(&ethertype.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&frame[12..]);
        f
    }

    /// A whole IPv4 packet wrapped in Ethernet.
    pub fn ipv4(packet: &[u8]) -> Vec<u8> {
        eth(0x0800, packet)
    }

    /// A TCP SYN from 10.0.0.200:40000 to `dst`:80.
    pub fn tcp_syn(dst: Ipv4Addr) -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 200];
        ip.extend_from_slice(&dst.octets());
        let mut tcp = vec![
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ];
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        ip.extend_from_slice(&tcp);
        ipv4(&ip)
    }

    /// Hex string to bytes.
    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Debian ucarp 1.5.2's advertisement (vhid 1, advbase 1, advskew 0, password `secret`,
    /// VIP 10.0.0.100, source 10.77.0.1), captured with tcpdump: the whole IPv4 packet.
    pub const UCARP_ADVERT: &str = "4510003836084000ff705add0a4d0001e0000012210100070001f42db4c541e64ebd732d0e3e71945b3936c8b3c5c6aa9c72690714748bff";
}

/// What `vipd status --json` shows: vipd's own types, read back as a user's script reads
/// the JSON.
pub use vipd::ops::control::{GroupStatus, InterfaceStatus, Status};

/// Daemon-level helpers: the state vipd reports through its control socket.
impl Lab {
    /// `vipd status --json` of node `i`.
    pub fn status(&self, i: usize) -> Result<Status> {
        let text = self.vipd_ctl(i, &["status", "--json"])?;
        Ok(serde_json::from_str(&text)?)
    }

    /// State of group `vhid` on node `i` ("MASTER", "BACKUP", "INIT"), or "DOWN" when the
    /// daemon does not answer.
    pub fn state(&self, i: usize, vhid: u8) -> String {
        self.status(i)
            .ok()
            .and_then(|s| s.groups.into_iter().find(|g| g.vhid == vhid))
            .map(|g| g.state)
            .unwrap_or_else(|| "DOWN".to_owned())
    }

    /// Waits until node `i` reports `state` for `vhid`.
    pub fn wait_state(&self, i: usize, vhid: u8, state: &str, timeout: Duration) -> bool {
        Lab::wait_for(timeout, || self.state(i, vhid) == state)
    }

    /// ucarp-style flags for vipd on node `i` (1-based addresses), group 1, VIP /24.
    pub fn ucarp_flags(&self, i: usize, advskew: u8, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = [
            "-i",
            "eth0",
            "-s",
            &node_addr(i + 1).to_string(),
            "-v",
            "1",
            "-p",
            "secret",
            "-a",
            &format!("{VIP}/{SUBNET_PREFIX}"),
            "-b",
            "1",
            "-k",
            &advskew.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// Starts vipd on node `i` with [`Lab::ucarp_flags`].
    pub fn start_node(&mut self, i: usize, advskew: u8, extra: &[&str]) -> Result<u32> {
        let flags = self.ucarp_flags(i, advskew, extra);
        let args: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.start_vipd(i, &args)
    }
}

/// Debian's ucarp as its users run it beside vipd.
impl Lab {
    /// Starts ucarp on node `i` (group 1, VIP /24) with up/down scripts that add and remove
    /// the VIP, as ucarp users write them, and append `up`/`down` to the returned events file.
    pub fn start_ucarp(
        &mut self,
        i: usize,
        advbase: u8,
        advskew: u8,
        password: &str,
        extra: &[&str],
    ) -> Result<(u32, PathBuf)> {
        let n = i + 1;
        let events = self.dir.join(format!("ucarp-n{n}.events"));
        let up = self.dir.join(format!("ucarp-up-n{n}.sh"));
        let down = self.dir.join(format!("ucarp-down-n{n}.sh"));
        for (path, verb, word) in [(&up, "add", "up"), (&down, "del", "down")] {
            std::fs::write(
                path,
                format!(
                    "#!/bin/sh\nip addr {verb} \"$2/{SUBNET_PREFIX}\" dev \"$1\" 2>/dev/null\necho {word} >> {}\n",
                    events.display()
                ),
            )?;
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        }
        let src = node_addr(n).to_string();
        let (base, skew) = (advbase.to_string(), advskew.to_string());
        let (up, down) = (
            up.to_string_lossy().into_owned(),
            down.to_string_lossy().into_owned(),
        );
        let vip = VIP.to_string();
        let mut args = vec![
            "ucarp", "-i", "eth0", "-s", &src, "-v", "1", "-p", password, "-a", &vip, "-b", &base,
            "-k", &skew, "-u", &up, "-d", &down,
        ];
        args.extend_from_slice(extra);
        let node = self.nodes[i].clone();
        let pid = self.spawn(&node, &args, &format!("ucarp-n{n}.log"))?;
        Ok((pid, events))
    }
}

/// The lines a ucarp events file (or any line log) holds so far.
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_owned())
        .collect()
}

pub mod tcp;

/// The lab's switch: the bridge and the nodes' peer ports (`p1`, `p2`, ..., `pc`).
impl Lab {
    /// Runs `sh -c script` in the switch's namespace, failing unless it succeeds.
    pub fn switch_ok(&self, script: &str) -> Result<String> {
        Host {
            ns: self.switch.clone(),
            addr: Ipv4Addr::UNSPECIFIED,
        }
        .ok(script)
    }
}
