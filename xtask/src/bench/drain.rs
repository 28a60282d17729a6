//! Established connections across a graceful hand-off: a TCP echo service runs on both
//! nodes (bound to 0.0.0.0, answering each line with its node's name), the client holds
//! [`CONNECTIONS`] connections to the VIP that each exchange a line every [`EVERY`] and one
//! bulk stream, and the master hands over as each system does it gracefully (vipd
//! `demote`, ucarp SIGUSR2, keepalived stopped). The figures: connections reset, the
//! longest stall of any connection, the bulk stream's lowest 100 ms throughput, and how
//! many connections opened during the hand-off succeeded.
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vipd_tests::tcp::{Bulk, Chatter, EchoServer, who_answers};
use vipd_tests::{Lab, VIP};

use super::stats::{max, median, min};
use super::systems::{self, Failure, SYSTEMS, Speed, Sys};

/// Long-lived connections that talk during the hand-off.
pub const CONNECTIONS: usize = 100;
/// How often each sends a line (and waits for its answer).
pub const EVERY: Duration = Duration::from_millis(10);
/// The bulk stream's throughput window.
pub const WINDOW: Duration = Duration::from_millis(100);
/// Talking before the hand-off, and after it.
const BEFORE: Duration = Duration::from_secs(2);
const AFTER: Duration = Duration::from_secs(3);
/// New connections are opened this often, from the hand-off for [`OPENING`].
const OPEN_EVERY: Duration = Duration::from_millis(20);
const OPENING: Duration = Duration::from_secs(1);

/// One system's runs.
#[derive(Clone, Debug)]
pub struct DrainRow {
    pub sys: Sys,
    /// Connections reset (or otherwise broken) per run, of the long-lived ones and the
    /// bulk stream.
    pub resets: Vec<f64>,
    /// The longest time between two answers on any long-lived connection that survived,
    /// per run, ms (the send spacing included).
    pub stall_ms: Vec<f64>,
    /// The bulk stream's lowest throughput over a 100 ms window from the hand-off to the
    /// end, per run, Mbit/s (0 when the stream broke).
    pub bulk_min_mbps: Vec<f64>,
    /// The bulk stream's median throughput over 100 ms windows before the hand-off, Mbit/s.
    pub bulk_median_mbps: Vec<f64>,
    /// Connections opened during the hand-off: (succeeded, attempted), per run.
    pub opened: Vec<(usize, usize)>,
    /// Runs that could not be measured, with why.
    pub errors: Vec<String>,
    /// What broke the first connection that broke, in the first run where one did.
    pub first_reset: Option<String>,
}

/// Every system, `reps` runs each.
pub fn drains(reps: usize, clock: &Instant) -> Vec<DrainRow> {
    SYSTEMS
        .iter()
        .map(|&sys| {
            let mut row = DrainRow {
                sys,
                resets: vec![],
                stall_ms: vec![],
                bulk_min_mbps: vec![],
                bulk_median_mbps: vec![],
                opened: vec![],
                errors: vec![],
                first_reset: None,
            };
            for rep in 0..reps {
                eprintln!(
                    "==> [{:>5.0}s] connections across a graceful hand-off: {} run {}/{reps}",
                    clock.elapsed().as_secs_f64(),
                    sys.name(),
                    rep + 1
                );
                match run(sys) {
                    Ok(r) => {
                        row.resets.push(r.resets as f64);
                        row.stall_ms.push(r.stall_ms);
                        row.bulk_min_mbps.push(r.bulk_min_mbps);
                        row.bulk_median_mbps.push(r.bulk_median_mbps);
                        row.opened.push(r.opened);
                        row.first_reset = row.first_reset.take().or(r.first_reset);
                    }
                    Err(e) => row.errors.push(format!("{e:#}")),
                }
            }
            row
        })
        .collect()
}

struct Run {
    resets: usize,
    stall_ms: f64,
    bulk_min_mbps: f64,
    bulk_median_mbps: f64,
    opened: (usize, usize),
    first_reset: Option<String>,
}

fn run(sys: Sys) -> Result<Run> {
    let mut lab = Lab::new("bdrain", 2)?;
    let _servers: Vec<EchoServer> = (0..2)
        .map(|i| EchoServer::start(&lab.nodes[i], &format!("n{}", i + 1)))
        .collect::<Result<_>>()?;
    let master = systems::start(&mut lab, sys, 0, Speed::Normal)?;
    let backup = systems::start(&mut lab, sys, 1, Speed::Normal)?;
    if !Lab::wait_for(Duration::from_secs(8), || {
        systems::is_master(&lab, sys, 0, &master.events)
    }) {
        bail!("node 1 never became MASTER");
    }
    // The backup settles too (ucarp and keepalived log BACKUP/down at start).
    std::thread::sleep(Duration::from_millis(500));
    let chat = Chatter::start(&lab.client, VIP, CONNECTIONS, EVERY).context("connections")?;
    let bulk = Bulk::start(&lab.client, VIP, WINDOW).context("bulk stream")?;
    std::thread::sleep(BEFORE);
    let started = Instant::now();
    systems::cause(&mut lab, sys, Failure::Graceful, &master)?;
    // New connections during the hand-off: each must be answered by a node.
    let client = lab.client.clone();
    let opener = std::thread::spawn(move || {
        let (mut ok, mut tried) = (0, 0);
        let start = Instant::now();
        while start.elapsed() < OPENING {
            tried += 1;
            if who_answers(&client, VIP).is_ok() {
                ok += 1;
            }
            std::thread::sleep(OPEN_EVERY);
        }
        (ok, tried)
    });
    let handed = Lab::wait_for(Duration::from_secs(5), || {
        systems::is_master(&lab, sys, 1, &backup.events)
    });
    let rest = AFTER.saturating_sub(started.elapsed());
    std::thread::sleep(rest);
    let opened = opener.join().unwrap_or((0, 0));
    let reports = chat.finish();
    let (samples, bulk_error) = bulk.finish();
    if !handed {
        bail!("node 2 never became MASTER");
    }
    let mbps: Vec<f64> = samples
        .iter()
        .map(|b| *b as f64 * 8.0 / WINDOW.as_secs_f64() / 1e6)
        .collect();
    // The bulk stream is broken when it failed, or when it sent nothing in its last second
    // (a stream whose peer vanished stalls instead of failing).
    let last_second = (1.0 / WINDOW.as_secs_f64()) as usize;
    let stalled =
        mbps.len() >= last_second && mbps.iter().rev().take(last_second).all(|m| *m == 0.0);
    let bulk_broken = bulk_error.is_some() || stalled;
    let resets = reports.iter().filter(|r| r.reset()).count() + usize::from(bulk_broken);
    // NaN when no connection survived.
    let stall_ms = reports
        .iter()
        .filter(|r| !r.reset())
        .map(|r| r.longest_stall.as_secs_f64() * 1e3)
        .fold(f64::NAN, f64::max);
    let first_reset = reports
        .iter()
        .find(|r| r.reset())
        .map(|r| {
            format!(
                "{} (after {} answers)",
                r.error.clone().unwrap_or_default(),
                r.answered
            )
        })
        .or(bulk_error.clone().map(|e| format!("bulk: {e}")))
        .or(stalled.then(|| "bulk: nothing sent in its last second".to_owned()));
    // The windows before the hand-off, and from it on (the stream started BEFORE earlier).
    let skip = (BEFORE.as_secs_f64() / WINDOW.as_secs_f64()) as usize;
    let before: Vec<f64> = mbps.iter().take(skip).copied().collect();
    let after: Vec<f64> = mbps.iter().skip(skip).copied().collect();
    let bulk_min_mbps = if bulk_broken || after.is_empty() {
        0.0
    } else {
        min(&after)
    };
    Ok(Run {
        resets,
        stall_ms,
        bulk_min_mbps,
        bulk_median_mbps: if before.is_empty() {
            0.0
        } else {
            median(&before)
        },
        opened,
        first_reset,
    })
}

/// The report's section.
pub fn section(s: &mut String, rows: &[DrainRow]) {
    let _ = writeln!(
        s,
        "\n## Connections across a graceful hand-off ({CONNECTIONS} connections, a line every {} ms, one bulk stream)\n",
        EVERY.as_millis()
    );
    let _ = writeln!(
        s,
        "Both nodes run a TCP echo service bound to 0.0.0.0 that answers each line with its \
         node's name. The client holds {CONNECTIONS} connections to the VIP, each sending a \
         line every {} ms and waiting for its answer, and one bulk stream sending as fast as \
         it can; {} s later the master hands over ({}; {}; {}), adverts 1 s. From then on the \
         client opens a new connection every {} ms for {} s (each must be answered), and all \
         talk {} s in all from the hand-off. Resets: connections that broke (reset, or no \
         answer within 5 s), of the {CONNECTIONS} and the bulk stream (broken when it \
         failed or sent nothing in its last second). Longest stall: the \
         longest time between two answers on a connection that survived, the {} ms spacing \
         included. Bulk: its lowest 100 ms window from the hand-off on (0 when it broke), \
         beside its median before the hand-off. Median / max over the runs (min for throughput).\n",
        EVERY.as_millis(),
        BEFORE.as_secs(),
        Sys::Vipd.trigger(Failure::Graceful),
        Sys::Ucarp.trigger(Failure::Graceful),
        Sys::Keepalived.trigger(Failure::Graceful),
        OPEN_EVERY.as_millis(),
        OPENING.as_secs(),
        AFTER.as_secs(),
        EVERY.as_millis(),
    );
    let _ = writeln!(
        s,
        "| system | connections reset | longest stall, ms | bulk lowest 100 ms, Mbit/s | bulk median before, Mbit/s | new connections during the hand-off | runs |\n|---|---|---|---|---|---|---|"
    );
    for row in rows {
        let cell = |v: &[f64], d: usize| {
            if v.is_empty() {
                "failed".to_owned()
            } else {
                format!("{:.d$} / {:.d$}", median(v), max(v))
            }
        };
        let low = |v: &[f64]| {
            if v.is_empty() {
                "failed".to_owned()
            } else {
                format!("{:.0} (min {:.0})", median(v), min(v))
            }
        };
        let (ok, tried): (usize, usize) = row
            .opened
            .iter()
            .fold((0, 0), |(a, b), (o, t)| (a + o, b + t));
        let stalls: Vec<f64> = row
            .stall_ms
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        let stall = if stalls.is_empty() && !row.stall_ms.is_empty() {
            "none survived".to_owned()
        } else {
            cell(&stalls, 0)
        };
        let mut runs = row.resets.len().to_string();
        if let Some(e) = &row.first_reset {
            let _ = write!(runs, "; first broken: {e}");
        }
        if let Some(e) = row.errors.first() {
            let _ = write!(runs, " ({} failed: {e})", row.errors.len());
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {ok} of {tried} | {runs} |",
            row.sys.name(),
            cell(&row.resets, 0),
            stall,
            low(&row.bulk_min_mbps),
            low(&row.bulk_median_mbps),
        );
    }
}
