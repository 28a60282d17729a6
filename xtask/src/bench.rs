//! `cargo xtask bench`: vipd, ucarp and keepalived measured side by side in the same run on
//! the same kind of netns lab. Writes `bench/results/report.md` and SVG plots, and prints
//! the report. Every figure is a median and a max over the repetitions.
//!
//! - [`systems`]: how each system is started, shows who is MASTER and is made to fail over.
//! - [`scenarios`]: the measurements, each returning only what it measured.
//! - [`goals`]: vipd's goals as data, judged on a run's results.
//! - [`report`]: the Markdown report and the README summary; [`plot`]: the SVG plots.
//!
//! `--only` runs some of the [`Scenario`]s; the report then shows only what ran.
use std::path::Path;
use std::time::Instant;

use anyhow::Result;

mod drain;
mod goals;
mod plot;
mod report;
mod scenarios;
mod service;
mod stats;
mod systems;

use scenarios::{Flood, OutageRow, Scale, Throughput, XdpCost};
use service::TrackerRow;
use systems::{SYSTEMS, Sys};

/// The parts of a run, as `--only` names them, in the order a run measures them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// Client-visible outage of each failover case.
    Outages,
    /// Spurious transitions while the master's link is flooded.
    Floods,
    /// XDP cost per packet (BPF_PROG_TEST_RUN).
    Xdp,
    /// iperf3 throughput without vipd and with each ingress mode.
    Throughput,
    /// CPU and memory of many groups.
    Scale,
    /// The tracked service killed on the master: vipd's trackers beside keepalived's.
    Tracker,
    /// Established TCP connections and a bulk stream across a graceful hand-off.
    Drain,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::Outages,
        Scenario::Floods,
        Scenario::Xdp,
        Scenario::Throughput,
        Scenario::Scale,
        Scenario::Tracker,
        Scenario::Drain,
    ];

    /// How `--only` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Outages => "outages",
            Scenario::Floods => "floods",
            Scenario::Xdp => "xdp",
            Scenario::Throughput => "throughput",
            Scenario::Scale => "scale",
            Scenario::Tracker => "tracker",
            Scenario::Drain => "drain",
        }
    }
}

/// The scenarios a run measures: those `only` names, each once, in run order; every one
/// when `only` is empty.
pub fn selected(only: &[Scenario]) -> Vec<Scenario> {
    Scenario::ALL
        .into_iter()
        .filter(|s| only.is_empty() || only.contains(s))
        .collect()
}

/// Everything a run measured, and how it was run. A scenario that did not run is `None`.
pub struct Results {
    pub quick: bool,
    pub reps: usize,
    /// Each system's version on this machine, `None` if it could not be read.
    pub versions: Vec<(Sys, Option<String>)>,
    pub outages: Option<Vec<OutageRow>>,
    pub flood_secs: u64,
    pub floods: Option<Vec<Flood>>,
    pub xdp: Option<XdpCost>,
    pub throughput: Option<Throughput>,
    pub scale_secs: u64,
    pub scales: Option<Vec<Scale>>,
    pub trackers: Option<Vec<TrackerRow>>,
    pub drain: Option<Vec<drain::DrainRow>>,
}

impl Results {
    /// The scenarios this run measured.
    pub fn ran(&self) -> Vec<Scenario> {
        Scenario::ALL
            .into_iter()
            .filter(|s| match s {
                Scenario::Outages => self.outages.is_some(),
                Scenario::Floods => self.floods.is_some(),
                Scenario::Xdp => self.xdp.is_some(),
                Scenario::Throughput => self.throughput.is_some(),
                Scenario::Scale => self.scales.is_some(),
                Scenario::Tracker => self.trackers.is_some(),
                Scenario::Drain => self.drain.is_some(),
            })
            .collect()
    }

    /// Whether every scenario ran.
    pub fn complete(&self) -> bool {
        self.ran().len() == Scenario::ALL.len()
    }
}

pub fn run(root: &Path, vipd: &Path, quick: bool, only: &[Scenario]) -> Result<()> {
    // SAFETY: set before any lab exists; read by the lab builder only.
    unsafe { std::env::set_var("VIPD_BIN", vipd) };
    let reps = if quick { 2 } else { 5 };
    let out_dir = root.join("bench/results");
    std::fs::create_dir_all(&out_dir)?;
    let clock = Instant::now();
    let run = selected(only);
    let runs = |s: Scenario| run.contains(&s);

    let versions = SYSTEMS.map(|sys| (sys, sys.version(vipd))).to_vec();
    let outages =
        runs(Scenario::Outages).then(|| scenarios::outages(&scenarios::cases(quick), reps, &clock));
    let flood_secs = if quick { 10 } else { 60 };
    let floods = runs(Scenario::Floods).then(|| scenarios::floods(flood_secs, &clock));
    let xdp = if runs(Scenario::Xdp) {
        eprintln!("==> XDP cost (BPF_PROG_TEST_RUN)");
        Some(scenarios::xdp_cost(if quick {
            1_000_000
        } else {
            10_000_000
        })?)
    } else {
        None
    };
    let throughput = if runs(Scenario::Throughput) {
        eprintln!("==> iperf3 throughput without vipd and with vipd in each ingress mode");
        Some(scenarios::throughput(
            if quick { 3 } else { 10 },
            if quick { 3 } else { 5 },
            &clock,
        )?)
    } else {
        None
    };
    let scale_secs = if quick { 15 } else { 60 };
    let scales = runs(Scenario::Scale).then(|| scenarios::scales(scale_secs, &clock));
    let trackers = runs(Scenario::Tracker).then(|| service::trackers(reps, &clock));
    let drain = runs(Scenario::Drain).then(|| drain::drains(reps.min(3), &clock));

    let results = Results {
        quick,
        reps,
        versions,
        outages,
        flood_secs,
        floods,
        xdp,
        throughput,
        scale_secs,
        scales,
        trackers,
        drain,
    };
    let report = report::render(&results);
    std::fs::write(out_dir.join("report.md"), &report)?;
    // The README's summary is a full run's: every scenario, every repetition.
    if !quick && results.complete() {
        report::update_readme(&root.join("README.md"), &report)?;
    }
    if let Some(outages) = &results.outages {
        plot::outages(outages, &out_dir.join("outage.svg"))?;
    }
    if let Some(scales) = &results.scales {
        plot::scale(scales, &out_dir.join("scale.svg"))?;
    }
    println!("{report}");
    eprintln!(
        "==> report written to {}",
        out_dir.join("report.md").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selects_named_scenarios_in_run_order() {
        assert_eq!(selected(&[]), Scenario::ALL);
        assert_eq!(
            selected(&[Scenario::Scale, Scenario::Outages, Scenario::Scale]),
            [Scenario::Outages, Scenario::Scale]
        );
        for s in Scenario::ALL {
            use clap::ValueEnum as _;
            assert_eq!(Scenario::from_str(s.name(), false), Ok(s));
        }
    }
}
