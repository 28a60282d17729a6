//! Reloading the configuration (SIGHUP, `vipd reload`): the plan of
//! [`crate::protocol::reload`] carried out through the effects boundary, and the groups it
//! removed taken out once they handed over.
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tracing::{info, warn};

use super::build::{attach, links_of, member, params_of, register, source_of};
use super::effects::Effects;
use super::{Daemon, Options, TrackerReport};
use crate::config::{Config, GroupConfig, Vip};
use crate::kernel::netlink::LinkInfo;
use crate::ops::state;
use crate::protocol::reload::{self as plan, GroupKey, key_of};
use crate::trackers::{TrackerConfig, TrackerEvent};

/// The trackers running now, and where their reports arrive.
pub(super) struct Trackers {
    pub(super) configs: Vec<TrackerConfig>,
    pub(super) events: Option<tokio::sync::mpsc::Receiver<TrackerEvent>>,
}

impl Trackers {
    pub(super) fn start(configs: Vec<TrackerConfig>) -> Result<Trackers> {
        let events = if configs.is_empty() {
            None
        } else {
            Some(crate::trackers::spawn(configs.clone()).context("starting the trackers")?)
        };
        Ok(Trackers { configs, events })
    }
}

/// Reads the configuration file again and applies it (SIGHUP, `vipd reload`); returns what
/// changed. Everything that can fail is checked first: an unreadable or invalid file, a
/// missing interface, a wrong source address or a tracker that cannot start change
/// nothing.
pub(super) async fn reload<E: Effects>(
    d: &mut Daemon<E>,
    opts: &Options,
    trackers: &mut Trackers,
    demotions: &Path,
) -> Result<String> {
    let Some(path) = &opts.config_file else {
        bail!(
            "vipd was started with ucarp flags: there is no configuration file to read \
             again; restart it with the new flags"
        );
    };
    if d.reloading() {
        bail!(
            "the previous reload is still handing over the groups it removed; try again once they are gone"
        );
    }
    let config = Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let running: Vec<&GroupConfig> = d.members.iter().map(|m| &m.cfg).collect();
    let plan = plan::plan(
        &running,
        &trackers.configs,
        &config.groups,
        &config.trackers,
    );
    // Checks: every new group's link and source address.
    let starting: Vec<GroupConfig> = plan.add.iter().chain(&plan.replace).cloned().collect();
    let links = links_of(&mut d.fx, &starting).await?;
    let mut sources = HashMap::new();
    for g in &starting {
        let src = source_of(&mut d.fx, g, &links[&g.interface]).await?;
        params_of(g, src)
            .validate()
            .with_context(|| format!("{}/vhid{}", g.interface, g.vhid))?;
        sources.insert(key_of(g), src);
    }
    let restarted = if plan.trackers_changed {
        Some(Trackers::start(config.trackers.clone())?)
    } else {
        None
    };
    // New links get the programs (their VIPs are all "not owned" until a group owns them).
    for (name, link) in &links {
        if !d.fx.attached(link.index) {
            let status = attach(&mut d.fx, name, link, opts)?;
            d.interfaces.push(status);
        }
    }
    for w in &config.warnings {
        warn!("{w}");
    }
    let now = Instant::now();
    if let Some(t) = restarted {
        *trackers = t;
        d.trackers = trackers
            .configs
            .iter()
            .map(|t| (t.name.clone(), TrackerReport::default()))
            .collect();
    }
    let position =
        |d: &Daemon<E>, key: &GroupKey| d.members.iter().position(|m| key_of(&m.cfg) == *key);
    for g in plan.update.iter().cloned() {
        if let Some(i) = position(d, &key_of(&g)) {
            d.update(i, g, now).await;
        }
    }
    for key in &plan.remove {
        if let Some(i) = position(d, key) {
            d.retire(i, now).await;
        }
    }
    for g in plan.replace.iter().cloned() {
        let key = key_of(&g);
        if let Some(i) = position(d, &key) {
            d.retire(i, now).await;
        }
        let link = links[&g.interface].clone();
        d.pending.push((g, link, sources[&key]));
    }
    for g in plan.add.iter().cloned() {
        let link = links[&g.interface].clone();
        let src = sources[&key_of(&g)];
        // A VIP that moves from a group being removed starts once that one has gone.
        if d.blocks(&g, link.index) {
            d.pending.push((g, link, src));
        } else {
            start_group(d, g, link, src, demotions).await?;
        }
    }
    settle(d, demotions).await;
    Ok(plan.summary())
}

/// Registers, adds and starts one group; a group demoted before stays demoted.
async fn start_group<E: Effects>(
    d: &mut Daemon<E>,
    g: GroupConfig,
    link: LinkInfo,
    src: Ipv4Addr,
    demotions: &Path,
) -> Result<()> {
    register(&mut d.fx, link.index, &g, src)?;
    let key = (g.interface.clone(), g.vhid);
    let links = HashMap::from([(g.interface.clone(), link.clone())]);
    let m = member(&mut d.fx, g, &links, src, Instant::now()).await?;
    d.add(m, link.running, Instant::now()).await;
    if state::load_demotions(demotions).contains(&key) {
        let i = d.members.len() - 1;
        d.demote_persisted(i, Instant::now()).await;
    }
    Ok(())
}

/// Takes out the groups a reload removed once they handed over: the addresses vipd added
/// go, and so do their entries in the data plane, except for a VIP still configured (as at
/// a clean stop, it stays "not owned" so that the kernel never answers for it). Then the
/// groups that replace them start.
pub(super) async fn settle<E: Effects>(d: &mut Daemon<E>, demotions: &Path) {
    let gone = d.take_retired();
    if gone.is_empty() {
        return;
    }
    for m in gone {
        // An address another group (running or about to start) lists stays.
        let wanted = |d: &Daemon<E>, v: &Vip| {
            d.members
                .iter()
                .map(|o| (&o.cfg, o.link.index))
                .chain(d.pending.iter().map(|(g, l, _)| (g, l.index)))
                .any(|(g, i)| i == m.link.index && g.vips.iter().any(|w| w.addr == v.addr))
        };
        for v in &m.added {
            if wanted(d, v) {
                continue;
            }
            if let Err(e) = d.fx.remove_address(m.link.index, *v).await {
                warn!(error = %e, vip = %v, "cannot remove VIP");
            }
        }
        // What cannot be listed is guarded as if it stayed.
        let present = d.fx.addresses(m.link.index).await.ok();
        for v in &m.cfg.vips {
            if wanted(d, v) || present.as_ref().is_some_and(|p| !p.contains(&v.addr)) {
                continue;
            }
            warn!(group = %m.label(), vip = %v, "the VIP stays configured (vipd did not add it): \
                this node does not answer ARP for it; remove the address");
            d.guarded.insert((m.link.index, v.addr));
        }
        info!(group = %m.label(), "removed");
    }
    let pending = std::mem::take(&mut d.pending);
    let (ready, waiting): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|(g, link, _)| !d.blocks(g, link.index));
    d.pending = waiting;
    let members = &d.members;
    let pending = &d.pending;
    let guarded = &d.guarded;
    let keep_vip = |i: u32, a: Ipv4Addr| {
        guarded.contains(&(i, a))
            || members
                .iter()
                .any(|m| m.link.index == i && m.cfg.vips.iter().any(|v| v.addr == a))
            || ready
                .iter()
                .chain(pending)
                .any(|(g, l, _)| l.index == i && g.vips.iter().any(|v| v.addr == a))
    };
    let keep_group = |i: u32, v: u8| {
        members.iter().any(|m| m.link.index == i && m.cfg.vhid == v)
            || ready
                .iter()
                .chain(pending)
                .any(|(g, l, _)| l.index == i && g.vhid == v)
    };
    if let Err(e) = d.fx.retain(&keep_vip, &keep_group) {
        warn!(error = %e, "cannot remove the data plane entries of removed groups");
    }
    for (g, link, src) in ready {
        let label = format!("{}/vhid{}", g.interface, g.vhid);
        if let Err(e) = start_group(d, g, link, src, demotions).await {
            tracing::error!(group = %label, "cannot start the new group: {e:#}");
        }
    }
}
