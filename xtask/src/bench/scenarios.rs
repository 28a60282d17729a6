//! The measurements, each in a fresh lab: client-visible outage of a failover, spurious
//! transitions under flood, CPU and memory of many groups, XDP cost per packet and iperf3
//! throughput. Each returns what it measured and nothing else.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vipd_tests::{Host, Lab, VIP};

use super::stats::{max, median, min};
use super::systems::{
    self, Failure, Running, SYSTEMS, Speed, StatusExt, Sys, VipdGroup, VipdStatus, XdpMode,
    now_unix_us, vipd_status,
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
    /// The lab's bridge drops all multicast and the nodes advertise to each other as
    /// unicast peers (vipd `--peer`, keepalived `unicast_peer`).
    pub unicast: bool,
}

impl Case {
    pub fn name(&self) -> String {
        format!(
            "{}, adverts {}{}, probe every {} ms",
            self.failure.name(),
            self.speed.name(),
            if self.unicast {
                " to unicast peers (no multicast)"
            } else {
                ""
            },
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
        unicast: false,
    };
    let unicast = |failure| Case {
        unicast: true,
        ..case(Speed::Normal, failure, ms(10))
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
        cases.push(unicast(Failure::Graceful));
    } else {
        cases.push(unicast(Failure::Graceful));
        cases.push(unicast(Failure::LinkDown));
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
    /// Why the system cannot run this case at all (it was not run).
    pub cannot: Option<&'static str>,
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
                cannot: sys.cannot(case),
            };
            if let Some(why) = row.cannot {
                progress(
                    clock,
                    &format!("{}: {} not run: {why}", case.name(), sys.name()),
                );
                rows.push(row);
                continue;
            }
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
fn start_pair(lab: &mut Lab, sys: Sys, speed: Speed, unicast: bool) -> Result<[Running; 2]> {
    let r0 = systems::start_with(lab, sys, 0, speed, unicast)?;
    // Let the master win before the backup starts, as in a running cluster.
    if !Lab::wait_for(Duration::from_secs(10), || {
        systems::is_master(lab, sys, 0, &r0.events)
    }) {
        bail!("{} did not become master", sys.name());
    }
    let r1 = systems::start_with(lab, sys, 1, speed, unicast)?;
    Ok([r0, r1])
}

fn failover(sys: Sys, case: Case) -> Result<Sample> {
    let mut lab = Lab::new(&format!("b{}", sys.name()), 2)?;
    if case.unicast {
        lab.drop_multicast()?;
    }
    let [r0, _] = start_pair(&mut lab, sys, case.speed, case.unicast)?;
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
    let [r0, r1] = start_pair(&mut lab, sys, Speed::Fastest, false)?;
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
            .and_then(|s| s.group(1).map(|g| g.worst_advert_delay_us))
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

/// Where a throughput run stands in its round: the run without vipd, or vipd in a mode.
pub type Unit = Option<XdpMode>;

/// The runs of round `round`: once without vipd and once in each mode, in an order
/// rotated by one every round, so that the machine's drift falls on every mode alike.
pub fn round_order(round: usize) -> Vec<Unit> {
    let mut order: Vec<Unit> = std::iter::once(None)
        .chain(XdpMode::ALL.map(Some))
        .collect();
    let n = order.len();
    order.rotate_left(round % n);
    order
}

/// What the master's advertisements did on node 1 (vipd as BACKUP) while iperf3 ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adverts {
    /// Sent by the master, node 2 (its `adverts_sent`).
    pub sent: u64,
    /// Accepted by node 1's daemon (its `adverts_received`).
    pub received: u64,
    /// Handed to node 1's daemon by its ingress program (`pass_carp_to_daemon` +
    /// `pass_carp_known_peer`).
    pub handed_over: u64,
    /// Dropped by node 1's ingress program for a full ring (`drop_carp_ring_full` +
    /// `drop_carp_peer_ring_full`).
    pub ring_full: u64,
    /// Node 1's transitions.
    pub transitions: u64,
    /// Node 1's state after the run.
    pub state_after: String,
}

const HANDED_OVER: [&str; 2] = ["pass_carp_to_daemon", "pass_carp_known_peer"];
const RING_FULL: [&str; 2] = ["drop_carp_ring_full", "drop_carp_peer_ring_full"];

impl Adverts {
    /// From node 1's and node 2's status before and after the run.
    fn between(
        node1: (&VipdStatus, &VipdStatus),
        node2: (&VipdStatus, &VipdStatus),
    ) -> Result<Adverts> {
        let group = |s: &'_ VipdStatus| s.group(1).cloned().context("group 1 missing");
        let (b1, a1, b2, a2) = (
            group(node1.0)?,
            group(node1.1)?,
            group(node2.0)?,
            group(node2.1)?,
        );
        let grew = |reasons: &[&str]| {
            node1
                .1
                .xdp_sum(reasons)
                .saturating_sub(node1.0.xdp_sum(reasons))
        };
        Ok(Adverts {
            sent: a2.adverts_sent.saturating_sub(b2.adverts_sent),
            received: a1.adverts_received.saturating_sub(b1.adverts_received),
            handed_over: grew(&HANDED_OVER),
            ring_full: grew(&RING_FULL),
            transitions: a1.transitions.saturating_sub(b1.transitions),
            state_after: a1.state,
        })
    }

    /// Why advertisements did not keep reaching node 1's daemon; `None` when they did: it
    /// stayed BACKUP, its program handed advertisements over, and its daemon accepted
    /// every one the master sent (but one, which may cross either edge of the window).
    pub fn failure(&self) -> Option<String> {
        if self.transitions > 0 || self.state_after != "BACKUP" {
            Some(format!(
                "node 1 left BACKUP ({} after {} transition{}; {} of {} advertisements accepted)",
                self.state_after,
                self.transitions,
                if self.transitions == 1 { "" } else { "s" },
                self.received,
                self.sent
            ))
        } else if self.received == 0 || self.handed_over == 0 {
            Some(format!(
                "no advertisement reached the daemon ({} accepted, {} handed over, {} sent)",
                self.received, self.handed_over, self.sent
            ))
        } else if self.received + 1 < self.sent {
            Some(format!(
                "the daemon accepted {} of {} advertisements",
                self.received, self.sent
            ))
        } else {
            None
        }
    }
}

/// One iperf3 run with vipd on node 1's link.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeSample {
    pub gbps: f64,
    /// How `vipd status` said the program was attached to eth0.
    pub attached: Option<String>,
    /// Whether vipd reported adopting a program left on the link.
    pub adopted: bool,
    pub adverts: Adverts,
}

/// A run with vipd in `mode`, in round `round`, or why it failed.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeRun {
    pub mode: XdpMode,
    pub round: usize,
    pub outcome: Result<ModeSample, String>,
}

/// The throughput runs: per round, iperf3 once without vipd and once with vipd in each
/// mode, in [`round_order`].
#[derive(Clone, Debug, PartialEq)]
pub struct Throughput {
    /// Seconds per iperf3 run.
    pub secs: u32,
    pub rounds: usize,
    /// The kind of node 1's link as `ip -d link` reports it (`veth`, ...).
    pub link_kind: Option<String>,
    /// Node 2's advertisement timing (it is MASTER; node 1 BACKUP).
    pub speed: Speed,
    /// Per round: Gbit/s without vipd, or why that run failed.
    pub without: Vec<Result<f64, String>>,
    pub runs: Vec<ModeRun>,
}

/// One mode's runs, summarized.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeSummary {
    pub mode: XdpMode,
    /// Runs attempted.
    pub runs: usize,
    /// Percent of the same round's throughput without vipd, per run that measured both.
    pub ratios: Vec<f64>,
    pub gbps: Vec<f64>,
    /// How `vipd status` said the program was attached, each once, in the order seen.
    pub attached: Vec<String>,
    /// Runs in which vipd adopted a program left on the link.
    pub adopted: usize,
    /// Advertisements over all measured runs.
    pub adverts: Adverts,
    /// Why runs failed: vipd not running as asked, or advertisements not reaching it.
    pub failures: Vec<String>,
}

impl ModeSummary {
    /// The row's verdict on advertisements: failed when any run failed.
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }
}

impl Throughput {
    /// Gbit/s of the runs without vipd that succeeded.
    pub fn without_gbps(&self) -> Vec<f64> {
        self.without
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .copied()
            .collect()
    }

    /// The slowest and fastest run without vipd, in percent of their median: how far
    /// apart runs of one setting fell on this machine.
    pub fn without_spread(&self) -> Option<(f64, f64)> {
        let v = self.without_gbps();
        let m = median(&v);
        (m > 0.0).then(|| (min(&v) / m * 100.0, max(&v) / m * 100.0))
    }

    pub fn summary(&self, mode: XdpMode) -> ModeSummary {
        let mut sum = ModeSummary {
            mode,
            runs: 0,
            ratios: vec![],
            gbps: vec![],
            attached: vec![],
            adopted: 0,
            adverts: Adverts {
                sent: 0,
                received: 0,
                handed_over: 0,
                ring_full: 0,
                transitions: 0,
                state_after: String::new(),
            },
            failures: vec![],
        };
        for run in self.runs.iter().filter(|r| r.mode == mode) {
            sum.runs += 1;
            let s = match &run.outcome {
                Ok(s) => s,
                Err(e) => {
                    sum.failures.push(e.clone());
                    continue;
                }
            };
            sum.gbps.push(s.gbps);
            if let Some(Ok(without)) = self.without.get(run.round)
                && *without > 0.0
            {
                sum.ratios.push(s.gbps / without * 100.0);
            }
            if let Some(a) = &s.attached
                && !sum.attached.contains(a)
            {
                sum.attached.push(a.clone());
            }
            sum.adopted += usize::from(s.adopted);
            let (t, a) = (&mut sum.adverts, &s.adverts);
            t.sent += a.sent;
            t.received += a.received;
            t.handed_over += a.handed_over;
            t.ring_full += a.ring_full;
            t.transitions += a.transitions;
            sum.failures.extend(a.failure());
        }
        sum
    }
}

/// What is attached to `host`'s eth0: XDP (any mode) and TC filters on either direction.
fn attached_programs(host: &Host) -> Result<Vec<String>> {
    let mut found = vec![];
    let link: serde_json::Value = serde_json::from_str(&host.ok("ip -d -j link show dev eth0")?)?;
    if link.get(0).and_then(|l| l.get("xdp")).is_some() {
        found.push("XDP".to_owned());
    }
    for dir in ["ingress", "egress"] {
        let filters = host.ok(&format!("tc -j filter show dev eth0 {dir}"))?;
        if tc_filters(&filters) > 0 {
            found.push(format!("TC {dir}"));
        }
    }
    Ok(found)
}

/// How many entries `tc -j filter show` printed.
fn tc_filters(json: &str) -> usize {
    serde_json::from_str::<Vec<serde_json::Value>>(json.trim()).map_or(0, |v| v.len())
}

/// Detaches whatever is left on `host`'s eth0.
fn detach_all(host: &Host) {
    let _ = host.sh(
        "ip link set dev eth0 xdp off; ip link set dev eth0 xdpgeneric off; \
         tc qdisc del dev eth0 clsact",
    );
}

/// The last lines of node `i`'s vipd log, for an error message.
fn log_tail(lab: &Lab, i: usize) -> String {
    let text = lab.log_text(i);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// iperf3 to node 1 while vipd runs there as BACKUP in `mode` (node 2 stays MASTER), then
/// stops it. Fails when vipd did not settle, stop, or take its programs along.
fn iperf_with_vipd(lab: &mut Lab, secs: u32, speed: Speed, mode: XdpMode) -> Result<ModeSample> {
    let pid = systems::start_vipd_in_mode(lab, 0, speed, false, mode)?;
    let sample = sample_with_vipd(lab, secs);
    if !lab.signal(pid, libc::SIGTERM, Duration::from_secs(10)) {
        lab.signal(pid, libc::SIGKILL, Duration::from_secs(5));
        bail!("vipd on node 1 did not stop within 10 s of SIGTERM");
    }
    let sample = sample?;
    let left = attached_programs(&lab.nodes[0])?;
    if !left.is_empty() {
        detach_all(&lab.nodes[0]);
        bail!(
            "vipd left {} attached after SIGTERM (detached by the benchmark)",
            left.join(", ")
        );
    }
    Ok(sample)
}

fn sample_with_vipd(lab: &Lab, secs: u32) -> Result<ModeSample> {
    // BACKUP, and the master's advertisements accepted, before the window opens.
    let settled = Lab::wait_for(Duration::from_secs(10), || {
        vipd_status(lab, 0).is_ok_and(|s| {
            s.group(1)
                .is_some_and(|g| g.state == "BACKUP" && g.adverts_received > 0)
        })
    });
    if !settled {
        bail!(
            "vipd on node 1 did not settle as BACKUP hearing node 2: {}",
            log_tail(lab, 0)
        );
    }
    let before1 = vipd_status(lab, 0)?;
    let before2 = vipd_status(lab, 1)?;
    let gbps = iperf(lab, secs)?;
    let after2 = vipd_status(lab, 1)?;
    let after1 = vipd_status(lab, 0)?;
    let adverts = Adverts::between((&before1, &after1), (&before2, &after2))?;
    let eth0 = after1.interfaces.iter().find(|i| i.name == "eth0");
    Ok(ModeSample {
        gbps,
        attached: eth0.map(|i| i.mode.clone()),
        adopted: eth0.is_some_and(|i| i.adopted),
        adverts,
    })
}

/// iperf3 to node 1 with nothing attached to its link.
fn iperf_without_vipd(lab: &Lab, secs: u32) -> Result<f64> {
    let left = attached_programs(&lab.nodes[0])?;
    if !left.is_empty() {
        bail!("{} attached to node 1's link without vipd", left.join(", "));
    }
    iperf(lab, secs)
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

/// iperf3 from the client to node 1, `secs` per run, over `rounds` rounds: node 2 runs vipd
/// as MASTER of the group throughout; node 1 runs none, or vipd as BACKUP in each mode.
pub fn throughput(secs: u32, rounds: usize, clock: &Instant) -> Result<Throughput> {
    let speed = Speed::Normal;
    let mut lab = Lab::new("iperf", 2)?;
    let kind = lab.nodes[0]
        .ok("ip -d -j link show dev eth0")
        .ok()
        .and_then(|j| link_kind(&j));
    systems::start_vipd_in_mode(&mut lab, 1, speed, true, XdpMode::Default)?;
    if !lab.wait_state(1, 1, "MASTER", Duration::from_secs(10)) {
        bail!(
            "vipd on node 2 did not become MASTER: {}",
            log_tail(&lab, 1)
        );
    }
    lab.nodes[0].ok("iperf3 -s -D")?;
    std::thread::sleep(Duration::from_millis(300));
    // Discarded: the first connection of a fresh lab resolves neighbours and warms caches.
    iperf(&lab, 1)?;
    let mut tp = Throughput {
        secs,
        rounds,
        link_kind: kind,
        speed,
        without: vec![],
        runs: vec![],
    };
    for round in 0..rounds {
        let mut without = Err("not run".to_owned());
        for unit in round_order(round) {
            let what = unit.map_or("without vipd", XdpMode::name);
            progress(
                clock,
                &format!("iperf3 round {}/{rounds}: {what}", round + 1),
            );
            match unit {
                None => {
                    without = iperf_without_vipd(&lab, secs).map_err(|e| format!("{e:#}"));
                    match &without {
                        Ok(gbps) => eprintln!("    {gbps:.2} Gbit/s"),
                        Err(e) => eprintln!("    failed: {e}"),
                    }
                }
                Some(mode) => {
                    let outcome =
                        iperf_with_vipd(&mut lab, secs, speed, mode).map_err(|e| format!("{e:#}"));
                    match &outcome {
                        Err(e) => eprintln!("    failed: {e}"),
                        Ok(s) => eprintln!(
                            "    {:.2} Gbit/s, attached as {}, {} of {} advertisements accepted{}",
                            s.gbps,
                            s.attached.as_deref().unwrap_or("(not reported)"),
                            s.adverts.received,
                            s.adverts.sent,
                            s.adverts
                                .failure()
                                .map(|e| format!(": {e}"))
                                .unwrap_or_default()
                        ),
                    }
                    tp.runs.push(ModeRun {
                        mode,
                        round,
                        outcome,
                    });
                }
            }
        }
        tp.without.push(without);
    }
    Ok(tp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(owned: Option<u64>, flip: Option<f64>, demote: Option<u64>) -> VipdGroup {
        let timing = serde_json::json!({
            "last_owned_at_unix_us": owned,
            "last_own_flip_us": flip,
            "last_demote_at_unix_us": demote,
        });
        let timing = timing.to_string();
        let json = systems::tests::status_json(
            &format!(",{}", &timing[1..timing.len() - 1]),
            r#","xdp":[]"#,
        );
        systems::parse_status(&json).unwrap().groups.remove(0)
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
    fn every_round_runs_each_unit_once_and_the_order_rotates() {
        let units = round_order(0);
        assert_eq!(units.len(), 1 + XdpMode::ALL.len());
        assert_eq!(units[0], None);
        for round in 0..units.len() {
            let order = round_order(round);
            assert!(units.iter().all(|u| order.contains(u)));
            // Over as many rounds as units, each unit takes each place once.
            for (place, unit) in units.iter().enumerate() {
                assert_eq!(order[(place + units.len() - round) % units.len()], *unit);
            }
        }
        assert_eq!(round_order(units.len()), units);
    }

    fn adverts(sent: u64, received: u64, handed_over: u64) -> Adverts {
        Adverts {
            sent,
            received,
            handed_over,
            ring_full: 0,
            transitions: 0,
            state_after: "BACKUP".into(),
        }
    }

    #[test]
    fn advertisements_must_keep_reaching_the_daemon() {
        assert_eq!(adverts(10, 10, 10).failure(), None);
        // One may cross either edge of the window.
        assert_eq!(adverts(10, 9, 9).failure(), None);
        assert_eq!(adverts(3, 4, 4).failure(), None);
        assert!(
            adverts(10, 5, 5)
                .failure()
                .unwrap()
                .contains("accepted 5 of 10")
        );
        assert!(
            adverts(1, 0, 0)
                .failure()
                .unwrap()
                .contains("no advertisement reached the daemon")
        );
        // Accepted, but not through the ingress program's hand-over.
        assert!(adverts(3, 3, 0).failure().is_some());
        let left = Adverts {
            transitions: 1,
            state_after: "MASTER".into(),
            ..adverts(0, 0, 0)
        };
        assert!(left.failure().unwrap().contains("left BACKUP"));
    }

    #[test]
    fn ratios_are_taken_against_the_same_rounds_run_without_vipd() {
        let sample = |gbps, attached: &str, a| {
            Ok(ModeSample {
                gbps,
                attached: Some(attached.into()),
                adopted: false,
                adverts: a,
            })
        };
        let run = |mode, round, outcome| ModeRun {
            mode,
            round,
            outcome,
        };
        let tp = Throughput {
            secs: 3,
            rounds: 3,
            link_kind: Some("veth".into()),
            speed: Speed::Normal,
            without: vec![Ok(10.0), Ok(20.0), Err("iperf3 failed".into())],
            runs: vec![
                run(XdpMode::Default, 0, sample(9.9, "tc", adverts(3, 3, 3))),
                run(XdpMode::Default, 1, sample(19.0, "tc", adverts(3, 3, 3))),
                run(XdpMode::Default, 2, sample(5.0, "tc", adverts(3, 3, 3))),
                run(
                    XdpMode::Native,
                    0,
                    sample(2.5, "xdp-native", adverts(3, 3, 3)),
                ),
                run(
                    XdpMode::Native,
                    1,
                    sample(5.0, "xdp-generic", adverts(3, 0, 0)),
                ),
                run(XdpMode::Native, 2, Err("vipd did not start".into())),
            ],
        };
        assert_eq!(tp.without_gbps(), [10.0, 20.0]);
        assert_eq!(tp.without_spread(), Some((50.0, 100.0)));
        let d = tp.summary(XdpMode::Default);
        assert_eq!((d.runs, d.gbps.len()), (3, 3));
        assert_eq!(d.ratios, [99.0, 95.0]);
        assert_eq!(d.attached, ["tc"]);
        assert_eq!((d.adverts.sent, d.adverts.received), (9, 9));
        assert!(!d.failed());
        let n = tp.summary(XdpMode::Native);
        assert_eq!(n.ratios, [25.0, 25.0]);
        assert_eq!(n.attached, ["xdp-native", "xdp-generic"]);
        assert_eq!(n.failures.len(), 2);
        assert!(n.failed());
        let g = tp.summary(XdpMode::Generic);
        assert_eq!((g.runs, g.ratios.len(), g.failed()), (0, 0, false));
    }

    #[test]
    fn tc_filters_are_counted_from_tc_json() {
        assert_eq!(tc_filters("[]\n"), 0);
        assert_eq!(tc_filters(""), 0);
        assert_eq!(
            tc_filters(
                r#"[{"protocol":"all","pref":49152,"kind":"bpf"},{"protocol":"all","pref":49152,"kind":"bpf","options":{}}]"#
            ),
            2
        );
    }

    #[test]
    fn quick_runs_a_subset_of_the_cases() {
        let (quick, full) = (cases(true), cases(false));
        assert_eq!(quick.len(), 3);
        assert!(quick.iter().all(|c| full.contains(c)));
        assert_eq!(full.len(), 10);
        let unicast: Vec<_> = full
            .iter()
            .filter(|c| c.unicast)
            .map(|c| c.failure)
            .collect();
        assert_eq!(unicast, [Failure::Graceful, Failure::LinkDown]);
    }
}
