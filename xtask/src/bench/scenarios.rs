//! The measurements, each in a fresh lab: client-visible outage of a failover, spurious
//! transitions under flood, CPU and memory of many groups, XDP cost per packet and iperf3
//! throughput. Each returns what it measured and nothing else.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vipd_tests::{Lab, VIP};

use super::stats::median;
use super::systems::{
    self, Failure, Running, SYSTEMS, Speed, Sys, VipdGroup, now_unix_us, vipd_status,
};

/// Prints a progress line with the time since the run started.
fn progress(clock: &Instant, what: &str) {
    eprintln!("==> [{:>4}s] {what}", clock.elapsed().as_secs());
}

/// One failover scenario: how the master fails, at which advertisement timing, and how
/// often the client probes the VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    pub failure: Failure,
    pub speed: Speed,
    pub interval: Duration,
}

impl Case {
    pub fn name(&self) -> String {
        format!(
            "{}, adverts {}, probe every {} ms",
            self.failure.name(),
            self.speed.name(),
            self.interval.as_millis()
        )
    }
}

/// The failover scenarios of a run.
pub fn cases(quick: bool) -> Vec<Case> {
    let ms = Duration::from_millis;
    let case = |speed, failure, interval| Case {
        failure,
        speed,
        interval,
    };
    let mut cases = vec![
        case(Speed::Normal, Failure::Graceful, ms(10)),
        case(Speed::Normal, Failure::LinkDown, ms(10)),
        case(Speed::Normal, Failure::Killed, ms(10)),
        case(Speed::Fastest, Failure::Graceful, ms(10)),
        case(Speed::Fastest, Failure::LinkDown, ms(10)),
        case(Speed::Fastest, Failure::Killed, ms(10)),
    ];
    if quick {
        cases.retain(|c| {
            matches!(
                (c.speed, c.failure),
                (Speed::Normal, Failure::Graceful) | (Speed::Fastest, Failure::LinkDown)
            )
        });
    } else {
        cases.push(case(Speed::Normal, Failure::Graceful, ms(1)));
        // Node loss at a resolution finer than the 10 ms probe spacing.
        cases.push(case(Speed::Fastest, Failure::LinkDown, ms(1)));
    }
    cases
}

/// One failover measurement.
#[derive(Clone, Debug, Default)]
struct Sample {
    outage_ms: f64,
    /// How often ping really probed (median gap between replies), in ms.
    cadence_ms: f64,
    lost: u64,
    owners_after: usize,
    takeover: Takeover,
}

/// What vipd's `status --json` reported about a takeover; `None` where it did not.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Takeover {
    /// How long the new master's ownership map write took, in µs.
    flip_us: Option<f64>,
    /// From the demote request applied on the old master to the new master's ownership
    /// map write finished, in ms.
    handoff_ms: Option<f64>,
}

/// Reads a takeover from the new master's group and, after a demote, the old master's:
/// only what happened at or after `triggered_at` (wall-clock µs) counts.
fn takeover(new_master: &VipdGroup, old_master: Option<&VipdGroup>, triggered_at: u64) -> Takeover {
    let Some(owned_at) = new_master
        .last_owned_at_unix_us
        .filter(|t| *t >= triggered_at)
    else {
        return Takeover::default();
    };
    let handoff_ms = old_master
        .and_then(|g| g.last_demote_at_unix_us)
        .filter(|d| *d >= triggered_at && *d <= owned_at)
        .map(|d| (owned_at - d) as f64 / 1e3);
    Takeover {
        flip_us: new_master.last_own_flip_us,
        handoff_ms,
    }
}

/// The outages of one system in one case over the repetitions, and how the failure was
/// caused.
pub struct OutageRow {
    pub case: Case,
    pub sys: Sys,
    pub trigger: &'static str,
    /// The cadence ping kept in each repetition (ms).
    pub cadence: Vec<f64>,
    pub outage: Vec<f64>,
    pub lost: Vec<u64>,
    pub owners: Vec<usize>,
    /// vipd only: ownership map write times (µs) of the takeovers its status reported.
    pub flip_us: Vec<f64>,
    /// vipd only: demote applied to the peer's ownership map write finished (ms).
    pub handoff_ms: Vec<f64>,
}

/// Every case for every system, `reps` times each.
pub fn outages(cases: &[Case], reps: usize, clock: &Instant) -> Vec<OutageRow> {
    let mut rows = Vec::new();
    for &case in cases {
        for sys in SYSTEMS {
            let mut row = OutageRow {
                case,
                sys,
                trigger: sys.trigger(case.failure),
                cadence: vec![],
                outage: vec![],
                lost: vec![],
                owners: vec![],
                flip_us: vec![],
                handoff_ms: vec![],
            };
            for rep in 0..reps {
                progress(
                    clock,
                    &format!("{}: {} #{}", case.name(), sys.name(), rep + 1),
                );
                match failover(sys, case) {
                    Ok(s) => {
                        row.cadence.push(s.cadence_ms);
                        row.outage.push(s.outage_ms);
                        row.lost.push(s.lost);
                        row.owners.push(s.owners_after);
                        row.flip_us.extend(s.takeover.flip_us);
                        row.handoff_ms.extend(s.takeover.handoff_ms);
                    }
                    Err(e) => eprintln!("    failed: {e:#}"),
                }
            }
            rows.push(row);
        }
    }
    rows
}

/// Starts the master (node 0) and, once it won, the backup (node 1).
fn start_pair(lab: &mut Lab, sys: Sys, speed: Speed) -> Result<[Running; 2]> {
    let r0 = systems::start(lab, sys, 0, speed)?;
    // Let the master win before the backup starts, as in a running cluster.
    if !Lab::wait_for(Duration::from_secs(10), || {
        systems::is_master(lab, sys, 0, &r0.events)
    }) {
        bail!("{} did not become master", sys.name());
    }
    let r1 = systems::start(lab, sys, 1, speed)?;
    Ok([r0, r1])
}

fn failover(sys: Sys, case: Case) -> Result<Sample> {
    let mut lab = Lab::new(&format!("b{}", sys.name()), 2)?;
    let [r0, _] = start_pair(&mut lab, sys, case.speed)?;
    std::thread::sleep(Duration::from_secs(3));
    let count = (Duration::from_secs(7).as_secs_f64() / case.interval.as_secs_f64()) as u32;
    let probe = lab.start_probe(VIP, case.interval, count)?;
    std::thread::sleep(Duration::from_secs(1));
    let triggered_at = now_unix_us();
    systems::cause(&mut lab, sys, case.failure, &r0)?;
    let report = lab.finish_probe(probe)?;
    let owners_after = lab.arp_owners(VIP, 2).len();
    let takeover = match sys {
        Sys::Vipd => {
            let group = |i| vipd_status(&lab, i).ok().and_then(|s| s.group(1).cloned());
            let old = match case.failure {
                Failure::Graceful => group(0),
                _ => None,
            };
            group(1)
                .map(|new| takeover(&new, old.as_ref(), triggered_at))
                .unwrap_or_default()
        }
        _ => Takeover::default(),
    };
    Ok(Sample {
        outage_ms: report.outage().as_secs_f64() * 1e3,
        cadence_ms: report.cadence.as_secs_f64() * 1e3,
        lost: report.lost(),
        owners_after,
        takeover,
    })
}

/// How busy the machine's CPUs were over a window, from /proc/stat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuLoad {
    /// Non-idle time, percent of all CPUs.
    pub busy_pct: f64,
    /// Time in softirq (packet processing), percent of all CPUs.
    pub softirq_pct: f64,
    pub cpus: usize,
}

/// The aggregate `cpu` line of /proc/stat, in ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CpuTimes {
    total: u64,
    idle: u64,
    softirq: u64,
    cpus: usize,
}

impl CpuTimes {
    fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let f: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        if f.len() < 8 {
            return None;
        }
        let cpus = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        Some(CpuTimes {
            total: f.iter().sum(),
            idle: f[3] + f[4],
            softirq: f[6],
            cpus,
        })
    }

    fn read() -> Option<CpuTimes> {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    fn load_since(self, before: CpuTimes) -> Option<CpuLoad> {
        let total = self.total.checked_sub(before.total).filter(|t| *t > 0)? as f64;
        let idle = self.idle.saturating_sub(before.idle) as f64;
        let softirq = self.softirq.saturating_sub(before.softirq) as f64;
        Some(CpuLoad {
            busy_pct: (total - idle) / total * 100.0,
            softirq_pct: softirq / total * 100.0,
            cpus: self.cpus,
        })
    }
}

/// What the flood did to a pair at the fastest interval.
pub struct Flood {
    pub sys: Sys,
    /// Spurious transitions of both nodes; `None` if the run failed.
    pub spurious: Option<u64>,
    /// vipd only: the master's longest advertisement delay (`vipd status`), in ms.
    pub worst_delay_ms: Option<f64>,
    /// The machine's CPU load while the flood ran.
    pub cpu: Option<CpuLoad>,
}

/// [`false_failovers`] for each system.
pub fn floods(secs: u64, clock: &Instant) -> Vec<Flood> {
    SYSTEMS
        .iter()
        .map(|&sys| {
            progress(
                clock,
                &format!("false failovers under flood ({secs} s): {}", sys.name()),
            );
            false_failovers(sys, secs).unwrap_or_else(|e| {
                eprintln!("    failed: {e:#}");
                Flood {
                    sys,
                    spurious: None,
                    worst_delay_ms: None,
                    cpu: None,
                }
            })
        })
        .collect()
}

/// Spurious transitions of a pair at the fastest interval while the master's link is
/// flooded from the client.
fn false_failovers(sys: Sys, secs: u64) -> Result<Flood> {
    let mut lab = Lab::new(&format!("f{}", sys.name()), 2)?;
    let [r0, r1] = start_pair(&mut lab, sys, Speed::Fastest)?;
    let ev: [PathBuf; 2] = [r0.events, r1.events];
    std::thread::sleep(Duration::from_secs(2));
    let before = systems::transitions(&lab, sys, &ev);
    let target = lab.nodes[0].addr.to_string();
    lab.nodes[0].ok("iperf3 -s -D")?;
    let client = lab.client.clone();
    let t = secs.to_string();
    let cpu_before = CpuTimes::read();
    // Bounded in time, inside the lab only: UDP at line rate plus flood pings to node 1.
    let mut pids = vec![
        lab.spawn(
            &client,
            &[
                "iperf3", "-c", &target, "-u", "-b", "0", "-l", "64", "-t", &t, "-P", "2",
            ],
            "flood1.log",
        )?,
        lab.spawn(
            &client,
            &["timeout", &t, "ping", "-f", "-q", &target],
            "flood2.log",
        )?,
        lab.spawn(
            &client,
            &["timeout", &t, "ping", "-f", "-q", "-s", "1400", &target],
            "flood3.log",
        )?,
    ];
    std::thread::sleep(Duration::from_secs(secs + 2));
    let cpu = CpuTimes::read()
        .zip(cpu_before)
        .and_then(|(after, before)| after.load_since(before));
    for p in pids.drain(..) {
        lab.signal(p, libc::SIGKILL, Duration::from_secs(2));
    }
    let after = systems::transitions(&lab, sys, &ev);
    let worst_delay_ms = match sys {
        Sys::Vipd => vipd_status(&lab, 0)
            .ok()
            .and_then(|s| s.group(1).and_then(|g| g.worst_advert_delay_us))
            .map(|us| us as f64 / 1e3),
        _ => None,
    };
    Ok(Flood {
        sys,
        spurious: Some(after.saturating_sub(before)),
        worst_delay_ms,
        cpu,
    })
}

/// CPU seconds (user + system) of a process and its children that were waited for.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // After the comm field: state is not numeric, so utime/stime are f[10], f[11] here.
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn ns_pids(ns: &str) -> Vec<u32> {
    std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The groups each system runs in the scale measurement.
pub const SCALE_GROUPS: u32 = 255;

/// CPU and memory of everything a system runs on the node for [`SCALE_GROUPS`] groups.
pub struct Scale {
    pub sys: Sys,
    /// `None` if the run failed.
    pub measured: Option<ScaleSample>,
}

#[derive(Clone, Copy, Debug)]
pub struct ScaleSample {
    /// Percent of one core.
    pub cpu_pct: f64,
    pub rss_mb: f64,
    /// Processes in the node's namespace at the end of the window.
    pub processes: usize,
}

/// [`scale`] for each system.
pub fn scales(secs: u64, clock: &Instant) -> Vec<Scale> {
    SYSTEMS
        .iter()
        .map(|&sys| {
            progress(
                clock,
                &format!("{SCALE_GROUPS} groups for {secs} s: {}", sys.name()),
            );
            let measured = scale(sys, secs)
                .inspect_err(|e| eprintln!("    failed: {e:#}"))
                .ok();
            Scale { sys, measured }
        })
        .collect()
}

/// [`SCALE_GROUPS`] groups on one interface at advbase 1, measured over `secs`.
fn scale(sys: Sys, secs: u64) -> Result<ScaleSample> {
    let mut lab = Lab::new(&format!("s{}", sys.name()), 1)?;
    systems::start_groups(&mut lab, sys, SCALE_GROUPS)?;
    let ns = lab.nodes[0].ns.clone();
    // Warm up past start-up and the first master-down, then measure a steady window.
    std::thread::sleep(Duration::from_secs(6));
    let pids = ns_pids(&ns);
    if pids.is_empty() {
        bail!("{} is not running", sys.name());
    }
    let cpu0: f64 = pids.iter().map(|p| cpu_secs(*p)).sum();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let pids = ns_pids(&ns);
    let cpu1: f64 = pids.iter().map(|p| cpu_secs(*p)).sum();
    Ok(ScaleSample {
        cpu_pct: (cpu1 - cpu0) / t0.elapsed().as_secs_f64() * 100.0,
        rss_mb: pids.iter().map(|p| rss_mb(*p)).sum(),
        processes: pids.len(),
    })
}

/// XDP cost per packet, ns, timed by the kernel (BPF_PROG_TEST_RUN).
#[derive(Clone, Copy, Debug)]
pub struct XdpCost {
    /// A TCP SYN the program passes.
    pub syn_ns: f64,
    /// An advertisement the program hands to the ring buffer.
    pub advert_ns: f64,
}

/// [`XdpCost`] from the `xdp_cost` example.
pub fn xdp_cost(repeat: u32) -> Result<XdpCost> {
    let out = crate::cargo("stable")
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "vipd-tests",
            "--example",
            "xdp_cost",
            "--",
        ])
        .arg(repeat.to_string())
        .output()
        .context("running the xdp_cost example")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "xdp_cost failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let field = |name: &str| -> Result<f64> {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in {text:?}"))
    };
    Ok(XdpCost {
        syn_ns: field("syn_ns=")?,
        advert_ns: field("advert_ns=")?,
    })
}

/// iperf3 TCP throughput from the client to node 1, Gbit/s.
fn iperf(lab: &Lab, secs: u32) -> Result<f64> {
    let out = lab
        .client
        .ok(&format!("iperf3 -c {} -t {secs} -J", lab.nodes[0].addr))?;
    let key = "\"bits_per_second\":";
    // The receiver's figure is the last one in the summary.
    let v = out
        .rmatch_indices(key)
        .next()
        .and_then(|(i, _)| {
            out[i + key.len()..]
                .trim_start()
                .split([',', '\n', '}'])
                .next()
                .and_then(|n| n.trim().parse::<f64>().ok())
        })
        .context("no bits_per_second in iperf3 output")?;
    Ok(v / 1e9)
}

/// iperf3 to node 1 while vipd runs there (attached with `--xdp-mode mode`, MASTER of a
/// group), then stops it.
fn iperf_with_vipd(lab: &mut Lab, secs: u32, mode: &str) -> Result<f64> {
    let pid = systems::start_vipd_master(lab, mode)?;
    let gbps = iperf(lab, secs);
    lab.signal(pid, libc::SIGTERM, Duration::from_secs(10));
    gbps
}

/// Median iperf3 Gbit/s without vipd, with vipd in native XDP mode, with generic mode.
pub struct Throughput {
    pub without: f64,
    pub native: f64,
    pub generic: f64,
    /// The kind of node 1's link as `ip -d link` reports it (`veth`, ...).
    pub link_kind: Option<String>,
}

/// The `linkinfo.info_kind` of the first link in `ip -d -j link show` output.
fn link_kind(json: &str) -> Option<String> {
    let links: serde_json::Value = serde_json::from_str(json).ok()?;
    links
        .get(0)?
        .get("linkinfo")?
        .get("info_kind")?
        .as_str()
        .map(str::to_owned)
}

pub fn throughput(secs: u32, reps: usize) -> Result<Throughput> {
    let mut lab = Lab::new("iperf", 1)?;
    let kind = lab.nodes[0]
        .ok("ip -d -j link show dev eth0")
        .ok()
        .and_then(|j| link_kind(&j));
    lab.nodes[0].ok("iperf3 -s -D")?;
    std::thread::sleep(Duration::from_millis(300));
    let (mut without, mut native, mut generic) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so that drift of the machine hits all three alike.
    for _ in 0..reps {
        without.push(iperf(&lab, secs)?);
        native.push(iperf_with_vipd(&mut lab, secs, "native")?);
        generic.push(iperf_with_vipd(&mut lab, secs, "generic")?);
    }
    Ok(Throughput {
        without: median(&without),
        native: median(&native),
        generic: median(&generic),
        link_kind: kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(owned: Option<u64>, flip: Option<f64>, demote: Option<u64>) -> VipdGroup {
        VipdGroup {
            vhid: 1,
            transitions: 1,
            worst_advert_delay_us: None,
            last_owned_at_unix_us: owned,
            last_own_flip_us: flip,
            last_demote_at_unix_us: demote,
        }
    }

    #[test]
    fn handoff_is_the_new_owner_time_minus_the_demote_time() {
        let old = group(Some(500), Some(9.5), Some(1_100));
        let new = group(Some(2_600), Some(4.25), None);
        let t = takeover(&new, Some(&old), 1_000);
        assert_eq!(t.flip_us, Some(4.25));
        assert_eq!(t.handoff_ms, Some(1.5));
        // Without a demote (link down, kill) only the flip counts.
        assert_eq!(
            takeover(&new, None, 1_000),
            Takeover {
                flip_us: Some(4.25),
                handoff_ms: None
            }
        );
    }

    #[test]
    fn takeovers_before_the_trigger_or_unreported_are_not_measured() {
        let old = group(None, None, Some(1_100));
        // The peer last took ownership before the failure was caused: no takeover seen.
        assert_eq!(
            takeover(&group(Some(900), Some(3.0), None), Some(&old), 1_000),
            Takeover::default()
        );
        // A daemon that reports none of the timing fields.
        assert_eq!(
            takeover(
                &group(None, None, None),
                Some(&group(None, None, None)),
                1_000
            ),
            Takeover::default()
        );
        // A demote time from before the trigger is another hand-off's.
        let stale = group(None, None, Some(800));
        assert_eq!(
            takeover(&group(Some(2_000), None, None), Some(&stale), 1_000).handoff_ms,
            None
        );
    }

    #[test]
    fn cpu_load_comes_from_two_proc_stat_readings() {
        let before = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n\
                      cpu1 50 0 25 400 25 0 0 0 0 0\nintr 1 2 3\n";
        let after = "cpu  200 0 150 850 50 0 150 0 0 0\ncpu0 1 0 0 0 0 0 0 0 0 0\n\
                     cpu1 1 0 0 0 0 0 0 0 0 0\n";
        let (b, a) = (
            CpuTimes::parse(before).unwrap(),
            CpuTimes::parse(after).unwrap(),
        );
        let load = a.load_since(b).unwrap();
        assert_eq!(load.cpus, 2);
        assert!((load.busy_pct - 350.0 / 400.0 * 100.0).abs() < 1e-9);
        assert!((load.softirq_pct - 150.0 / 400.0 * 100.0).abs() < 1e-9);
        assert_eq!(b.load_since(b), None);
        assert_eq!(CpuTimes::parse("intr 1\n"), None);
    }

    #[test]
    fn link_kind_is_read_from_ip_json() {
        let json = r#"[{"ifindex":2,"ifname":"eth0","linkinfo":{"info_kind":"veth"}}]"#;
        assert_eq!(link_kind(json).as_deref(), Some("veth"));
        assert_eq!(link_kind(r#"[{"ifindex":2,"ifname":"eth0"}]"#), None);
        assert_eq!(link_kind("not json"), None);
    }

    #[test]
    fn quick_runs_a_subset_of_the_cases() {
        let (quick, full) = (cases(true), cases(false));
        assert_eq!(quick.len(), 2);
        assert!(quick.iter().all(|c| full.contains(c)));
        assert_eq!(full.len(), 8);
    }
}
