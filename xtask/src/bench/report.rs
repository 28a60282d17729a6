//! The Markdown report of a run, and the README summary a full run refreshes. Every
//! figure and sentence comes from the run's [`Results`] or its configuration.
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use super::Results;
use super::goals::{Judged, Verdict, judge};
use super::scenarios::{Flood, OutageRow, SCALE_GROUPS, Scale, Throughput};
use super::service::{self, TrackerRow};
use super::stats::{max, median, min};
use super::systems::{SYSTEMS, Speed, Sys, XdpMode};

/// Shown where a run has no figure.
const NOT_MEASURED: &str = "not measured";

fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v:.0}")
    }
}

/// Median / max of `v` and how many there are, or [`NOT_MEASURED`].
fn median_max(v: &[f64], decimals: usize) -> String {
    if v.is_empty() {
        return NOT_MEASURED.into();
    }
    format!(
        "{:.decimals$} / {:.decimals$} (of {})",
        median(v),
        max(v),
        v.len()
    )
}

pub fn render(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# vipd benchmark report{}\n",
        if r.quick { " (quick)" } else { "" }
    );
    intro(&mut s, r);
    if let Some(rows) = &r.outages {
        outages(&mut s, rows, r.reps);
    }
    if let Some(floods) = &r.floods {
        self::floods(&mut s, r.flood_secs, floods);
    }
    if r.xdp.is_some() || r.outages.is_some() {
        data_plane(&mut s, r);
    }
    if let Some(tp) = &r.throughput {
        throughput(&mut s, tp);
    }
    if let Some(scales) = &r.scales {
        scale(&mut s, r.scale_secs, scales);
    }
    if let Some(rows) = &r.trackers {
        service_killed(&mut s, rows, r.reps);
    }
    if let Some(rows) = &r.drain {
        super::drain::section(&mut s, rows);
    }
    goals(&mut s, &judge(r));
    s
}

fn intro(s: &mut String, r: &Results) {
    let versions: Vec<String> = r
        .versions
        .iter()
        .map(|(sys, v)| {
            let source = match sys {
                Sys::Vipd => "`vipd --version`",
                _ => "Debian package",
            };
            match v {
                Some(v) => format!("{} {v} ({source})", sys.name()),
                None => format!("{} (version {NOT_MEASURED})", sys.name()),
            }
        })
        .collect();
    let _ = write!(
        s,
        "{}, measured in the same run on two nodes and a client in network namespaces.",
        versions.join(", "),
    );
    if r.outages.is_some() {
        let _ = write!(
            s,
            " Each outage figure is median / max over {} repetitions; \"owners\" is how many \
             MACs answered ARP for the VIP afterwards (the max over repetitions).",
            r.reps
        );
    }
    if !r.complete() {
        let _ = write!(
            s,
            " This run measured only: {} (`--only`).",
            r.ran()
                .iter()
                .map(|sc| sc.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s.push_str("\n\n");
    let speeds = speeds(r);
    if speeds.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "| adverts | vipd and ucarp: advbase, advskew master / backup | advertisement interval (ms) | backup's master-down (ms) | keepalived (VRRPv3) advert_int (s) |\n|---|---|---|---|---|"
    );
    for speed in speeds {
        let ((b, k0), (_, k1)) = (speed.carp(true), speed.carp(false));
        let _ = writeln!(
            s,
            "| {} | {b}, {k0} / {k1} | {:.1} | {:.1} | {} |",
            speed.name(),
            speed.advert_ms(),
            speed.master_down_ms(),
            speed.vrrp_interval()
        );
    }
    s.push('\n');
}

/// The advertisement timings the run used, each once, in the order first used.
fn speeds(r: &Results) -> Vec<Speed> {
    let mut speeds: Vec<Speed> = vec![];
    let tracker_speed = r.trackers.as_ref().map(|_| service::SPEED);
    let used = r.outages.iter().flatten().map(|row| row.case.speed);
    for speed in used.chain(tracker_speed) {
        if !speeds.contains(&speed) {
            speeds.push(speed);
        }
    }
    speeds
}

/// The outage cell of `sys` in `scenario`, and its median (NaN when it failed).
fn outage_cell(rows: &[&OutageRow], sys: Sys, reps: usize) -> (String, f64) {
    match rows.iter().find(|r| r.sys == sys) {
        Some(r) if r.cannot.is_some() => (
            format!("not run: {}", r.cannot.unwrap_or_default()),
            f64::NAN,
        ),
        Some(r) if !r.outage.is_empty() => {
            let owners = r.owners.iter().max().copied().unwrap_or(0);
            let lost_max = r.lost.iter().max().copied().unwrap_or(0);
            let runs = if r.outage.len() < reps {
                format!(", {} of {reps} runs", r.outage.len())
            } else {
                String::new()
            };
            (
                format!(
                    "{} / {} (lost ≤{lost_max}, owners {owners}{runs})",
                    fmt_ms(median(&r.outage)),
                    fmt_ms(max(&r.outage))
                ),
                median(&r.outage),
            )
        }
        _ => ("failed".into(), f64::NAN),
    }
}

fn outages(s: &mut String, all: &[OutageRow], reps: usize) {
    let _ = writeln!(
        s,
        "## Client-visible outage (ms, longest gap between replies minus ping's usual gap)\n"
    );
    let _ = writeln!(
        s,
        "| scenario | vipd | ucarp | keepalived | ucarp / vipd | keepalived / vipd |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let mut cases = vec![];
    for row in all {
        if !cases.contains(&row.case) {
            cases.push(row.case);
        }
    }
    for case in &cases {
        let rows: Vec<&OutageRow> = all.iter().filter(|row| row.case == *case).collect();
        let (v, vm) = outage_cell(&rows, Sys::Vipd, reps);
        let (u, um) = outage_cell(&rows, Sys::Ucarp, reps);
        let (k, km) = outage_cell(&rows, Sys::Keepalived, reps);
        let ratio = |x: f64| {
            if x.is_nan() || vm.is_nan() {
                "n/a".into()
            } else if vm > 0.5 {
                format!("{:.1}×", x / vm)
            } else {
                format!("{x:.0} ms vs 0")
            }
        };
        let _ = writeln!(
            s,
            "| {} | {v} | {u} | {k} | {} | {} |",
            case.name(),
            ratio(um),
            ratio(km)
        );
    }
    // What "probe every N ms" really meant: ping's own cadence, from its timestamps.
    let mut intervals: Vec<_> = all.iter().map(|row| row.case.interval).collect();
    intervals.sort();
    intervals.dedup();
    let cadences: Vec<String> = intervals
        .iter()
        .filter_map(|&iv| {
            let cadence: Vec<f64> = all
                .iter()
                .filter(|row| row.case.interval == iv)
                .flat_map(|row| row.cadence.iter().copied())
                .collect();
            (!cadence.is_empty()).then(|| {
                format!(
                    "`ping -i {}` sent a probe every {:.1} ms",
                    iv.as_secs_f64(),
                    median(&cadence)
                )
            })
        })
        .collect();
    if !cadences.is_empty() {
        let _ = writeln!(
            s,
            "\nMeasured from ping's timestamps (median over all runs): {}. The outage is the \
             longest gap minus that cadence, and \"lost\" counts the probes ping sent.",
            cadences.join("; ")
        );
    }
    let _ = writeln!(
        s,
        "\nHow the failure was caused:\n\n| failure | {} |\n|---|{}",
        SYSTEMS.map(Sys::name).join(" | "),
        "---|".repeat(SYSTEMS.len())
    );
    let mut failures = vec![];
    for case in &cases {
        if failures.contains(&case.failure) {
            continue;
        }
        failures.push(case.failure);
        let cells: Vec<&str> = SYSTEMS
            .iter()
            .map(|&sys| {
                all.iter()
                    .find(|row| row.case.failure == case.failure && row.sys == sys)
                    .map_or(NOT_MEASURED, |row| row.trigger)
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", case.failure.name(), cells.join(" | "));
    }
}

fn floods(s: &mut String, secs: u64, floods: &[Flood]) {
    let _ = writeln!(
        s,
        "\n## False failovers under flood ({secs} s, fastest intervals, master's link flooded from the client)\n",
    );
    let _ = writeln!(
        s,
        "| system | spurious transitions | master's worst advertisement delay (ms) | machine CPU busy during the flood (%, of it softirq) |\n|---|---|---|---|"
    );
    for f in floods {
        let cpu = f.cpu.map_or_else(
            || NOT_MEASURED.to_owned(),
            |c| {
                format!(
                    "{:.0} ({:.0}) of {} CPUs",
                    c.busy_pct, c.softirq_pct, c.cpus
                )
            },
        );
        let _ = writeln!(
            s,
            "| {} | {} | {} | {cpu} |",
            f.sys.name(),
            f.spurious
                .map(|n| n.to_string())
                .unwrap_or_else(|| "failed".into()),
            f.worst_delay_ms
                .map(|d| format!("{d:.1}"))
                .unwrap_or_else(|| "not reported".into()),
        );
    }
}

fn data_plane(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Data plane\n");
    let _ = writeln!(s, "| measure | value |\n|---|---|");
    if let Some(xdp) = &r.xdp {
        let _ = writeln!(
            s,
            "| XDP pass-through (TCP SYN), ns/packet | {:.1} |",
            xdp.syn_ns
        );
        let _ = writeln!(
            s,
            "| XDP advertisement to ring buffer, ns/packet | {:.1} |",
            xdp.advert_ns
        );
    }
    let Some(outages) = &r.outages else {
        return;
    };
    let vipd = || outages.iter().filter(|row| row.sys == Sys::Vipd);
    let flips: Vec<f64> = vipd().flat_map(|row| row.flip_us.iter().copied()).collect();
    let handoffs: Vec<f64> = vipd()
        .flat_map(|row| row.handoff_ms.iter().copied())
        .collect();
    let _ = writeln!(
        s,
        "| ownership map write on takeover, µs (median / max), `last_own_flip_us` | {} |",
        median_max(&flips, 1)
    );
    let _ = writeln!(
        s,
        "| demote applied to the peer's ownership map written, ms (median / max), \
         `last_owned_at_unix_us` − `last_demote_at_unix_us` | {} |",
        median_max(&handoffs, 2)
    );
}

/// `median (min–max)` of `v` with `decimals`, or [`NOT_MEASURED`].
fn median_range(v: &[f64], decimals: usize) -> String {
    if v.is_empty() {
        return NOT_MEASURED.into();
    }
    format!(
        "{:.decimals$} ({:.decimals$}–{:.decimals$})",
        median(v),
        min(v),
        max(v)
    )
}

fn throughput(s: &mut String, tp: &Throughput) {
    let _ = writeln!(
        s,
        "\n## Throughput by ingress mode (iperf3 TCP, client to node 1, {} s per run)\n",
        tp.secs
    );
    let _ = writeln!(
        s,
        "{} rounds, after one discarded warm-up run; each runs iperf3 once with nothing attached to node 1's link and once with \
         vipd in each mode, in an order rotated by one every round. A run's ratio is its \
         throughput over that of the same round's run without vipd. Node 2 runs vipd (no \
         `--xdp-mode`) as MASTER of the group throughout, advertising every {:.0} ms; node 1, \
         the iperf3 server, runs vipd as BACKUP of the group, started before its run and \
         stopped after it. A run counts as advertisements reaching the daemon when node 1 \
         stayed BACKUP, its ingress program handed advertisements over \
         (`pass_carp_to_daemon` + `pass_carp_known_peer`) and its daemon accepted \
         (`adverts_received`) all that node 2 sent (`adverts_sent`) during the run, less one \
         at the window's edges. Node 1's link kind (`ip -d link`): {}.\n",
        tp.rounds,
        tp.speed.advert_ms(),
        tp.link_kind
            .as_deref()
            .map_or_else(|| NOT_MEASURED.to_owned(), |k| format!("`{k}`"))
    );
    let _ = writeln!(
        s,
        "| vipd on node 1 | attached as (`vipd status`) | % of without vipd, median (min–max) | \
         Gbit/s, median (min–max) | runs | advertisements accepted / sent (handed over) | \
         advertisements reached the daemon |\n|---|---|---|---|---|---|---|"
    );
    let without = tp.without_gbps();
    let reference = match tp.without_spread() {
        Some((lo, hi)) => format!("100 (reference; its runs {lo:.1}–{hi:.1} % of their median)"),
        None => NOT_MEASURED.to_owned(),
    };
    let _ = writeln!(
        s,
        "| none | nothing (checked before each run) | {reference} | {} | {} of {} | | |",
        median_range(&without, 2),
        without.len(),
        tp.without.len()
    );
    for mode in XdpMode::ALL {
        let sum = tp.summary(mode);
        if sum.runs == 0 {
            continue;
        }
        let mut attached: Vec<String> = sum.attached.iter().map(|m| format!("`{m}`")).collect();
        if attached.is_empty() {
            attached.push(NOT_MEASURED.into());
        }
        if sum.adopted > 0 {
            attached.push(format!(
                "adopted a program left on the link in {} runs",
                sum.adopted
            ));
        }
        let a = &sum.adverts;
        let mut adverts = if sum.gbps.is_empty() {
            NOT_MEASURED.to_owned()
        } else {
            format!("{} / {} ({})", a.received, a.sent, a.handed_over)
        };
        if a.ring_full > 0 {
            let _ = write!(adverts, "; {} dropped for a full ring", a.ring_full);
        }
        let reached = if sum.failed() {
            format!(
                "**failed** in {} of {} runs: {}",
                sum.failures.len(),
                sum.runs,
                sum.failures[0]
            )
        } else {
            "every run".to_owned()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} of {} | {adverts} | {reached} |",
            mode.name(),
            attached.join(", "),
            median_range(&sum.ratios, 1),
            median_range(&sum.gbps, 2),
            sum.ratios.len(),
            sum.runs
        );
    }
}

fn scale(s: &mut String, secs: u64, scales: &[Scale]) {
    let _ = writeln!(
        s,
        "\n## Scale: {SCALE_GROUPS} groups on one interface, advbase 1 ({secs} s)\n",
    );
    let _ = writeln!(
        s,
        "| system | processes | CPU (% of one core) | RSS (MB) |\n|---|---|---|---|"
    );
    for sc in scales {
        match sc.measured {
            Some(m) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.2} | {:.1} |",
                    sc.sys.name(),
                    m.processes,
                    m.cpu_pct,
                    m.rss_mb
                );
            }
            None => {
                let _ = writeln!(s, "| {} | failed | failed | failed |", sc.sys.name());
            }
        }
    }
}

/// The best (lowest) median of the rows of `sys` that measured, and its row.
pub fn best(rows: &[TrackerRow], sys: Sys) -> Option<(f64, &TrackerRow)> {
    rows.iter()
        .filter(|r| r.tracking.sys() == sys && !r.recovery_ms.is_empty())
        .map(|r| (median(&r.recovery_ms), r))
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

fn service_killed(s: &mut String, rows: &[TrackerRow], reps: usize) {
    let _ = writeln!(
        s,
        "\n## Service killed on the master (adverts {}, a connection every {} ms)\n",
        service::SPEED.name(),
        service::CONNECT_EVERY.as_millis()
    );
    let cadence: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.cadence_ms.iter().copied())
        .collect();
    let kept = if cadence.is_empty() {
        String::new()
    } else {
        format!(
            " (it kept one every {:.1} ms, median over the runs)",
            median(&cadence)
        )
    };
    let _ = writeln!(
        s,
        "Both nodes run a TCP server bound to the VIP (port {}) that answers every connection \
         with its node's name (keepalived's backup, which does not hold the VIP, binds it with \
         IP_FREEBIND). The client opens a new connection to the VIP every {} ms{kept}, each \
         given {} ms to be accepted and answered. The master's server gets SIGKILL {} s after \
         the client starts, plus a part of {} ms that moves by 1/{reps} of it from run to run, \
         so that the kills fall at different points of the client's spacing and of a \
         one-second check interval; the figure is the time from the kill until the first \
         connection answered by the peer's server was established, watched for {} s, so the \
         client's spacing is its resolution. Failed attempts are those started after the kill \
         and before that connection; the master's server must have answered the last attempt \
         before the kill. Median / max over the runs.\n",
        service::PORT,
        service::CONNECT_EVERY.as_millis(),
        service::CONNECT_TIMEOUT.as_millis(),
        service::KILL_BASE.as_secs(),
        service::KILL_SPREAD.as_millis(),
        service::WINDOW.as_secs(),
    );
    let _ = writeln!(
        s,
        "| system | tracker | kill to a connection served by the peer, ms | failed attempts | \
         kill to the peer's ownership map write (`last_owned_at_unix_us`), ms | runs | \
         ÷ vipd's best median |\n|---|---|---|---|---|---|---|"
    );
    let vipd_best = best(rows, Sys::Vipd).map(|(m, _)| m);
    for row in rows {
        let t = row.tracking;
        let measured = !row.recovery_ms.is_empty();
        let failed: Vec<f64> = row.failed.iter().map(|n| *n as f64).collect();
        let mut runs = format!("{} of {}", row.recovery_ms.len(), row.runs());
        let before: u64 = row.failed_before.iter().sum();
        if before > 0 {
            let _ = write!(
                runs,
                "; {before} attempts failed in the {} ms before the kill",
                service::CHECKED_BEFORE.as_millis()
            );
        }
        if let Some(e) = row.errors.first() {
            let _ = write!(runs, "; failed: {e}");
        }
        let ratio = match vipd_best {
            Some(v) if measured && v > 0.0 => format!("{:.1}×", median(&row.recovery_ms) / v),
            _ => "n/a".to_owned(),
        };
        let takeover = if t.sys() == Sys::Vipd {
            median_max(&row.takeover_ms, 1)
        } else {
            "not reported".to_owned()
        };
        let cell = |v: &[f64], d: usize| {
            if v.is_empty() {
                "failed".to_owned()
            } else {
                format!("{:.d$} / {:.d$}", median(v), max(v))
            }
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {takeover} | {runs} | {ratio} |",
            t.sys().name(),
            t.name(),
            cell(&row.recovery_ms, 1),
            cell(&failed, 0),
        );
    }
}

fn goals(s: &mut String, judged: &[Judged]) {
    let _ = writeln!(s, "\n## Goals\n");
    for j in judged {
        let g = &j.goal;
        let d = g.decimals;
        let basis = g.basis.map(|b| format!(" ({b})")).unwrap_or_default();
        let verdict = match j.verdict() {
            Verdict::Met => "met",
            Verdict::Missed => "**missed**",
            Verdict::NotMeasured => NOT_MEASURED,
        };
        let figure = match &j.measured {
            Some(m) => {
                let mut parts = vec![];
                if !m.value.is_nan() {
                    parts.push(format!("{:.d$} {}", m.value, g.unit));
                }
                parts.extend(m.facts.iter().cloned());
                parts.extend(m.failed.iter().cloned());
                if parts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", parts.join("; "))
                }
            }
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "- {} {} {:.d$} {}{basis}: {verdict}{figure}.",
            g.name,
            g.cmp.symbol(),
            g.threshold,
            g.unit
        );
    }
}

pub const SUMMARY_BEGIN: &str = "<!-- bench-summary:begin -->";
pub const SUMMARY_END: &str = "<!-- bench-summary:end -->";

/// Puts the outage section, the flood table and the goals of a full run's report between
/// the README's summary markers.
pub fn update_readme(path: &Path, report: &str) -> Result<()> {
    let readme = std::fs::read_to_string(path)?;
    let (Some(b), Some(e)) = (readme.find(SUMMARY_BEGIN), readme.find(SUMMARY_END)) else {
        bail!(
            "{} has no {SUMMARY_BEGIN} ... {SUMMARY_END} block",
            path.display()
        );
    };
    let mut summary = String::from("Latest full run (`bench/results/report.md`):\n");
    for section in report.split("\n## ").skip(1) {
        let keep = [
            "Client-visible outage",
            "False failovers",
            "Throughput by ingress mode",
            "Service killed on the master",
            "Goals",
        ];
        if keep.iter().any(|k| section.starts_with(k)) {
            let _ = write!(summary, "\n#### {}", section.trim_end());
            summary.push('\n');
        }
    }
    let updated = format!("{}{SUMMARY_BEGIN}\n{summary}{}", &readme[..b], &readme[e..]);
    std::fs::write(path, updated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::scenarios::{
        Adverts, Case, CpuLoad, ModeRun, ModeSample, ScaleSample, XdpCost,
    };
    use super::super::service::Tracking;
    use super::super::systems::Failure;
    use super::*;

    fn row(case: Case, sys: Sys, outage: &[f64], flips: &[f64], handoffs: &[f64]) -> OutageRow {
        OutageRow {
            case,
            sys,
            trigger: sys.trigger(case.failure),
            cadence: vec![16.0; outage.len()],
            outage: outage.to_vec(),
            lost: vec![0; outage.len()],
            owners: vec![1; outage.len()],
            flip_us: flips.to_vec(),
            handoff_ms: handoffs.to_vec(),
            cannot: sys.cannot(case),
        }
    }

    fn adverts(sent: u64, received: u64) -> Adverts {
        Adverts {
            sent,
            received,
            handed_over: received,
            ring_full: 0,
            transitions: 0,
            state_after: "BACKUP".into(),
        }
    }

    /// Two rounds at 10 Gbit/s without vipd; by default vipd runs at 95 and 97 % of that.
    fn throughput(link_kind: Option<&str>) -> Throughput {
        let mut runs = vec![];
        for round in 0..2 {
            for (mode, attached, gbps) in [
                (XdpMode::Default, "tc", [9.5, 9.7]),
                (XdpMode::Native, "xdp-native", [3.0, 3.2]),
                (XdpMode::Generic, "xdp-generic", [9.0, 8.8]),
                (XdpMode::Tc, "tc", [9.6, 9.9]),
            ] {
                runs.push(ModeRun {
                    mode,
                    round,
                    outcome: Ok(ModeSample {
                        gbps: gbps[round],
                        attached: Some(attached.into()),
                        adopted: false,
                        adverts: adverts(3, 3),
                    }),
                });
            }
        }
        Throughput {
            secs: 3,
            rounds: 2,
            link_kind: link_kind.map(str::to_owned),
            speed: Speed::Normal,
            without: vec![Ok(10.0), Ok(10.0)],
            runs,
        }
    }

    /// A run in which vipd misses the flood and throughput goals, and whose daemon did
    /// not report takeover timing.
    fn results(cpu: Option<CpuLoad>, link_kind: Option<&str>) -> Results {
        let graceful = Case {
            failure: Failure::Graceful,
            speed: Speed::Normal,
            interval: Duration::from_millis(10),
            unicast: false,
        };
        let link = Case {
            failure: Failure::LinkDown,
            speed: Speed::Fastest,
            interval: Duration::from_millis(10),
            unicast: false,
        };
        let mut outages = vec![];
        for case in [graceful, link] {
            outages.push(row(case, Sys::Vipd, &[4.0, 5.0], &[], &[]));
            outages.push(row(case, Sys::Ucarp, &[3400.0, 3410.0], &[], &[]));
            outages.push(row(case, Sys::Keepalived, &[], &[], &[]));
        }
        Results {
            quick: true,
            reps: 2,
            versions: vec![
                (Sys::Vipd, Some("0.1.0".into())),
                (Sys::Ucarp, Some("1.5.2".into())),
                (Sys::Keepalived, None),
            ],
            outages: Some(outages),
            flood_secs: 10,
            floods: Some(vec![Flood {
                sys: Sys::Vipd,
                spurious: Some(3),
                worst_delay_ms: Some(20.0),
                cpu,
            }]),
            xdp: Some(XdpCost {
                syn_ns: 27.0,
                advert_ns: 150.0,
            }),
            throughput: Some(throughput(link_kind)),
            scale_secs: 15,
            scales: Some(vec![Scale {
                sys: Sys::Vipd,
                measured: Some(ScaleSample {
                    cpu_pct: 0.4,
                    rss_mb: 8.6,
                    processes: 1,
                }),
            }]),
            trackers: Some(tracker_rows()),
            drain: Some(vec![crate::bench::drain::DrainRow {
                sys: Sys::Vipd,
                resets: vec![0.0, 0.0],
                stall_ms: vec![12.0, 30.0],
                bulk_min_mbps: vec![900.0, 800.0],
                bulk_median_mbps: vec![2000.0, 2100.0],
                opened: vec![(50, 50), (50, 50)],
                errors: vec![],
                first_reset: None,
            }]),
        }
    }

    fn tracker_row(
        tracking: Tracking,
        ms: &[f64],
        failed: &[u64],
        takeover: &[f64],
        errors: &[&str],
    ) -> TrackerRow {
        TrackerRow {
            tracking,
            recovery_ms: ms.to_vec(),
            takeover_ms: takeover.to_vec(),
            failed: failed.to_vec(),
            failed_before: vec![0; ms.len()],
            cadence_ms: vec![10.0; ms.len()],
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    const CONNECTOR: &str =
        "keepalived on node 1 is FAULT instead of MASTER: Failed to set/clear process event listen";

    /// vipd recovers in 12 and 20 ms (max), keepalived's script in 800 ms; its
    /// track_process never ran.
    fn tracker_rows() -> Vec<TrackerRow> {
        vec![
            tracker_row(
                Tracking::VipdProcess,
                &[10.3, 12.0],
                &[1, 1],
                &[0.4, 0.5],
                &[],
            ),
            tracker_row(Tracking::VipdTcp, &[14.0, 20.0], &[1, 2], &[8.0], &[]),
            tracker_row(
                Tracking::KeepalivedProcess,
                &[],
                &[],
                &[],
                &[CONNECTOR, CONNECTOR],
            ),
            tracker_row(
                Tracking::KeepalivedScript,
                &[800.0, 790.0],
                &[80, 79],
                &[],
                &[],
            ),
        ]
    }

    #[test]
    fn a_killed_service_is_reported_per_tracker_and_judged() {
        let text = render(&results(None, None));
        assert!(text.contains(
            "## Service killed on the master (adverts fastest, a connection every 10 ms)"
        ));
        assert!(text.contains("(it kept one every 10.0 ms, median over the runs)"));
        assert!(text.contains(
            "| vipd | process tracker (`type = \"process\"`, `process_name`, pidfd), fall 1, FAULT \
             | 12.0 / 12.0 | 1 / 1 | 0.5 / 0.5 (of 2) | 2 of 2 | 1.0× |"
        ), "{text}");
        assert!(text.contains("| 20.0 / 20.0 | 2 / 2 | 8.0 / 8.0 (of 1) | 2 of 2 | 1.7× |"));
        assert!(text.contains(&format!(
            "| failed | failed | not reported | 0 of 2; failed: {CONNECTOR} | n/a |"
        )));
        assert!(text.contains("| 800.0 / 800.0 | 80 / 80 | not reported | 2 of 2 | 66.7× |"));
        assert!(text.contains(
            "- Tracked service killed on the master to a connection the peer serves, vipd at the \
             fastest adverts, every tracker (a connection every 10 ms) < 50 ms: met (20 ms; \
             process tracker max 12 ms over 2 runs; tcp tracker max 20 ms over 2 runs)."
        ), "{text}");
        assert!(
            text.contains(
                "- Tracked service killed on the master: keepalived's best median over vipd's best \
             median > 1.0 ×: met (66.7 ×; vipd's best: process tracker 12 ms; keepalived's \
             best: `vrrp_script` 800 ms; keepalived `vrrp_track_process` measured in none of \
             2 runs (why: its row))."
            ),
            "{text}"
        );
        // The fastest timing is listed for the tracker runs even without outage runs.
        let mut r = results(None, None);
        r.outages = None;
        assert!(render(&r).contains("| fastest | 0, 2 / 6 |"));
    }

    #[test]
    fn a_failed_vipd_run_misses_and_a_missing_keepalived_is_not_measured() {
        let mut r = results(None, None);
        let rows = r.trackers.as_mut().unwrap();
        rows[1]
            .errors
            .push("vipd on node 1 is FAULT instead of MASTER".into());
        rows[3] = tracker_row(
            Tracking::KeepalivedScript,
            &[],
            &[],
            &[],
            &["no connection"],
        );
        let text = render(&r);
        assert!(text.contains(
            "every tracker (a connection every 10 ms) < 50 ms: **missed** (20 ms; process tracker \
             max 12 ms over 2 runs; tcp tracker max 20 ms over 2 runs; tcp tracker failed in 1 of \
             3 runs: vipd on node 1 is FAULT instead of MASTER)."
        ), "{text}");
        assert!(text.contains(
            "over vipd's best median > 1.0 ×: not measured (vipd's best: process tracker 12 ms;"
        ));
        assert!(
            text.contains("keepalived `vrrp_script` measured in none of 1 run (why: its row)).")
        ); // Failures before the kill are shown with the run.
        let mut r = results(None, None);
        r.trackers.as_mut().unwrap()[0].failed_before = vec![0, 3];
        assert!(
            render(&r)
                .contains("| 2 of 2; 3 attempts failed in the 500 ms before the kill | 1.0× |")
        );
    }

    #[test]
    fn the_report_says_only_what_the_run_measured() {
        let text = render(&results(None, None));
        // No cause the run did not measure.
        for unmeasured in [
            "veth",
            "CPUs were",
            "SCHED_FIFO",
            "scheduler tick",
            "offload",
        ] {
            assert!(!text.contains(unmeasured), "{unmeasured:?} in\n{text}");
        }
        assert!(text.contains("Node 1's link kind (`ip -d link`): not measured."));
        assert!(text.contains("`last_own_flip_us` | not measured |"));
        assert!(text.contains("keepalived (version not measured)"));
        assert!(text.contains("| vipd | 3 | 20.0 | not measured |"));
        assert!(text.contains("- Spurious transitions while the master's link is flooded ≤ 0 transitions: **missed** (3 transitions; the master's advertisements left up to 20.0 ms late; the backup's margin, master-down − interval, is 15.6 ms)."));
        // Goals whose scenario did not run are not judged.
        assert!(
            text.contains(
                "adverts 1 s ≤ 3441 ms (the backup's master-down + 50 ms): not measured."
            )
        );
        assert!(
            text.contains(
                "- XDP cost of a passed-through packet (TCP SYN) < 50.0 ns: met (27.0 ns)."
            )
        );
    }

    #[test]
    fn measured_conditions_are_reported() {
        let cpu = CpuLoad {
            busy_pct: 99.6,
            softirq_pct: 61.0,
            cpus: 2,
        };
        let mut r = results(Some(cpu), Some("veth"));
        let outages = r.outages.as_mut().unwrap();
        outages[0].flip_us = vec![8.0, 12.0];
        outages[0].handoff_ms = vec![0.2, 0.3];
        let text = render(&r);
        assert!(
            text.contains(
                "the machine's 2 CPUs were 100 % busy, 61 % in softirq, during the flood"
            )
        );
        assert!(text.contains("| vipd | 3 | 20.0 | 100 (61) of 2 CPUs |"));
        assert!(text.contains("Node 1's link kind (`ip -d link`): `veth`."));
        assert!(text.contains("link kind `veth`"));
        assert!(text.contains("`last_own_flip_us` | 12.0 / 12.0 (of 2) |"));
        assert!(text.contains("`last_demote_at_unix_us` | 0.30 / 0.30 (of 2) |"));
    }

    #[test]
    fn every_mode_is_reported_side_by_side_and_the_default_is_judged() {
        let text = render(&results(None, Some("veth")));
        assert!(text.contains(
            "| none | nothing (checked before each run) | 100 (reference; its runs 100.0–100.0 % of their median) | 10.00 (10.00–10.00) | 2 of 2 | | |"
        ));
        assert!(text.contains(
            "| default (no `--xdp-mode`) | `tc` | 97.0 (95.0–97.0) | 9.70 (9.50–9.70) | 2 of 2 | 6 / 6 (6) | every run |"
        ));
        assert!(text.contains("| `--xdp-mode native` | `xdp-native` | 32.0 (30.0–32.0) |"));
        assert!(text.contains("| `--xdp-mode generic` | `xdp-generic` | 90.0 (88.0–90.0) |"));
        assert!(text.contains("| `--xdp-mode tc` | `tc` | 99.0 (96.0–99.0) |"));
        assert!(text.contains(
            "- iperf3 throughput with vipd as started by default (no `--xdp-mode`), of that \
             without vipd ≥ 98.0 %: **missed** (97.0 %; median of 2 runs, 95.0–97.0 %; attached \
             as `tc` (`vipd status`); runs without vipd 100.0–100.0 % of their median; link \
             kind `veth`; advertisements reached the daemon in every run (6 accepted of 6 \
             sent))."
        ));
        assert!(!text.contains("native XDP (its default)"));
    }

    #[test]
    fn a_mode_whose_advertisements_stopped_is_a_failed_row_and_a_missed_goal() {
        let mut r = results(None, Some("veth"));
        let tp = r.throughput.as_mut().unwrap();
        for run in &mut tp.runs {
            if let Ok(s) = &mut run.outcome {
                s.gbps = 10.0;
                if run.mode == XdpMode::Default && run.round == 1 {
                    s.adverts = adverts(3, 0);
                }
            }
        }
        tp.runs[2].outcome = Err("vipd on node 1 did not settle as BACKUP".into());
        let text = render(&r);
        assert!(text.contains(
            "| default (no `--xdp-mode`) | `tc` | 100.0 (100.0–100.0) | 10.00 (10.00–10.00) | 2 of 2 | 3 / 6 (3) | **failed** in 1 of 2 runs: no advertisement reached the daemon (0 accepted, 0 handed over, 3 sent) |"
        ));
        assert!(text.contains(
            "| `--xdp-mode generic` | `xdp-generic` | 100.0 (100.0–100.0) | 10.00 (10.00–10.00) | 1 of 2 | 3 / 3 (3) | **failed** in 1 of 2 runs: vipd on node 1 did not settle as BACKUP |"
        ));
        assert!(text.contains(
            "of that without vipd ≥ 98.0 %: **missed** (100.0 %; median of 2 runs, 100.0–100.0 %; \
             attached as `tc` (`vipd status`); runs without vipd 100.0–100.0 % of their median; \
             link kind `veth`; failed in 1 of 2 runs: no \
             advertisement reached the daemon (0 accepted, 0 handed over, 3 sent))."
        ));
    }

    #[test]
    fn a_case_a_system_cannot_run_says_so_instead_of_failed() {
        let case = Case {
            failure: Failure::Graceful,
            speed: Speed::Normal,
            interval: Duration::from_millis(10),
            unicast: true,
        };
        let mut r = results(None, None);
        let rows = r.outages.as_mut().unwrap();
        rows.push(row(case, Sys::Vipd, &[4.0, 6.0], &[], &[]));
        rows.push(row(case, Sys::Ucarp, &[], &[], &[]));
        rows.push(row(case, Sys::Keepalived, &[600.0, 610.0], &[], &[]));
        let text = render(&r);
        assert!(text.contains(
            "| graceful hand-off, adverts 1 s to unicast peers (no multicast), probe every 10 ms \
             | 6 / 6 (lost ≤0, owners 1) | not run: ucarp has no unicast mode \
             | 610 / 610 (lost ≤0, owners 1) | n/a | 101.7× |"
        ), "{text}");
    }

    #[test]
    fn every_system_states_how_its_hand_off_was_triggered() {
        let text = render(&results(None, None));
        assert!(text.contains(
            "| graceful hand-off | `vipd demote --all` on the master | SIGUSR2 to the master's ucarp | SIGTERM to the master's keepalived |"
        ));
        assert!(text.contains("| master link down | `ip link set eth0 down` on the master |"));
        assert!(text.contains("| graceful hand-off, adverts 1 s, probe every 10 ms | 5 / 5 (lost ≤0, owners 1) | 3410 / 3410 (lost ≤0, owners 1) | failed | 682.0× | n/a |"));
    }

    #[test]
    fn a_partial_run_shows_only_its_scenarios_and_their_goals() {
        let full = render(&results(None, None));
        assert!(!full.contains("`--only`"));
        let mut r = results(None, None);
        (r.outages, r.floods, r.throughput, r.scales) = (None, None, None, None);
        r.trackers = None;
        r.drain = None;
        assert!(!r.complete());
        let text = render(&r);
        assert!(text.contains("This run measured only: xdp (`--only`)."));
        assert!(text.contains("| XDP pass-through (TCP SYN), ns/packet | 27.0 |"));
        assert!(text.contains("XDP cost of a passed-through packet (TCP SYN) < 50.0 ns: met"));
        for absent in [
            "## Client-visible outage",
            "## False failovers",
            "## Throughput",
            "## Scale",
            "| adverts |",
            "Each outage figure",
            "last_own_flip_us",
            "Probes lost",
            "Spurious transitions",
            "iperf3",
            "groups on one interface",
            "Service killed",
            "| fastest |",
        ] {
            assert!(!text.contains(absent), "{absent:?} in\n{text}");
        }
    }

    #[test]
    fn readme_summary_replaces_only_the_marked_block() {
        let dir = std::env::temp_dir().join(format!("vipd-readme-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("README.md");
        std::fs::write(
            &path,
            format!("intro\n{SUMMARY_BEGIN}\nold table\n{SUMMARY_END}\nlayout\n"),
        )
        .unwrap();
        let report = "# vipd benchmark report\n\nintro\n\n## Client-visible outage (ms)\n\n| a |\n\n## Data plane\n\n| x |\n\n## Throughput by ingress mode (s)\n\n| t |\n\n## Goals\n\n- met\n";
        update_readme(&path, report).unwrap();
        update_readme(&path, report).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(text.starts_with("intro\n") && text.ends_with(&format!("{SUMMARY_END}\nlayout\n")));
        assert!(!text.contains("old table") && !text.contains("Data plane"));
        assert_eq!(text.matches("#### Client-visible outage (ms)").count(), 1);
        assert!(text.contains("| a |") && text.contains("#### Goals\n\n- met\n"));
        assert!(text.contains("#### Throughput by ingress mode (s)\n\n| t |\n"));
    }
}
