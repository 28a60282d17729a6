//! vipd's goals, as data: what is measured, the comparison, the threshold and its unit.
//! [`judge`] reads each goal's figure from a run's results; a goal the run did not
//! measure is reported as such, never as met, and a goal whose scenario did not run is
//! left out.
use super::report::best;
use super::scenarios::{OutageRow, SCALE_GROUPS};
use super::service::{self, TrackerRow};
use super::stats::{max, median, min};
use super::systems::{Failure, Speed, Sys, XdpMode};
use super::{Results, Scenario};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    AtMost,
    Below,
    AtLeast,
    Above,
}

impl Cmp {
    /// Whether `value` meets `threshold`; NaN never does.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Cmp::AtMost => value <= threshold,
            Cmp::Below => value < threshold,
            Cmp::AtLeast => value >= threshold,
            Cmp::Above => value > threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::AtMost => "≤",
            Cmp::Below => "<",
            Cmp::AtLeast => "≥",
            Cmp::Above => ">",
        }
    }
}

/// Which figure of a run a goal is judged on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Most probes vipd lost in any graceful hand-off.
    GracefulLost,
    /// vipd's longest outage with the master's link down, adverts 1 s.
    LinkDownNormal,
    /// vipd's longest outage with the master's link down, fastest adverts, at the finest
    /// probe spacing measured.
    LinkDownFastest,
    /// vipd's spurious transitions under flood.
    FloodSpurious,
    /// XDP cost of a passed-through TCP SYN, ns.
    XdpPassThrough,
    /// iperf3 with vipd started without `--xdp-mode`, percent of without vipd (median of
    /// the runs' ratios to their round's run without vipd).
    ThroughputDefault,
    /// CPU of vipd's scale run, percent of one core.
    ScaleCpu,
    /// RSS of vipd's scale run, MB.
    ScaleRss,
    /// vipd's longest time, over its trackers, from the service's kill on the master to a
    /// connection the peer served.
    TrackerVipd,
    /// keepalived's best median time from the service's kill to a connection the peer
    /// served, over vipd's best.
    TrackerAhead,
    /// Most connections vipd's graceful hand-off reset in any run.
    DrainResets,
    /// vipd's longest stall of a connection across a graceful hand-off, ms.
    DrainStall,
}

impl Metric {
    /// The scenario that measures it.
    pub fn scenario(self) -> Scenario {
        match self {
            Metric::GracefulLost | Metric::LinkDownNormal | Metric::LinkDownFastest => {
                Scenario::Outages
            }
            Metric::FloodSpurious => Scenario::Floods,
            Metric::XdpPassThrough => Scenario::Xdp,
            Metric::ThroughputDefault => Scenario::Throughput,
            Metric::ScaleCpu | Metric::ScaleRss => Scenario::Scale,
            Metric::TrackerVipd | Metric::TrackerAhead => Scenario::Tracker,
            Metric::DrainResets | Metric::DrainStall => Scenario::Drain,
        }
    }
}

pub struct Goal {
    pub metric: Metric,
    /// What is measured.
    pub name: String,
    pub cmp: Cmp,
    pub threshold: f64,
    pub unit: &'static str,
    /// Decimals the threshold and the figure are shown with.
    pub decimals: usize,
    /// How the threshold follows from the configuration, when it does.
    pub basis: Option<&'static str>,
}

/// Slack allowed over the backup's master-down when the master's link goes down, ms.
const LINK_DOWN_SLACK_MS: f64 = 50.0;

pub fn goals() -> Vec<Goal> {
    let goal = |metric, name: &str, cmp, threshold, unit, decimals| Goal {
        metric,
        name: name.to_owned(),
        cmp,
        threshold,
        unit,
        decimals,
        basis: None,
    };
    vec![
        goal(
            Metric::GracefulLost,
            "Probes lost in a graceful hand-off, every interval and probe rate",
            Cmp::AtMost,
            0.0,
            "probes",
            0,
        ),
        Goal {
            basis: Some("the backup's master-down + 50 ms"),
            ..goal(
                Metric::LinkDownNormal,
                "Outage with the master's link down, adverts 1 s",
                Cmp::AtMost,
                Speed::Normal.master_down_ms() + LINK_DOWN_SLACK_MS,
                "ms",
                0,
            )
        },
        goal(
            Metric::LinkDownFastest,
            "Outage with the master's link down, fastest adverts",
            Cmp::AtMost,
            35.0,
            "ms",
            0,
        ),
        goal(
            Metric::FloodSpurious,
            "Spurious transitions while the master's link is flooded",
            Cmp::AtMost,
            0.0,
            "transitions",
            0,
        ),
        goal(
            Metric::XdpPassThrough,
            "XDP cost of a passed-through packet (TCP SYN)",
            Cmp::Below,
            50.0,
            "ns",
            1,
        ),
        goal(
            Metric::ThroughputDefault,
            "iperf3 throughput with vipd as started by default (no `--xdp-mode`), of that without vipd",
            Cmp::AtLeast,
            98.0,
            "%",
            1,
        ),
        goal(
            Metric::ScaleCpu,
            &format!("CPU of {SCALE_GROUPS} groups on one interface"),
            Cmp::Below,
            1.0,
            "% of one core",
            2,
        ),
        goal(
            Metric::ScaleRss,
            &format!("Memory (RSS) of {SCALE_GROUPS} groups on one interface"),
            Cmp::Below,
            30.0,
            "MB",
            1,
        ),
        goal(
            Metric::TrackerVipd,
            &format!(
                "Tracked service killed on the master to a connection the peer serves, vipd at \
                 the fastest adverts, every tracker (a connection every {} ms)",
                service::CONNECT_EVERY.as_millis()
            ),
            Cmp::Below,
            50.0,
            "ms",
            0,
        ),
        goal(
            Metric::TrackerAhead,
            "Tracked service killed on the master: keepalived's best median over vipd's best \
             median",
            Cmp::Above,
            1.0,
            "×",
            1,
        ),
        goal(
            Metric::DrainResets,
            &format!(
                "Connections reset by a graceful hand-off ({} connections, a line every {} ms, \
                 and a bulk stream)",
                super::drain::CONNECTIONS,
                super::drain::EVERY.as_millis()
            ),
            Cmp::AtMost,
            0.0,
            "connections",
            0,
        ),
        goal(
            Metric::DrainStall,
            "Longest stall of a connection across a graceful hand-off",
            Cmp::AtMost,
            50.0,
            "ms",
            0,
        ),
    ]
}

/// A goal's figure in a run, and the measured facts that go with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub value: f64,
    pub facts: Vec<String>,
    /// A condition of the measurement that failed: the goal is missed, whatever the
    /// figure.
    pub failed: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    NotMeasured,
}

pub struct Judged {
    pub goal: Goal,
    pub measured: Option<Measured>,
}

impl Judged {
    pub fn verdict(&self) -> Verdict {
        match &self.measured {
            None => Verdict::NotMeasured,
            Some(m) if m.failed.is_some() => Verdict::Missed,
            Some(m) if m.value.is_nan() => Verdict::NotMeasured,
            Some(m) if self.goal.cmp.holds(m.value, self.goal.threshold) => Verdict::Met,
            Some(_) => Verdict::Missed,
        }
    }
}

/// Every goal of the scenarios `r` ran, with its figure from `r`.
pub fn judge(r: &Results) -> Vec<Judged> {
    let ran = r.ran();
    goals()
        .into_iter()
        .filter(|goal| ran.contains(&goal.metric.scenario()))
        .map(|goal| Judged {
            measured: measure(goal.metric, r),
            goal,
        })
        .collect()
}

fn vipd_rows(
    r: &Results,
    failure: Failure,
    speed: Option<Speed>,
) -> impl Iterator<Item = &OutageRow> {
    r.outages.iter().flatten().filter(move |row| {
        row.sys == Sys::Vipd
            && row.case.failure == failure
            && speed.is_none_or(|s| row.case.speed == s)
            && !row.outage.is_empty()
    })
}

/// `n` and `noun`, plural unless `n` is 1.
fn plural(n: usize, noun: &str) -> String {
    match (n, noun.ends_with('s')) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{n} {noun}es"),
        (_, false) => format!("{n} {noun}s"),
    }
}

fn measure(metric: Metric, r: &Results) -> Option<Measured> {
    let fact = |value: f64, facts: Vec<String>| {
        Some(Measured {
            value,
            facts,
            failed: None,
        })
    };
    match metric {
        Metric::GracefulLost => {
            let rows: Vec<&OutageRow> = vipd_rows(r, Failure::Graceful, None).collect();
            let runs: usize = rows.iter().map(|row| row.lost.len()).sum();
            let lost = rows.iter().flat_map(|row| row.lost.iter().copied()).max()?;
            fact(
                lost as f64,
                vec![format!(
                    "max over {runs} runs in {}",
                    plural(rows.len(), "scenario")
                )],
            )
        }
        Metric::LinkDownNormal => {
            let row = vipd_rows(r, Failure::LinkDown, Some(Speed::Normal))
                .filter(|row| !row.case.unicast)
                .min_by_key(|row| row.case.interval)?;
            fact(
                max(&row.outage),
                vec![format!(
                    "max over {} runs, probes every {:.1} ms",
                    row.outage.len(),
                    median(&row.cadence)
                )],
            )
        }
        Metric::LinkDownFastest => {
            let mut rows: Vec<&OutageRow> =
                vipd_rows(r, Failure::LinkDown, Some(Speed::Fastest)).collect();
            rows.sort_by_key(|row| row.case.interval);
            let finest = rows.first()?;
            let facts = rows
                .iter()
                .map(|row| {
                    format!(
                        "max {:.0} ms over {} runs with probes every {:.1} ms",
                        max(&row.outage),
                        row.outage.len(),
                        median(&row.cadence)
                    )
                })
                .collect();
            fact(max(&finest.outage), facts)
        }
        Metric::FloodSpurious => {
            let f = r.floods.as_ref()?.iter().find(|f| f.sys == Sys::Vipd)?;
            let n = f.spurious?;
            let mut facts = vec![];
            if n > 0 {
                if let Some(d) = f.worst_delay_ms {
                    let margin = Speed::Fastest.master_down_ms() - Speed::Fastest.advert_ms();
                    facts.push(format!(
                        "the master's advertisements left up to {d:.1} ms late; the backup's \
                         margin, master-down − interval, is {margin:.1} ms"
                    ));
                }
                if let Some(c) = f.cpu {
                    facts.push(format!(
                        "the machine's {} CPUs were {:.0} % busy, {:.0} % in softirq, during the flood",
                        c.cpus, c.busy_pct, c.softirq_pct
                    ));
                }
            }
            fact(n as f64, facts)
        }
        Metric::XdpPassThrough => fact(r.xdp?.syn_ns, vec![]),
        Metric::ThroughputDefault => {
            let tp = r.throughput.as_ref()?;
            let sum = tp.summary(XdpMode::Default);
            if sum.runs == 0 {
                return None;
            }
            let mut facts = vec![];
            if !sum.ratios.is_empty() {
                facts.push(format!(
                    "median of {} runs, {:.1}–{:.1} %",
                    sum.ratios.len(),
                    min(&sum.ratios),
                    max(&sum.ratios)
                ));
            }
            if !sum.attached.is_empty() {
                facts.push(format!(
                    "attached as {} (`vipd status`)",
                    sum.attached
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
            if let Some((lo, hi)) = tp.without_spread() {
                facts.push(format!(
                    "runs without vipd {lo:.1}–{hi:.1} % of their median"
                ));
            }
            if let Some(kind) = &tp.link_kind {
                facts.push(format!("link kind `{kind}`"));
            }
            let failed = sum.failed().then(|| {
                format!(
                    "failed in {} of {} runs: {}",
                    sum.failures.len(),
                    sum.runs,
                    sum.failures[0]
                )
            });
            if failed.is_none() {
                facts.push(format!(
                    "advertisements reached the daemon in every run ({} accepted of {} sent)",
                    sum.adverts.received, sum.adverts.sent
                ));
            }
            Some(Measured {
                value: median(&sum.ratios),
                facts,
                failed,
            })
        }
        Metric::ScaleCpu | Metric::ScaleRss => {
            let s = r
                .scales
                .as_ref()?
                .iter()
                .find(|s| s.sys == Sys::Vipd)?
                .measured?;
            let value = match metric {
                Metric::ScaleCpu => s.cpu_pct,
                _ => s.rss_mb,
            };
            fact(value, vec![plural(s.processes, "process")])
        }
        Metric::TrackerVipd => {
            let rows: Vec<&TrackerRow> = r
                .trackers
                .as_ref()?
                .iter()
                .filter(|row| row.tracking.sys() == Sys::Vipd)
                .collect();
            let all: Vec<f64> = rows
                .iter()
                .flat_map(|row| row.recovery_ms.iter().copied())
                .collect();
            let facts = rows
                .iter()
                .filter(|row| !row.recovery_ms.is_empty())
                .map(|row| {
                    format!(
                        "{} max {:.0} ms over {}",
                        row.tracking.short(),
                        max(&row.recovery_ms),
                        plural(row.recovery_ms.len(), "run")
                    )
                })
                .collect();
            let failed = rows
                .iter()
                .filter_map(|row| {
                    let e = row.errors.first()?;
                    Some(format!(
                        "{} failed in {} of {}: {e}",
                        row.tracking.short(),
                        row.errors.len(),
                        plural(row.runs(), "run")
                    ))
                })
                .reduce(|a, b| format!("{a}; {b}"));
            Some(Measured {
                value: max(&all),
                facts,
                failed,
            })
        }
        Metric::TrackerAhead => {
            let rows = r.trackers.as_ref()?;
            let (v, k) = (best(rows, Sys::Vipd), best(rows, Sys::Keepalived));
            let mut facts = vec![];
            for (who, b) in [("vipd", v), ("keepalived", k)] {
                if let Some((m, row)) = b {
                    facts.push(format!("{who}'s best: {} {m:.0} ms", row.tracking.short()));
                }
            }
            for row in rows.iter().filter(|row| row.recovery_ms.is_empty()) {
                facts.push(format!(
                    "{} {} measured in none of {} (why: its row)",
                    row.tracking.sys().name(),
                    row.tracking.short(),
                    plural(row.runs(), "run"),
                ));
            }
            let value = match (v, k) {
                (Some((v, _)), Some((k, _))) if v > 0.0 => k / v,
                _ => f64::NAN,
            };
            fact(value, facts)
        }
        Metric::DrainResets | Metric::DrainStall => {
            let row = r.drain.as_ref()?.iter().find(|row| row.sys == Sys::Vipd)?;
            // A run in which no connection survived has no stall: it counts as missed.
            let values: Vec<f64> = match metric {
                Metric::DrainResets => row.resets.clone(),
                _ => row
                    .stall_ms
                    .iter()
                    .map(|v| if v.is_nan() { f64::INFINITY } else { *v })
                    .collect(),
            };
            if values.is_empty() {
                return None;
            }
            let (ok, tried) = row
                .opened
                .iter()
                .fold((0, 0), |(a, b), (o, t)| (a + o, b + t));
            let mut facts = vec![format!("max over {}", plural(values.len(), "run"))];
            facts.push(format!(
                "{ok} of {tried} connections opened during the hand-off answered"
            ));
            Some(Measured {
                value: max(&values),
                facts,
                failed: (ok < tried).then(|| {
                    format!(
                        "{} connections opened during the hand-off failed",
                        tried - ok
                    )
                }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_follow_the_goal_and_nan_never_holds() {
        assert!(Cmp::AtMost.holds(0.0, 0.0) && !Cmp::AtMost.holds(1.0, 0.0));
        assert!(!Cmp::Below.holds(50.0, 50.0) && Cmp::Below.holds(49.9, 50.0));
        assert!(Cmp::AtLeast.holds(98.0, 98.0) && !Cmp::AtLeast.holds(97.9, 98.0));
        for c in [Cmp::AtMost, Cmp::Below, Cmp::AtLeast] {
            assert!(!c.holds(f64::NAN, 1.0));
        }
    }

    #[test]
    fn link_down_threshold_is_master_down_plus_slack() {
        let g = goals();
        let link = g
            .iter()
            .find(|g| g.metric == Metric::LinkDownNormal)
            .unwrap();
        assert!((link.threshold - 3440.625).abs() < 1e-9);
        // Every metric is judged by exactly one goal.
        for (i, a) in g.iter().enumerate() {
            assert!(g[i + 1..].iter().all(|b| b.metric != a.metric));
        }
    }

    #[test]
    fn a_figure_not_measured_is_not_a_verdict() {
        let goal = goals().remove(0);
        let judged = |measured| Judged {
            goal: goals().remove(0),
            measured,
        };
        assert_eq!(goal.metric, Metric::GracefulLost);
        assert_eq!(judged(None).verdict(), Verdict::NotMeasured);
        let m = |value| {
            Some(Measured {
                value,
                facts: vec![],
                failed: None,
            })
        };
        assert_eq!(judged(m(f64::NAN)).verdict(), Verdict::NotMeasured);
        assert_eq!(judged(m(0.0)).verdict(), Verdict::Met);
        assert_eq!(judged(m(1.0)).verdict(), Verdict::Missed);
        // A failed condition misses the goal, whatever the figure, even when there is none.
        for value in [0.0, f64::NAN] {
            let failed = Measured {
                failed: Some("advertisements stopped".into()),
                ..m(value).unwrap()
            };
            assert_eq!(judged(Some(failed)).verdict(), Verdict::Missed);
        }
    }
}
