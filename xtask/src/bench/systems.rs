//! The systems under test: how vipd, ucarp and keepalived are started on a lab node, how
//! each shows who is MASTER, how each is made to hand over or fail, and what vipd's
//! `status --json` tells the benchmark.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use vipd_tests::{Lab, SUBNET_PREFIX, VIP, node_addr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sys {
    Vipd,
    Ucarp,
    Keepalived,
}

pub const SYSTEMS: [Sys; 3] = [Sys::Vipd, Sys::Ucarp, Sys::Keepalived];

impl Sys {
    pub fn name(self) -> &'static str {
        match self {
            Sys::Vipd => "vipd",
            Sys::Ucarp => "ucarp",
            Sys::Keepalived => "keepalived",
        }
    }

    /// The version this machine runs: `vipd --version` for vipd, the Debian package's
    /// version for the others. `None` when it cannot be read.
    pub fn version(self, vipd: &Path) -> Option<String> {
        let out = match self {
            Sys::Vipd => Command::new(vipd).arg("--version").output(),
            _ => Command::new("dpkg-query")
                .args(["-W", "-f=${Version}", self.name()])
                .output(),
        }
        .ok()
        .filter(|o| o.status.success())?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let version = text.strip_prefix("vipd ").unwrap_or(&text).to_owned();
        (!version.is_empty()).then_some(version)
    }

    /// Why this system cannot run `case` at all, if it cannot.
    pub fn cannot(self, case: super::scenarios::Case) -> Option<&'static str> {
        (case.unicast && self == Sys::Ucarp).then_some("ucarp has no unicast mode")
    }

    /// How [`cause`] makes this system's master fail or hand over, as the report states it.
    pub fn trigger(self, failure: Failure) -> &'static str {
        match (failure, self) {
            (Failure::Graceful, Sys::Vipd) => "`vipd demote --all` on the master",
            (Failure::Graceful, Sys::Ucarp) => "SIGUSR2 to the master's ucarp",
            (Failure::Graceful, Sys::Keepalived) => "SIGTERM to the master's keepalived",
            (Failure::LinkDown, _) => "`ip link set eth0 down` on the master",
            (Failure::Killed, Sys::Keepalived) => {
                "SIGKILL to the master's keepalived and its VRRP child"
            }
            (Failure::Killed, _) => "SIGKILL to the master's daemon",
        }
    }
}

/// Advertisement timing of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// advbase 1 s (keepalived advert_int 1).
    Normal,
    /// The fastest each supports: advbase 0 with advskew 2/6, i.e. adverts every 7.8 ms
    /// (CARP's step nearest 10 ms) and master-down 23.4 ms; keepalived VRRPv3 advert_int
    /// 0.01.
    Fastest,
}

/// CARP's dead ratio: master-down is this many times advbase, plus advskew/256 s.
const DEAD_RATIO: f64 = 3.0;

impl Speed {
    pub fn name(self) -> &'static str {
        match self {
            Speed::Normal => "1 s",
            Speed::Fastest => "fastest",
        }
    }

    /// (advbase, advskew) of the master (node 0) and backup (node 1).
    pub fn carp(self, master: bool) -> (u8, u8) {
        match (self, master) {
            (Speed::Normal, true) => (1, 0),
            (Speed::Normal, false) => (1, 100),
            (Speed::Fastest, true) => (0, 2),
            (Speed::Fastest, false) => (0, 6),
        }
    }

    /// keepalived's `advert_int`.
    pub fn vrrp_interval(self) -> &'static str {
        match self {
            Speed::Normal => "1",
            Speed::Fastest => "0.01",
        }
    }

    /// The master's advertisement interval, advbase + advskew/256, in ms.
    pub fn advert_ms(self) -> f64 {
        let (b, k) = self.carp(true);
        f64::from(b) * 1e3 + f64::from(k) * 1e3 / 256.0
    }

    /// The backup's master-down interval in ms: the dead ratio multiplies advbase only.
    pub fn master_down_ms(self) -> f64 {
        let (b, k) = self.carp(false);
        f64::from(b) * DEAD_RATIO * 1e3 + f64::from(k) * 1e3 / 256.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Graceful,
    LinkDown,
    Killed,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::Graceful => "graceful hand-off",
            Failure::LinkDown => "master link down",
            Failure::Killed => "master daemon killed (-9)",
        }
    }
}

/// One system running on one lab node.
pub struct Running {
    pub pid: u32,
    /// keepalived's VRRP child, killed along with the parent.
    pub extra_pids: Vec<u32>,
    /// Where ucarp's scripts and keepalived's notify script log transitions.
    pub events: PathBuf,
}

pub fn write_script(path: &Path, body: &str) -> Result<()> {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n"))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(())
}

/// keepalived's pid files for `tag` in the lab directory: main, VRRP and checker process.
fn keepalived_pid_files(lab: &Lab, tag: &str) -> [String; 3] {
    ["main", "vrrp", "check"].map(|n| {
        lab.dir()
            .join(format!("ka{tag}-{n}.pid"))
            .to_string_lossy()
            .into_owned()
    })
}

/// Starts keepalived in the foreground on node `i` with configuration `conf`.
fn spawn_keepalived(lab: &mut Lab, i: usize, conf: &Path, tag: &str) -> Result<(u32, String)> {
    let [main, vrrp, check] = keepalived_pid_files(lab, tag);
    let node = lab.nodes[i].clone();
    let pid = lab.spawn(
        &node,
        &[
            "keepalived",
            "-n",
            "-l",
            "-P",
            "-R",
            "-f",
            &conf.to_string_lossy(),
            "-p",
            &main,
            "-r",
            &vrrp,
            "-c",
            &check,
        ],
        &format!("keepalived{tag}.log"),
    )?;
    Ok((pid, vrrp))
}

/// Starts `sys` on node `i` of the lab; node 0 is meant to win.
pub fn start(lab: &mut Lab, sys: Sys, i: usize, speed: Speed) -> Result<Running> {
    start_with(lab, sys, i, speed, false)
}

/// [`start`], advertising to the other node of the pair as a unicast peer with `unicast`.
pub fn start_with(
    lab: &mut Lab,
    sys: Sys,
    i: usize,
    speed: Speed,
    unicast: bool,
) -> Result<Running> {
    let peer = node_addr(2 - i).to_string();
    let events = lab.dir().join(format!("events{i}"));
    let master = i == 0;
    let (advbase, advskew) = speed.carp(master);
    let src = node_addr(i + 1).to_string();
    let vip = format!("{VIP}/{SUBNET_PREFIX}");
    match sys {
        Sys::Vipd => {
            let (b, k) = (advbase.to_string(), advskew.to_string());
            let mut args = vec![
                "-i", "eth0", "-s", &src, "-v", "1", "-p", "secret", "-a", &vip, "-b", &b, "-k", &k,
            ];
            if unicast {
                args.extend(["--peer", &peer]);
            }
            let pid = lab.start_vipd(i, &args)?;
            Ok(Running {
                pid,
                extra_pids: vec![],
                events,
            })
        }
        Sys::Ucarp if unicast => anyhow::bail!("ucarp has no unicast mode"),
        Sys::Ucarp => {
            let (pid, events) = lab.start_ucarp(i, advbase, advskew, "secret", &["-z"])?;
            Ok(Running {
                pid,
                extra_pids: vec![],
                events,
            })
        }
        Sys::Keepalived if unicast => {
            let instance = format!("  unicast_src_ip {src}\n  unicast_peer {{\n    {peer}\n  }}\n");
            start_keepalived(lab, i, speed, "", &instance)
        }
        Sys::Keepalived => start_keepalived(lab, i, speed, "", ""),
    }
}

/// Starts keepalived on node `i` (node 0 with the higher priority) at `speed`, with `top`
/// added to its configuration's top level and `instance` inside its VRRP instance.
pub fn start_keepalived(
    lab: &mut Lab,
    i: usize,
    speed: Speed,
    top: &str,
    instance: &str,
) -> Result<Running> {
    let events = lab.dir().join(format!("events{i}"));
    let vip = format!("{VIP}/{SUBNET_PREFIX}");
    let dir = lab.dir().to_path_buf();
    let notify = dir.join(format!("notify{i}.sh"));
    write_script(&notify, &format!("echo \"$3\" >> {}", events.display()))?;
    let conf = dir.join(format!("keepalived{i}.conf"));
    std::fs::write(
        &conf,
        format!(
            "global_defs {{\n  vrrp_version 3\n  script_user root\n  enable_script_security\n}}\n{top}\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 1\n  \
             priority {}\n  advert_int {}\n  virtual_ipaddress {{\n    {vip}\n  }}\n  notify {}\n{instance}}}\n",
            if i == 0 { 200 } else { 100 },
            speed.vrrp_interval(),
            notify.display()
        ),
    )?;
    let (pid, vrrp_pid_file) = spawn_keepalived(lab, i, &conf, &i.to_string())?;
    let mut extra = vec![];
    if Lab::wait_for(Duration::from_secs(5), || {
        Path::new(&vrrp_pid_file).exists()
    }) {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(t) = std::fs::read_to_string(&vrrp_pid_file)
            && let Ok(v) = t.trim().parse()
        {
            extra.push(v);
        }
    }
    Ok(Running {
        pid,
        extra_pids: extra,
        events,
    })
}

/// The log of the keepalived [`start_keepalived`] started on node `i`.
pub fn keepalived_log(lab: &Lab, i: usize) -> String {
    std::fs::read_to_string(lab.dir().join(format!("keepalived{i}.log"))).unwrap_or_default()
}

/// Whether node `i` currently holds the VIP as MASTER, as each system shows it.
pub fn is_master(lab: &Lab, sys: Sys, i: usize, events: &Path) -> bool {
    match sys {
        Sys::Vipd => lab.state(i, 1) == "MASTER",
        Sys::Ucarp => last_event(events).as_deref() == Some("up"),
        Sys::Keepalived => last_event(events).as_deref() == Some("MASTER"),
    }
}

pub fn last_event(path: &Path) -> Option<String> {
    vipd_tests::read_lines(path).pop()
}

/// Makes the master (node 0, running as `master`) fail or hand over as
/// [`Sys::trigger`] says.
pub fn cause(lab: &mut Lab, sys: Sys, failure: Failure, master: &Running) -> Result<()> {
    match (failure, sys) {
        (Failure::Graceful, Sys::Vipd) => {
            lab.vipd_ctl(0, &["demote", "--all"])?;
        }
        (Failure::Graceful, Sys::Ucarp) => {
            signal(master.pid, libc::SIGUSR2);
        }
        (Failure::Graceful, Sys::Keepalived) => {
            lab.signal(master.pid, libc::SIGTERM, Duration::from_secs(3));
        }
        (Failure::LinkDown, _) => lab.nodes[0].link(false)?,
        (Failure::Killed, _) => {
            for p in master.extra_pids.iter().chain(std::iter::once(&master.pid)) {
                signal(*p, libc::SIGKILL);
            }
        }
    }
    Ok(())
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: signalling a process the lab started.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Transitions both nodes have made so far: vipd's counter, or the lines the other
/// systems' scripts logged.
pub fn transitions(lab: &Lab, sys: Sys, events: &[PathBuf]) -> u64 {
    match sys {
        Sys::Vipd => (0..2)
            .map(|i| {
                vipd_status(lab, i)
                    .ok()
                    .and_then(|s| s.group(1).map(|g| g.transitions))
                    .unwrap_or(0)
            })
            .sum(),
        _ => events
            .iter()
            .map(|p| vipd_tests::read_lines(p).len() as u64)
            .sum(),
    }
}

/// The VIP of group `g` in the scale runs.
fn scale_vip(g: u32) -> String {
    format!("10.1.{}.{}", g / 250, g % 250 + 1)
}

/// Starts `groups` groups at advbase 1 on node 0's one interface: one vipd process, one
/// ucarp process per group, or one keepalived with an instance per group.
pub fn start_groups(lab: &mut Lab, sys: Sys, groups: u32) -> Result<()> {
    let node = lab.nodes[0].clone();
    match sys {
        Sys::Vipd => {
            let mut conf = String::new();
            for g in 1..=groups {
                writeln!(
                    conf,
                    "[[group]]\ninterface = \"eth0\"\nvhid = {g}\nvips = [\"{}/32\"]\npassword = \"secret\"\n",
                    scale_vip(g)
                )?;
            }
            let path = lab.dir().join("scale.toml");
            std::fs::write(&path, conf)?;
            lab.start_vipd(0, &["run", "--config", &path.to_string_lossy()])?;
        }
        Sys::Ucarp => {
            for g in 1..=groups {
                let (v, s) = (g.to_string(), scale_vip(g));
                lab.spawn(
                    &node,
                    &[
                        "ucarp",
                        "-i",
                        "eth0",
                        "-s",
                        "10.0.0.1",
                        "-v",
                        &v,
                        "-p",
                        "secret",
                        "-a",
                        &s,
                        "-u",
                        "/bin/true",
                        "-d",
                        "/bin/true",
                    ],
                    &format!("ucarp{g}.log"),
                )?;
            }
        }
        Sys::Keepalived => {
            let mut conf = String::from("global_defs {\n  vrrp_version 3\n}\n");
            for g in 1..=groups {
                writeln!(
                    conf,
                    "vrrp_instance VI_{g} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {g}\n  priority 100\n  advert_int 1\n  virtual_ipaddress {{\n    {}/32\n  }}\n}}",
                    scale_vip(g)
                )?;
            }
            let path = lab.dir().join("ka.conf");
            std::fs::write(&path, conf)?;
            spawn_keepalived(lab, 0, &path, "-scale")?;
        }
    }
    Ok(())
}

/// How vipd's ingress program is attached, as the benchmark chooses it: `Default` passes no
/// `--xdp-mode` flag, so vipd picks by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    Default,
    Native,
    Generic,
    Tc,
}

impl XdpMode {
    pub const ALL: [XdpMode; 4] = [
        XdpMode::Default,
        XdpMode::Native,
        XdpMode::Generic,
        XdpMode::Tc,
    ];

    /// The flags that select this mode.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            XdpMode::Default => &[],
            XdpMode::Native => &["--xdp-mode", "native"],
            XdpMode::Generic => &["--xdp-mode", "generic"],
            XdpMode::Tc => &["--xdp-mode", "tc"],
        }
    }

    /// How the report names it.
    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Default => "default (no `--xdp-mode`)",
            XdpMode::Native => "`--xdp-mode native`",
            XdpMode::Generic => "`--xdp-mode generic`",
            XdpMode::Tc => "`--xdp-mode tc`",
        }
    }
}

/// Starts vipd on node `i` in group 1 at `speed`, with the master's or the backup's
/// advskew, its ingress program attached as `mode` selects; returns its pid.
pub fn start_vipd_in_mode(
    lab: &mut Lab,
    i: usize,
    speed: Speed,
    master: bool,
    mode: XdpMode,
) -> Result<u32> {
    let (advbase, advskew) = speed.carp(master);
    let (b, k) = (advbase.to_string(), advskew.to_string());
    let src = node_addr(i + 1).to_string();
    let vip = format!("{VIP}/{SUBNET_PREFIX}");
    let mut args = mode.flags().to_vec();
    args.extend([
        "-i", "eth0", "-s", &src, "-v", "1", "-p", "secret", "-a", &vip, "-b", &b, "-k", &k,
    ]);
    lab.start_vipd(i, &args)
}

/// `vipd status --json`, read with vipd's own types.
pub use vipd::ops::control::{GroupStatus as VipdGroup, Status as VipdStatus};

/// What the benchmark looks up in a status.
pub trait StatusExt {
    fn group(&self, vhid: u8) -> Option<&VipdGroup>;
    /// The sum of the ingress program's counters named `reasons`.
    fn xdp_sum(&self, reasons: &[&str]) -> u64;
}

impl StatusExt for VipdStatus {
    fn group(&self, vhid: u8) -> Option<&VipdGroup> {
        self.groups.iter().find(|g| g.vhid == vhid)
    }

    fn xdp_sum(&self, reasons: &[&str]) -> u64 {
        self.xdp
            .iter()
            .filter(|(r, _)| reasons.contains(&r.as_str()))
            .map(|(_, n)| n)
            .sum()
    }
}

pub fn parse_status(json: &str) -> Result<VipdStatus> {
    serde_json::from_str(json).context("parsing `vipd status --json`")
}

/// `vipd status --json` of node `i`.
pub fn vipd_status(lab: &Lab, i: usize) -> Result<VipdStatus> {
    parse_status(&lab.vipd_ctl(i, &["status", "--json"])?)
}

/// The wall clock (CLOCK_REALTIME) in µs since the Unix epoch, the clock of vipd's
/// `*_at_unix_us` fields.
pub fn now_unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A status as vipd writes it, with `group` and `extra` top-level fields added.
    pub(crate) fn status_json(group: &str, extra: &str) -> String {
        format!(
            r#"{{"schema":1,"pid":7,"unknown_group":0,"groups":[{{"interface":"eth0","vhid":1,
            "vips":["10.0.0.100/24"],"state":"BACKUP","since_secs":1.0,"master":null,
            "advbase":1,"advskew":0,"demoted":false,"last_advert_ms":null,"transitions":1,
            "adverts_sent":0,"adverts_received":12,"rejected":[]{group}}}]{extra}}}"#
        )
    }

    #[test]
    fn status_counters_and_interfaces_are_read() {
        let json = status_json(
            "",
            r#","xdp":[["pass_carp_to_daemon",2],["pass_carp_known_peer",10],["pass_other",99]],
            "interfaces":[{"name":"eth0","ifindex":2,"mode":"tc","adopted":false}]"#,
        );
        let s = parse_status(&json).unwrap();
        let g = s.group(1).unwrap();
        assert_eq!((g.state.as_str(), g.adverts_received), ("BACKUP", 12));
        assert!(s.group(2).is_none());
        assert_eq!(
            s.xdp_sum(&["pass_carp_to_daemon", "pass_carp_known_peer"]),
            12
        );
        assert_eq!(s.xdp_sum(&["drop_arp_not_owned"]), 0);
        assert_eq!(
            (s.interfaces[0].mode.as_str(), s.interfaces[0].adopted),
            ("tc", false)
        );
    }

    #[test]
    fn only_the_default_mode_passes_no_flag() {
        for mode in XdpMode::ALL {
            assert_eq!(mode.flags().is_empty(), mode == XdpMode::Default);
            assert!(!mode.name().is_empty());
        }
        assert_eq!(XdpMode::Tc.flags(), ["--xdp-mode", "tc"]);
    }

    #[test]
    fn status_timing_fields_may_be_null_or_set() {
        let json = status_json(
            r#","last_owned_at_unix_us":1700000000001500,"last_own_flip_us":4.25,
            "last_demote_at_unix_us":null"#,
            r#","xdp":[]"#,
        );
        let g = parse_status(&json).unwrap().groups.remove(0);
        assert_eq!(g.last_owned_at_unix_us, Some(1_700_000_000_001_500));
        assert_eq!(g.last_own_flip_us, Some(4.25));
        assert_eq!(g.last_demote_at_unix_us, None);
    }

    #[test]
    fn carp_timing_follows_advbase_and_advskew() {
        assert_eq!(Speed::Normal.advert_ms(), 1000.0);
        assert!((Speed::Normal.master_down_ms() - 3390.625).abs() < 1e-9);
        assert!((Speed::Fastest.advert_ms() - 7.8125).abs() < 1e-9);
        assert!((Speed::Fastest.master_down_ms() - 23.4375).abs() < 1e-9);
    }

    #[test]
    fn every_system_names_its_trigger_for_every_failure() {
        for failure in [Failure::Graceful, Failure::LinkDown, Failure::Killed] {
            for sys in SYSTEMS {
                assert!(!sys.trigger(failure).is_empty());
            }
        }
        assert!(Sys::Ucarp.trigger(Failure::Graceful).contains("SIGUSR2"));
        assert!(Sys::Vipd.trigger(Failure::Graceful).contains("vipd demote"));
    }
}
