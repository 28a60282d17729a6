//! `cargo xtask bench`: vipd, ucarp and keepalived measured side by side in the same run on
//! the same kind of netns lab. Writes `bench/results/report.md` and SVG plots, and prints
//! the report. Every figure is a median and a max over the repetitions.
//!
//! - [`systems`]: how each system is started, shows who is MASTER and is made to fail over.
//! - [`scenarios`]: the measurements, each returning only what it measured.
//! - [`goals`]: vipd's goals as data, judged on a run's results.
//! - [`report`]: the Markdown report and the README summary; [`plot`]: the SVG plots.
use std::path::Path;
use std::time::Instant;

use anyhow::Result;

mod goals;
mod plot;
mod report;
mod scenarios;
mod stats;
mod systems;

use scenarios::{Flood, OutageRow, Scale, Throughput, XdpCost};
use systems::{SYSTEMS, Sys};

/// Everything a run measured, and how it was run.
pub struct Results {
    pub quick: bool,
    pub reps: usize,
    /// Each system's version on this machine, `None` if it could not be read.
    pub versions: Vec<(Sys, Option<String>)>,
    pub outages: Vec<OutageRow>,
    pub flood_secs: u64,
    pub floods: Vec<Flood>,
    pub xdp: XdpCost,
    pub throughput: Throughput,
    pub scale_secs: u64,
    pub scales: Vec<Scale>,
}

pub fn run(root: &Path, vipd: &Path, quick: bool) -> Result<()> {
    // SAFETY: set before any lab exists; read by the lab builder only.
    unsafe { std::env::set_var("VIPD_BIN", vipd) };
    let reps = if quick { 2 } else { 5 };
    let out_dir = root.join("bench/results");
    std::fs::create_dir_all(&out_dir)?;
    let clock = Instant::now();

    let versions = SYSTEMS.map(|sys| (sys, sys.version(vipd))).to_vec();
    let outages = scenarios::outages(&scenarios::cases(quick), reps, &clock);
    let flood_secs = if quick { 10 } else { 60 };
    let floods = scenarios::floods(flood_secs, &clock);
    eprintln!("==> XDP cost (BPF_PROG_TEST_RUN)");
    let xdp = scenarios::xdp_cost(if quick { 1_000_000 } else { 10_000_000 })?;
    eprintln!("==> iperf3 throughput without vipd and with vipd in each ingress mode");
    let throughput = scenarios::throughput(
        if quick { 3 } else { 10 },
        if quick { 3 } else { 5 },
        &clock,
    )?;
    let scale_secs = if quick { 15 } else { 60 };
    let scales = scenarios::scales(scale_secs, &clock);

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
    };
    let report = report::render(&results);
    std::fs::write(out_dir.join("report.md"), &report)?;
    if !quick {
        report::update_readme(&root.join("README.md"), &report)?;
    }
    plot::outages(&results.outages, &out_dir.join("outage.svg"))?;
    plot::scale(&results.scales, &out_dir.join("scale.svg"))?;
    println!("{report}");
    eprintln!(
        "==> report written to {}",
        out_dir.join("report.md").display()
    );
    Ok(())
}
