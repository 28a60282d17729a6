//! The daemon: built in one place ([`build`]), then one event loop that feeds every group's
//! core ([`crate::group`]) with advertisements from the XDP ring buffer, timers, link
//! events, signals and control requests, and hands the commands it returns to the executor.
//! Data flows one way: event -> core -> executor -> effects.
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use aya::maps::{MapData, RingBuf};
use tokio::io::unix::{AsyncFd, AsyncFdReadyMutGuard};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};
use vipd_common::{AdvertEvent, IPV4_HLEN};

use crate::addr::{self, LinkEvent, LinkInfo, LinkWatch, Netlink};
use crate::config::{AddressMode, Config};
use crate::control::{self, GroupStatus, InterfaceStatus, Reply, Request, Status, Target};
use crate::dataplane::{Dataplane, XdpPreference, monotonic_ns};
use crate::effects::{Effects, Kernel};
use crate::election::{Event, Params, State};
use crate::executor::{self, Counters, Link, Member, Tx};
use crate::garp::LinkSender;
use crate::group::{self, Command, Settings};
use crate::rx::Receiver;
use crate::scripts::ScriptRunner;

/// Process-wide options: the paths must differ between daemons (one per network namespace
/// by default).
#[derive(Clone, Debug)]
pub struct Options {
    pub control_socket: PathBuf,
    pub bpffs_dir: PathBuf,
    pub xdp_mode: XdpPreference,
    /// SCHED_FIFO priority of the daemon (1-99), so that a busy node still sends its
    /// advertisements on time; `None` leaves the scheduling policy alone.
    pub rt_priority: Option<u8>,
    /// Serve Prometheus metrics on this address.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The configuration file `vipd reload` and SIGHUP read again (`None` with ucarp flags).
    pub config_file: Option<PathBuf>,
}

/// A tracker's last report: health, value (file trackers), and when it came.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackerReport {
    pub healthy: Option<bool>,
    pub value: Option<i64>,
    pub at: Option<Instant>,
}

/// Every group, and the effects boundary they act through.
pub struct Daemon<E: Effects> {
    pub members: Vec<Member>,
    by_key: HashMap<(u32, u8), usize>,
    /// Interfaces by index: whether each is up with carrier.
    links: HashMap<u32, bool>,
    pub fx: E,
    /// Advertisements the ring buffer delivered for no configured group.
    unknown_group: u64,
    /// Sources whose advertisements were accepted: they have a ring of their own.
    known_peers: std::collections::HashSet<(u32, Ipv4Addr)>,
    /// How the programs are attached to each interface.
    pub interfaces: Vec<InterfaceStatus>,
    /// Every tracker's last report.
    pub trackers: std::collections::BTreeMap<String, TrackerReport>,
    started: Instant,
    /// Groups demoted with `persist` (interface, vhid): remembered across restarts until
    /// promoted.
    persistent: std::collections::BTreeSet<(String, u8)>,
    /// VIPs of groups a reload removed that stay configured (vipd did not add them): their
    /// entries stay "not owned" for the daemon's life, so the kernel never answers for them.
    guarded: std::collections::HashSet<(u32, Ipv4Addr)>,
    /// Groups a reload removed or replaced, by (ifindex, vhid): handing over, then gone.
    retiring: std::collections::HashSet<(u32, u8)>,
    /// Groups a reload replaced, with their link and source address, waiting for their
    /// predecessor to finish handing over.
    pending: Vec<(crate::config::GroupConfig, LinkInfo, Ipv4Addr)>,
    /// When the connections of the draining groups are counted next.
    drain_due: Option<Instant>,
}

impl<E: Effects> Daemon<E> {
    pub fn new(members: Vec<Member>, links: HashMap<u32, bool>, fx: E, now: Instant) -> Self {
        let by_key = members
            .iter()
            .enumerate()
            .map(|(i, m)| ((m.link.index, m.cfg.vhid), i))
            .collect();
        Daemon {
            members,
            by_key,
            links,
            fx,
            unknown_group: 0,
            known_peers: Default::default(),
            interfaces: Vec::new(),
            trackers: Default::default(),
            started: now,
            retiring: Default::default(),
            pending: Vec::new(),
            persistent: Default::default(),
            guarded: Default::default(),
            drain_due: None,
        }
    }

    fn reindex(&mut self) {
        self.by_key = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| ((m.link.index, m.cfg.vhid), i))
            .collect();
    }

    /// Whether a reload's removed or replaced groups are still handing over.
    pub fn reloading(&self) -> bool {
        !self.retiring.is_empty() || !self.pending.is_empty()
    }

    /// Applies group `i`'s new settings in place (a reload): its state stays.
    pub async fn update(&mut self, i: usize, g: crate::config::GroupConfig, now: Instant) {
        let m = &mut self.members[i];
        if g.key != m.cfg.key || g.coverage != m.cfg.coverage {
            warn!(group = %m.label(), "new password or authentication: peers must change it too, \
                or they stop accepting each other's advertisements");
            m.rx = Receiver::new(
                m.label(),
                g.vhid,
                m.core.params().local_addr,
                g.destination,
                g.vips.iter().map(|v| v.addr).collect(),
                g.key.clone(),
                g.coverage,
            );
        }
        let params = params_of(&g, m.core.params().local_addr);
        let settings = Settings::of(&g);
        m.cfg = g;
        let before = m.core.state();
        let commands = m.core.reconfigure(params, settings, now);
        info!(group = %self.members[i].label(), "settings updated in place");
        self.carry_out(i, before, commands, now).await;
        self.replay_trackers(i, now).await;
    }

    /// Takes group `i` out (a reload): it hands over as at a clean stop and leaves once
    /// the peer took over.
    pub async fn retire(&mut self, i: usize, now: Instant) {
        let m = &self.members[i];
        info!(group = %m.label(), "leaving the configuration: handing over");
        self.retiring.insert((m.link.index, m.cfg.vhid));
        self.step(i, Event::Shutdown, now).await;
    }

    /// The retired groups that finished handing over, taken out of the daemon.
    pub fn take_retired(&mut self) -> Vec<Member> {
        let mut gone = Vec::new();
        let mut i = 0;
        while i < self.members.len() {
            let m = &self.members[i];
            let key = (m.link.index, m.cfg.vhid);
            if self.retiring.contains(&key) && !m.core.is_handing_over() {
                self.retiring.remove(&key);
                gone.push(self.members.remove(i));
            } else {
                i += 1;
            }
        }
        if !gone.is_empty() {
            self.reindex();
        }
        gone
    }

    /// Adds and starts a member (a reload).
    pub async fn add(&mut self, m: Member, running: bool, now: Instant) {
        self.links.entry(m.link.index).or_insert(running);
        self.members.push(m);
        self.reindex();
        let i = self.members.len() - 1;
        info!(group = %self.members[i].label(), "added by a reload");
        self.step(i, Event::Start, now).await;
        let m = &self.members[i];
        let up = self.links.get(&m.link.index).copied().unwrap_or(false);
        if !up && !m.cfg.ignore_ifstate {
            self.step(i, Event::LinkDown, now).await;
        }
        self.replay_trackers(i, now).await;
    }

    /// Tells group `i` what every tracker last reported: trackers report changes only, so
    /// a group that starts depending on one (a reload) learns its state at once.
    async fn replay_trackers(&mut self, i: usize, now: Instant) {
        let reports: Vec<(String, group::TrackerUpdate)> = self
            .trackers
            .iter()
            .filter_map(|(name, r)| {
                let update = match (r.healthy, r.value) {
                    (Some(false), _) => group::TrackerUpdate::Health(false),
                    (_, Some(v)) => group::TrackerUpdate::Value(v),
                    (Some(true), None) => group::TrackerUpdate::Health(true),
                    (None, None) => return None,
                };
                Some((name.clone(), update))
            })
            .collect();
        for (name, update) in reports {
            let before = self.members[i].core.state();
            let commands = self.members[i].core.track(&name, update, now);
            self.carry_out(i, before, commands, now).await;
        }
    }

    /// Demotes group `i` for maintenance that survives a restart (a demotion remembered
    /// from before one).
    pub async fn demote_persisted(&mut self, i: usize, now: Instant) {
        let m = &mut self.members[i];
        info!(group = %m.label(), "demoted before the restart: stays demoted");
        self.persistent
            .insert((m.cfg.interface.clone(), m.cfg.vhid));
        m.counters.last_demote_at = Some(SystemTime::now());
        self.step(i, Event::Demote, now).await;
    }

    /// Whether group `g` on link `index` must wait: a running group (one handing over, say)
    /// has its vhid or one of its VIPs on that link.
    pub fn blocks(&self, g: &crate::config::GroupConfig, index: u32) -> bool {
        self.members.iter().any(|m| {
            m.link.index == index
                && (m.cfg.vhid == g.vhid
                    || m.cfg
                        .vips
                        .iter()
                        .any(|v| g.vips.iter().any(|w| w.addr == v.addr)))
        })
    }

    /// Whether a group that is not being removed runs on link `index`.
    pub fn serves_link(&self, index: u32) -> bool {
        self.members
            .iter()
            .any(|m| m.link.index == index && !self.retiring.contains(&(index, m.cfg.vhid)))
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .iter()
            .filter_map(|m| m.core.next_deadline())
            .min()
    }

    async fn step(&mut self, i: usize, event: Event, now: Instant) {
        let before = self.members[i].core.state();
        let commands = self.members[i].core.step(event, now);
        self.carry_out(i, before, commands, now).await;
    }

    /// Carries out group `i`'s commands, then keeps its sync group together.
    async fn carry_out(&mut self, i: usize, before: State, commands: Vec<Command>, now: Instant) {
        executor::execute(&mut self.fx, &mut self.members[i], commands, now).await;
        let Some(name) = self.members[i].cfg.sync_group.clone() else {
            return;
        };
        // A group a reload takes out leaves its sync group: its hand-over moves nobody else.
        let retiring = |m: &Member| self.retiring.contains(&(m.link.index, m.cfg.vhid));
        if retiring(&self.members[i]) {
            return;
        }
        let together: Vec<usize> = (0..self.members.len())
            .filter(|&j| {
                self.members[j].cfg.sync_group.as_deref() == Some(name.as_str())
                    && !retiring(&self.members[j])
            })
            .collect();
        // FAULT: while one member is in FAULT because of its own trackers, all are.
        let faulted = together
            .iter()
            .any(|&j| self.members[j].core.faulted_by_own_trackers());
        // Demotion: every member advertises at least the largest, so that a better member
        // never preempts back what a demoted one of its group lost.
        let floor = together
            .iter()
            .map(|&j| self.members[j].core.own_demotion())
            .max()
            .unwrap_or(0);
        let tracker = format!("{}{name}", group::SYNC_TRACKER);
        for &j in &together {
            let m = &mut self.members[j];
            let mut commands = m
                .core
                .track(&tracker, group::TrackerUpdate::Health(!faulted), now);
            commands.extend(m.core.set_sync_floor(floor, now));
            executor::execute(&mut self.fx, m, commands, now).await;
        }
        // One member left MASTER: the others hand over too, so that the peer takes them
        // all. They step down with a reason of their own, which moves nobody further.
        let left = before == State::Master && self.members[i].core.state() != State::Master;
        if left {
            for &j in together.iter().filter(|&&j| j != i) {
                let m = &mut self.members[j];
                if m.core.state() == State::Master {
                    let commands = m.core.step(Event::StepDown, now);
                    executor::execute(&mut self.fx, m, commands, now).await;
                }
            }
        }
    }

    /// Starts every group; a group whose link is down starts in INIT.
    pub async fn start(&mut self, now: Instant) {
        for i in 0..self.members.len() {
            self.step(i, Event::Start, now).await;
            let m = &self.members[i];
            let running = self.links.get(&m.link.index).copied().unwrap_or(false);
            if !running && !m.cfg.ignore_ifstate {
                self.step(i, Event::LinkDown, now).await;
            }
        }
    }

    /// One advertisement the XDP program saw on `ifindex` at `at`.
    pub async fn on_advert(&mut self, ifindex: u32, packet: &[u8], at: Instant) {
        self.on_advert_from(ifindex, None, packet, at).await;
    }

    /// One advertisement the XDP program saw on `ifindex` at `at`, sent from `mac`.
    pub async fn on_advert_from(
        &mut self,
        ifindex: u32,
        mac: Option<[u8; 6]>,
        packet: &[u8],
        at: Instant,
    ) {
        let vhid = packet.get(IPV4_HLEN + 1).copied().unwrap_or(0);
        let Some(&i) = self.by_key.get(&(ifindex, vhid)) else {
            self.unknown_group += 1;
            return;
        };
        let m = &mut self.members[i];
        let Ok((src, adv)) = m.rx.receive(packet, m.tx.sent, at) else {
            return;
        };
        m.counters.last_advert = Some(at);
        // Where a graceful take-over forwards: the MAC of the peer's regular
        // advertisements. A bow-out from another MAC changes nothing (a MAC is not signed).
        if let Some(mac) = mac {
            let bow_out = crate::carp::is_bow_out(adv.advbase, adv.advskew);
            match m.peer_macs.get(&src) {
                Some(known) if bow_out && *known != mac => warn!(group = %m.label(), peer = %src,
                    mac = %executor::mac_text(mac), known = %executor::mac_text(*known),
                    "a bow-out from another MAC than the peer's advertisements"),
                Some(known) if *known == mac => {}
                _ => {
                    m.peer_macs.insert(src, mac);
                    // Never forward what a peer sends: no segment is forwarded twice.
                    if let Err(e) = self.fx.learn_peer_mac(ifindex, mac) {
                        warn!(peer = %src, error = %e, "cannot record the peer's MAC");
                    }
                }
            }
        }
        if self.known_peers.len() < vipd_common::MAX_KNOWN_PEERS as usize
            && self.known_peers.insert((ifindex, src))
            && let Err(e) = self.fx.learn_peer(ifindex, src)
        {
            warn!(peer = %src, error = %e, "cannot give the peer its own ring");
        }
        let event = Event::Advert {
            src,
            advbase: adv.advbase,
            advskew: adv.advskew,
            demote: adv.demote,
        };
        self.step(i, event, at).await;
    }

    /// Fires the timers due at `now`.
    pub async fn on_timers(&mut self, now: Instant) {
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            if m.core.next_deadline().is_some_and(|t| t <= now) {
                let before = m.core.state();
                let commands = m.core.tick(now);
                self.carry_out(i, before, commands, now).await;
            }
        }
    }

    /// Which managed interface `index` is, if any.
    pub fn interface_name(&self, index: u32) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.link.index == index)
            .map(|m| m.link.name.as_str())
    }

    /// A tracker reported: every group that depends on it follows.
    pub async fn on_tracker(&mut self, tracker: &str, update: group::TrackerUpdate, now: Instant) {
        let report = self.trackers.entry(tracker.to_owned()).or_default();
        match update {
            group::TrackerUpdate::Health(h) => report.healthy = Some(h),
            group::TrackerUpdate::Value(v) => {
                report.healthy = Some(true);
                report.value = Some(v);
            }
        }
        report.at = Some(now);
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            let before = m.core.state();
            let commands = m.core.track(tracker, update, now);
            if !commands.is_empty() {
                info!(group = %m.label(), tracker, ?update, "tracker");
            }
            // Even with nothing to do itself, its sync group may follow the report.
            self.carry_out(i, before, commands, now).await;
        }
    }

    /// A link changed state (or went away).
    pub async fn on_link(&mut self, event: LinkEvent, now: Instant) {
        let (index, running) = match event {
            LinkEvent::Changed { index, running } => (index, running),
            LinkEvent::Removed { index } => (index, false),
        };
        let Some(was) = self.links.get_mut(&index) else {
            return;
        };
        if *was == running {
            return;
        }
        *was = running;
        for i in 0..self.members.len() {
            let m = &self.members[i];
            if m.link.index == index && !m.cfg.ignore_ifstate {
                info!(interface = %m.link.name, up = running, "link state changed");
                let event = if running {
                    Event::LinkUp
                } else {
                    Event::LinkDown
                };
                self.step(i, event, now).await;
            }
        }
    }

    fn targets(&self, target: Target) -> Result<Vec<usize>> {
        let found: Vec<usize> = (0..self.members.len())
            .filter(|i| match target {
                Target::All => true,
                Target::Vhid(v) => self.members[*i].cfg.vhid == v,
            })
            .collect();
        if let Target::Vhid(v) = target
            && found.is_empty()
        {
            bail!("no group with vhid {v}");
        }
        Ok(found)
    }

    /// A demote or promote request; status is answered by [`Daemon::status`].
    pub async fn on_request(&mut self, req: Request, now: Instant) -> Reply {
        let (target, event) = match req {
            Request::Status | Request::Reload => {
                return Reply::Error {
                    message: "answered by the daemon loop".into(),
                };
            }
            Request::Demote { target, .. } | Request::Drain { target, .. } => {
                (target, Event::Demote)
            }
            Request::Promote { target } => (target, Event::Promote),
        };
        let found = match self.targets(target) {
            Ok(f) => f,
            Err(e) => {
                return Reply::Error {
                    message: e.to_string(),
                };
            }
        };
        let persist = matches!(
            req,
            Request::Demote { persist: true, .. } | Request::Drain { persist: true, .. }
        );
        let mut changed = Vec::new();
        for i in found {
            info!(group = %self.members[i].label(), ?event, persist, "administrative request");
            let key = (
                self.members[i].cfg.interface.clone(),
                self.members[i].cfg.vhid,
            );
            match event {
                Event::Demote if persist => {
                    self.persistent.insert(key);
                }
                Event::Promote => {
                    self.persistent.remove(&key);
                }
                _ => {}
            }
            if event == Event::Demote {
                self.members[i].counters.last_demote_at = Some(SystemTime::now());
            }
            self.step(i, event, now).await;
            if let Request::Drain { limit_ms, .. } = req {
                self.start_drain(i, limit_ms.map(Duration::from_millis), now)
                    .await;
            }
            changed.push(self.members[i].cfg.vhid);
        }
        Reply::Ok { changed }
    }

    /// ucarp's SIGUSR2: demote every group; a second one promotes them again.
    pub async fn on_usr2(&mut self, now: Instant) {
        let target = Target::All;
        let req = if self.members.iter().all(|m| m.core.election().is_demoted()) {
            Request::Promote { target }
        } else {
            Request::Demote {
                target,
                persist: false,
            }
        };
        self.on_request(req, now).await;
    }

    pub fn status(&self, now: Instant, xdp: Vec<(String, u64)>) -> Status {
        let unix_us = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .ok()
        };
        Status {
            schema: crate::control::SCHEMA_VERSION,
            pid: std::process::id(),
            groups: self
                .members
                .iter()
                .map(|m| GroupStatus {
                    interface: m.cfg.interface.clone(),
                    vhid: m.cfg.vhid,
                    vips: m.cfg.vips.iter().map(|v| v.to_string()).collect(),
                    state: if m.core.draining().is_some() {
                        "DRAINING".to_owned()
                    } else {
                        m.core.state().name().to_owned()
                    },
                    since_secs: now
                        .saturating_duration_since(m.counters.since)
                        .as_secs_f64(),
                    master: m.core.election().master().map(|a| a.to_string()),
                    advbase: m.cfg.advbase,
                    advskew: m.cfg.advskew,
                    demoted: m.core.election().is_demoted(),
                    last_advert_ms: m
                        .counters
                        .last_advert
                        .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                    transitions: m.counters.transitions,
                    adverts_sent: m.counters.adverts_sent,
                    worst_advert_delay_us: m.core.worst_advert_delay().as_micros() as u64,
                    adverts_received: m.rx.stats().accepted,
                    rejected: m
                        .rx
                        .stats()
                        .rejections()
                        .iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect(),
                    last_owned_at_unix_us: m.counters.last_owned_at.and_then(unix_us),
                    last_own_flip_us: m.counters.last_own_flip.map(|d| d.as_secs_f64() * 1e6),
                    last_demote_at_unix_us: m.counters.last_demote_at.and_then(unix_us),
                    demotion: m.core.election().demotion(),
                    failing: m.core.failing(),
                    draining: m.core.draining().map(|until| crate::control::DrainStatus {
                        connections: m.counters.drain_left,
                        remaining_secs: until.saturating_duration_since(now).as_secs_f64(),
                    }),
                    forwarding: m.core.forwarding().map(|f| crate::control::ForwardStatus {
                        to: f.to.to_string(),
                        mac: m.peer_macs.get(&f.to).map(|mac| executor::mac_text(*mac)),
                        remaining_secs: f.until.saturating_duration_since(now).as_secs_f64(),
                    }),
                })
                .collect(),
            xdp,
            unknown_group: self.unknown_group,
            control: Default::default(),
            interfaces: self.interfaces.clone(),
            trackers: self
                .trackers
                .iter()
                .map(|(name, r)| crate::control::TrackerStatus {
                    name: name.clone(),
                    healthy: r.healthy,
                    value: r.value,
                    since_secs: r.at.map(|t| now.saturating_duration_since(t).as_secs_f64()),
                })
                .collect(),
            forwarding: Vec::new(),
        }
    }

    /// Bows out of every group (the down script runs only with `-z`).
    pub async fn begin_shutdown(&mut self, now: Instant) {
        info!(
            uptime_s = now.saturating_duration_since(self.started).as_secs(),
            "shutting down: handing over"
        );
        for i in 0..self.members.len() {
            self.step(i, Event::Shutdown, now).await;
        }
    }

    /// Group `i` drains for `limit` (its `drain_limit` when `None`).
    pub async fn start_drain(&mut self, i: usize, limit: Option<Duration>, now: Instant) {
        let m = &mut self.members[i];
        let limit = limit.unwrap_or(m.cfg.drain_limit);
        let commands = m.core.start_drain(limit, now);
        executor::execute(&mut self.fx, m, commands, now).await;
        self.drain_due = self.draining().then_some(now);
    }

    /// When the connections of the draining groups are counted next.
    pub fn drain_due(&self) -> Option<Instant> {
        self.drain_due.filter(|_| self.draining())
    }

    /// Whether some group drains.
    pub fn draining(&self) -> bool {
        self.members.iter().any(|m| m.core.draining().is_some())
    }

    /// Counts the connections to the VIPs of every draining group; a group with none left
    /// has drained.
    pub async fn check_drains(&mut self, now: Instant) {
        self.drain_due = None;
        if !self.draining() {
            return;
        }
        self.drain_due = Some(now + DRAIN_CHECK);
        let open = match self.fx.open_connections() {
            Ok(open) => open,
            Err(e) => {
                warn!(error = %e, "cannot count the connections of draining groups");
                return;
            }
        };
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            if m.core.draining().is_none() {
                continue;
            }
            let left: u32 = m
                .cfg
                .vips
                .iter()
                .map(|v| open.get(&v.addr).copied().unwrap_or(0))
                .sum();
            m.counters.drain_left = Some(left);
            if left == 0 {
                let commands = m.core.drained();
                executor::execute(&mut self.fx, m, commands, now).await;
            }
        }
    }

    /// Whether some group still holds VIPs it bowed out of.
    pub fn handing_over(&self) -> bool {
        self.members.iter().any(|m| m.core.is_handing_over())
    }

    /// Removes the VIP addresses vipd added.
    pub async fn remove_added(&mut self) {
        for m in &mut self.members {
            for v in std::mem::take(&mut m.added) {
                if let Err(e) = self.fx.remove_address(m.link.index, v).await {
                    warn!(error = %e, vip = %v, "cannot remove VIP");
                }
            }
        }
    }
}

/// Builds the daemon: interfaces, the data plane in its safe start-up order (every VIP "not
/// owned" and the programs attached before any address is added), then the groups.
pub async fn build(config: Config, opts: &Options) -> Result<Daemon<Kernel>> {
    let nl = Netlink::new()?;
    let trackers: Vec<String> = config.trackers.iter().map(|t| t.name.clone()).collect();
    let links = links_of(&nl, &config.groups).await?;
    // Every group's source address, checked before the data plane is touched.
    let mut sources = HashMap::new();
    for g in &config.groups {
        let src = source_of(&nl, g, &links[&g.interface]).await?;
        sources.insert((g.interface.clone(), g.vhid), src);
    }
    let indexes: Vec<u32> = links.values().map(|l| l.index).collect();
    let mut dp = Dataplane::load(&opts.bpffs_dir, &indexes).context("loading the XDP program")?;
    let index = |name: &str| links[name].index;
    dp.retain(
        |i, a| {
            config
                .groups
                .iter()
                .any(|g| index(&g.interface) == i && g.vips.iter().any(|v| v.addr == a))
        },
        |i, v| {
            config
                .groups
                .iter()
                .any(|g| index(&g.interface) == i && g.vhid == v)
        },
    )?;
    for g in &config.groups {
        register(&mut dp, index(&g.interface), g)?;
    }
    let mut senders = HashMap::new();
    let mut interfaces = Vec::new();
    for (name, link) in &links {
        let (status, sender) = attach(&mut dp, name, link, opts.xdp_mode)?;
        interfaces.push(status);
        senders.insert(link.index, sender);
    }
    let now = Instant::now();
    let mut members = Vec::new();
    for g in config.groups {
        let src = sources[&(g.interface.clone(), g.vhid)];
        members.push(member(&nl, g, &links, src, now).await?);
    }
    let running = links.values().map(|l| (l.index, l.running)).collect();
    let scripts = ScriptRunner::start();
    let fx = Kernel {
        dp,
        nl,
        senders,
        scripts,
    };
    let mut d = Daemon::new(members, running, fx, now);
    d.interfaces = interfaces;
    d.trackers = trackers
        .into_iter()
        .map(|name| (name, TrackerReport::default()))
        .collect();
    Ok(d)
}

/// The links of `groups`, by name.
async fn links_of(
    nl: &Netlink,
    groups: &[crate::config::GroupConfig],
) -> Result<HashMap<String, LinkInfo>> {
    let mut links = HashMap::new();
    for g in groups {
        if !links.contains_key(&g.interface) {
            let link = nl
                .link(&g.interface)
                .await
                .with_context(|| format!("interface {}", g.interface))?;
            links.insert(g.interface.clone(), link);
        }
    }
    Ok(links)
}

/// The address group `g` advertises from: its `srcip`, which must be an address of its
/// link, or the link's first IPv4 address that is not a VIP.
async fn source_of(
    nl: &Netlink,
    g: &crate::config::GroupConfig,
    link: &LinkInfo,
) -> Result<Ipv4Addr> {
    let vip_addrs: Vec<Ipv4Addr> = g.vips.iter().map(|v| v.addr).collect();
    Ok(match g.srcip {
        Some(s) => {
            // Advertisements must come from the node's own address on that link: peers
            // tell the master by it, and replies to it must reach this node.
            if !nl.configured(link.index).await?.contains(&s) {
                bail!(
                    "srcip (-s) {s} is not an address of {}: give one of its own addresses",
                    g.interface
                );
            }
            s
        }
        None => nl
            .primary_v4(link.index, &vip_addrs)
            .await?
            .with_context(|| {
                format!(
                    "{} has no IPv4 address to advertise from; give srcip (-s)",
                    g.interface
                )
            })?,
    })
}

/// Registers group `g` in the data plane with every VIP "not owned": its advertisements
/// reach the daemon, and no node answers for its VIPs before the election says so.
fn register(dp: &mut Dataplane, ifindex: u32, g: &crate::config::GroupConfig) -> Result<()> {
    for v in &g.vips {
        dp.set_owner(ifindex, v.addr, vipd_common::VipOwner::NOT_OWNED)?;
    }
    dp.add_group(ifindex, g.vhid, g.destination)?;
    Ok(())
}

/// Attaches the programs to `name` and opens its packet socket.
fn attach(
    dp: &mut Dataplane,
    name: &str,
    link: &LinkInfo,
    mode: XdpPreference,
) -> Result<(InterfaceStatus, LinkSender)> {
    if let Err(e) = addr::harden_arp(name) {
        warn!(interface = %name, error = %e, "cannot set arp_ignore/arp_announce");
    }
    let attached = dp
        .attach(name, mode)
        .with_context(|| format!("attaching to {name}"))?;
    info!(interface = %name, mode = attached.mode.name(), adopted = attached.adopted,
        "ingress and TC egress programs attached");
    let status = InterfaceStatus {
        name: name.to_owned(),
        ifindex: attached.ifindex,
        mode: attached.mode.name().to_owned(),
        adopted: attached.adopted,
    };
    let sender = LinkSender::new(link.index)
        .with_context(|| format!("opening a packet socket on {name}"))?;
    Ok((status, sender))
}

/// Group `g`'s parameters with its source address.
fn params_of(g: &crate::config::GroupConfig, src: Ipv4Addr) -> Params {
    Params {
        vhid: g.vhid,
        advbase: g.advbase,
        advskew: g.advskew,
        preempt: g.preempt,
        neutral: g.neutral,
        dead_ratio: g.dead_ratio,
        local_addr: src,
        demote_by: match g.demote_mode {
            crate::config::DemoteMode::Advskew => crate::election::DemoteBy::Advskew,
            crate::config::DemoteMode::Demote => crate::election::DemoteBy::DemoteCount,
        },
    }
}

/// A new member for group `g` (its addresses added in "always" mode), not started yet.
async fn member(
    nl: &Netlink,
    g: crate::config::GroupConfig,
    links: &HashMap<String, LinkInfo>,
    src: Ipv4Addr,
    now: Instant,
) -> Result<Member> {
    let link = &links[&g.interface];
    let vip_addrs: Vec<Ipv4Addr> = g.vips.iter().map(|v| v.addr).collect();
    let params = params_of(&g, src);
    params
        .validate()
        .with_context(|| format!("{}/vhid{}", g.interface, g.vhid))?;
    let settings = Settings::of(&g);
    let mut added = Vec::new();
    if g.address_mode == AddressMode::Always {
        for v in &g.vips {
            if nl.add(link.index, *v).await? {
                added.push(*v);
            }
        }
    }
    let label = format!("{}/vhid{}", g.interface, g.vhid);
    Ok(Member {
        link: Link {
            name: g.interface.clone(),
            index: link.index,
            mac: link.mac,
        },
        core: group::Group::new(params, settings),
        rx: Receiver::new(
            label,
            g.vhid,
            src,
            g.destination,
            vip_addrs,
            g.key.clone(),
            g.coverage,
        ),
        tx: Tx::new(src, random_u64(), random_u64() as u16),
        counters: Counters::new(now),
        added,
        peer_macs: Default::default(),
        cfg: g,
    })
}

/// The trackers running now, and where their reports arrive.
struct Trackers {
    configs: Vec<crate::trackers::TrackerConfig>,
    events: Option<tokio::sync::mpsc::Receiver<crate::trackers::TrackerEvent>>,
}

impl Trackers {
    fn start(configs: Vec<crate::trackers::TrackerConfig>) -> Result<Trackers> {
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
async fn reload(
    d: &mut Daemon<Kernel>,
    opts: &Options,
    trackers: &mut Trackers,
    demotions: &std::path::Path,
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
    let running: Vec<&crate::config::GroupConfig> = d.members.iter().map(|m| &m.cfg).collect();
    let plan = crate::reload::plan(
        &running,
        &trackers.configs,
        &config.groups,
        &config.trackers,
    );
    // Checks: every new group's link and source address.
    let starting: Vec<crate::config::GroupConfig> =
        plan.add.iter().chain(&plan.replace).cloned().collect();
    let links = links_of(&d.fx.nl, &starting).await?;
    let mut sources = HashMap::new();
    for g in &starting {
        let src = source_of(&d.fx.nl, g, &links[&g.interface]).await?;
        params_of(g, src)
            .validate()
            .with_context(|| format!("{}/vhid{}", g.interface, g.vhid))?;
        sources.insert(crate::reload::key_of(g), src);
    }
    let restarted = if plan.trackers_changed {
        Some(Trackers::start(config.trackers.clone())?)
    } else {
        None
    };
    // New links get the programs (their VIPs are all "not owned" until a group owns them).
    for (name, link) in &links {
        if !d.fx.senders.contains_key(&link.index) {
            let (status, sender) = attach(&mut d.fx.dp, name, link, opts.xdp_mode)?;
            d.interfaces.push(status);
            d.fx.senders.insert(link.index, sender);
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
    let position = |d: &Daemon<Kernel>, key: &crate::reload::GroupKey| {
        d.members
            .iter()
            .position(|m| crate::reload::key_of(&m.cfg) == *key)
    };
    for g in plan.update.iter().cloned() {
        if let Some(i) = position(d, &crate::reload::key_of(&g)) {
            d.update(i, g, now).await;
        }
    }
    for key in &plan.remove {
        if let Some(i) = position(d, key) {
            d.retire(i, now).await;
        }
    }
    for g in plan.replace.iter().cloned() {
        let key = crate::reload::key_of(&g);
        if let Some(i) = position(d, &key) {
            d.retire(i, now).await;
        }
        let link = links[&g.interface].clone();
        d.pending.push((g, link, sources[&key]));
    }
    for g in plan.add.iter().cloned() {
        let link = links[&g.interface].clone();
        let src = sources[&crate::reload::key_of(&g)];
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
async fn start_group(
    d: &mut Daemon<Kernel>,
    g: crate::config::GroupConfig,
    link: LinkInfo,
    src: Ipv4Addr,
    demotions: &std::path::Path,
) -> Result<()> {
    register(&mut d.fx.dp, link.index, &g)?;
    let key = (g.interface.clone(), g.vhid);
    let links = HashMap::from([(g.interface.clone(), link.clone())]);
    let m = member(&d.fx.nl, g, &links, src, Instant::now()).await?;
    d.add(m, link.running, Instant::now()).await;
    if load_demotions(demotions).contains(&key) {
        let i = d.members.len() - 1;
        d.demote_persisted(i, Instant::now()).await;
    }
    Ok(())
}

/// Takes out the groups a reload removed once they handed over: the addresses vipd added
/// go, and so do their entries in the data plane, except for a VIP still configured (as at
/// a clean stop, it stays "not owned" so that the kernel never answers for it). Then the
/// groups that replace them start.
async fn settle(d: &mut Daemon<Kernel>, demotions: &std::path::Path) {
    let gone = d.take_retired();
    if gone.is_empty() {
        return;
    }
    for m in gone {
        // An address another group (running or about to start) lists stays.
        let wanted = |d: &Daemon<Kernel>, v: &crate::config::Vip| {
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
        let present = d.fx.nl.configured(m.link.index).await.ok();
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
    if let Err(e) = d.fx.dp.retain(keep_vip, keep_group) {
        warn!(error = %e, "cannot remove the data plane entries of removed groups");
    }
    for (g, link, src) in ready {
        let label = format!("{}/vhid{}", g.interface, g.vhid);
        if let Err(e) = start_group(d, g, link, src, demotions).await {
            tracing::error!(group = %label, "cannot start the new group: {e:#}");
        }
    }
}

/// The instance lock of this network namespace: held for the daemon's life, taken before
/// anything in the kernel is touched.
pub fn lock_path() -> PathBuf {
    PathBuf::from(format!(
        "/run/vipd/netns-{}.lock",
        crate::dataplane::netns_id()
    ))
}

/// Takes the instance lock, or says which daemon holds it.
fn lock_instance() -> Result<nix::fcntl::Flock<std::fs::File>> {
    use std::io::{Read, Seek, Write};
    let path = lock_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    {
        Ok(lock) => lock,
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            bail!(
                "another vipd (pid {}) already runs in this network namespace ({} is \
                     locked); one vipd serves every group of a namespace: stop it first, or \
                     give it all the groups with `vipd run --config`",
                pid.trim(),
                path.display()
            );
        }
    };
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "{}", std::process::id())?;
    Ok(lock)
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(config: Config, opts: Options) -> Result<()> {
    let _instance = lock_instance()?;
    if let Some(prio) = opts.rt_priority {
        match set_realtime(prio) {
            Ok(()) => info!(priority = prio, "scheduling SCHED_FIFO"),
            Err(e) => warn!(
                priority = prio,
                error = %e,
                "cannot switch to SCHED_FIFO; advertisements may be late on a busy node"
            ),
        }
    }
    // Link events are subscribed to before the links are read, so that no change is lost.
    let mut link_watch = LinkWatch::start()?;
    let mut trackers = Trackers::start(config.trackers.clone())?;
    let mut d = build(config, &opts).await?;
    let mut rings = Rings::open(&mut d.fx.dp)?;
    let listener = control::listen(&opts.control_socket).await?;
    let (mut requests, control_stats) = control::serve(listener, control::Limits::default());
    let mut scrapes = match opts.metrics_listen {
        Some(addr) => Some(
            crate::metrics::serve(addr)
                .await
                .with_context(|| format!("serving metrics on {addr}"))?,
        ),
        None => None,
    };
    // Set up: from here on the daemon needs little of root.
    match crate::privileges::restrict() {
        Ok(kept) => {
            let mut kept: Vec<String> = kept.iter().map(|c| c.to_string()).collect();
            kept.sort();
            info!(capabilities = %kept.join(","), "privileges reduced (no_new_privs, RLIMIT_RTTIME)");
        }
        Err(e) => warn!(error = %e, "cannot reduce privileges"),
    }
    info!(groups = d.members.len(), socket = %opts.control_socket.display(), "vipd running");
    d.start(Instant::now()).await;
    // `vipd demote --persist` survives a restart: a node in maintenance stays demoted.
    let demotions = demotions_path();
    for (interface, vhid) in load_demotions(&demotions) {
        if let Some(i) = d
            .members
            .iter()
            .position(|m| m.cfg.interface == interface && m.cfg.vhid == vhid)
        {
            d.demote_persisted(i, Instant::now()).await;
        }
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut failure = None;
    // systemd (Type=notify): ready once every group runs; the watchdog is fed from this
    // loop, so a stuck loop is what it catches.
    notify_systemd(sd_notify::NotifyState::Ready);
    let mut watchdog = watchdog_interval();
    loop {
        let deadline = d.next_deadline();
        tokio::select! {
            biased;
            events = rings.readable() => {
                on_adverts(&mut d, events?).await;
                // A flood keeps the rings ready; due timers run after every batch anyway.
                d.on_timers(Instant::now()).await;
            }
            _ = sleep_until(deadline) => {
                // Advertisements the kernel queued before the timer count first, so a late
                // wake-up never turns into a master-down the ring buffer already disproves.
                on_adverts(&mut d, rings.drain_now()).await;
                d.on_timers(Instant::now()).await;
            }
            Some(ev) = link_watch.next() => {
                if let LinkEvent::Removed { index } = ev
                    && d.serves_link(index)
                    && let Some(name) = d.interface_name(index)
                {
                    // Its programs went with it; a new interface of that name is another
                    // device, which vipd only takes over when started on it.
                    let e = anyhow::anyhow!(
                        "interface {name} (ifindex {index}) was deleted: vipd stops; start \
                         it again once the interface exists"
                    );
                    tracing::error!("{e}");
                    failure = Some(e);
                }
                d.on_link(ev, Instant::now()).await;
                if failure.is_some() {
                    break;
                }
            }
            Some(p) = requests.recv() => {
                let reply = match p.request {
                    Request::Status => Reply::Status(status(&d, &control_stats)),
                    Request::Reload => match reload(&mut d, &opts, &mut trackers, &demotions).await {
                        Ok(summary) => {
                            info!(changes = %summary, "configuration reloaded");
                            Reply::Reloaded { summary }
                        }
                        Err(e) => {
                            warn!("reload refused, nothing changed: {e:#}");
                            Reply::Error { message: format!("reload refused, nothing changed: {e:#}") }
                        }
                    },
                    req => {
                        let reply = d.on_request(req, Instant::now()).await;
                        save_demotions(&d, &demotions);
                        reply
                    }
                };
                let _ = p.reply.send(reply);
            }
            Some(ev) = next_tracker_event(&mut trackers.events) => {
                let (name, update) = match ev {
                    crate::trackers::TrackerEvent::Health { name, healthy } => {
                        (name, group::TrackerUpdate::Health(healthy))
                    }
                    crate::trackers::TrackerEvent::Value { name, value } => {
                        (name, group::TrackerUpdate::Value(value))
                    }
                };
                d.on_tracker(&name, update, Instant::now()).await;
            }
            Some(p) = next_scrape(&mut scrapes) => {
                let _ = p.reply.send(Reply::Status(status(&d, &control_stats)));
            }
            _ = usr2.recv() => {
                d.on_usr2(Instant::now()).await;
                save_demotions(&d, &demotions);
            }
            _ = hup.recv() => {
                match reload(&mut d, &opts, &mut trackers, &demotions).await {
                    Ok(summary) => info!(changes = %summary, "configuration reloaded (SIGHUP)"),
                    Err(e) => warn!("reload refused, nothing changed: {e:#}"),
                }
            }
            _ = usr1.recv() => {
                if let Ok(s) = serde_json::to_string(&status(&d, &control_stats)) {
                    info!(status = %s, "status");
                }
            }
            _ = tick(&mut watchdog) => {
                notify_systemd(sd_notify::NotifyState::Watchdog);
            }
            _ = sleep_until(d.drain_due()) => d.check_drains(Instant::now()).await,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        if d.reloading() {
            settle(&mut d, &demotions).await;
        }
    }

    notify_systemd(sd_notify::NotifyState::Stopping);
    // Bow out, then wait (at most master-down) until peers show they took over.
    d.begin_shutdown(Instant::now()).await;
    // Then drain: the connections to the VIPs close, or each group's drain_on_stop passes.
    for i in 0..d.members.len() {
        let limit = d.members[i].cfg.drain_on_stop;
        if !limit.is_zero() {
            d.start_drain(i, Some(limit), Instant::now()).await;
        }
    }
    d.check_drains(Instant::now()).await;
    while d.handing_over() || d.draining() {
        let deadline = d.next_deadline();
        tokio::select! {
            _ = sleep_until(d.drain_due()) => d.check_drains(Instant::now()).await,
            Some(p) = requests.recv() => {
                let reply = match p.request {
                    Request::Status => Reply::Status(status(&d, &control_stats)),
                    _ => Reply::Error { message: "vipd is stopping (draining)".into() },
                };
                let _ = p.reply.send(reply);
            }
            events = rings.readable() => {
                let Ok(events) = events else { break };
                on_adverts(&mut d, events).await;
            }
            _ = sleep_until(deadline) => {
                on_adverts(&mut d, rings.drain_now()).await;
                d.on_timers(Instant::now()).await;
            }
            // A drain can outlast WatchdogSec: the loop still runs.
            _ = tick(&mut watchdog) => {
                notify_systemd(sd_notify::NotifyState::Watchdog);
            }
        }
    }
    d.remove_added().await;
    let guard = guarded_interfaces(&d).await;
    let _ = std::fs::remove_file(&opts.control_socket);
    let Daemon { fx, .. } = d;
    let Kernel { dp, scripts, .. } = fx;
    let pending = scripts.close();
    let _ = tokio::time::timeout(Duration::from_secs(30), pending).await;
    dp.detach_all(&guard)?;
    if let Some(e) = failure {
        return Err(e);
    }
    info!("vipd stopped");
    Ok(())
}

/// Interfaces where a VIP stays configured after vipd stops (vipd did not add it): their
/// programs stay attached, with every VIP "not owned", so that the kernel never answers
/// ARP for it on its own.
async fn guarded_interfaces(d: &Daemon<Kernel>) -> Vec<u32> {
    // VIPs of groups a reload removed that stayed configured.
    let mut guard: Vec<u32> = Vec::new();
    for &(index, vip) in &d.guarded {
        let present = d.fx.nl.configured(index).await.map(|p| p.contains(&vip));
        if present.unwrap_or(true) && !guard.contains(&index) {
            warn!(%vip, "a VIP of a removed group stays configured: the programs stay attached \
                so that this node never answers ARP for it");
            guard.push(index);
        }
    }
    for m in &d.members {
        let present = match d.fx.nl.configured(m.link.index).await {
            Ok(p) => p,
            Err(e) => {
                warn!(interface = %m.link.name, error = %e, "cannot list addresses; keeping the programs attached");
                guard.push(m.link.index);
                continue;
            }
        };
        let left: Vec<String> = m
            .cfg
            .vips
            .iter()
            .filter(|v| present.contains(&v.addr))
            .map(|v| v.addr.to_string())
            .collect();
        if !left.is_empty() && !guard.contains(&m.link.index) {
            warn!(interface = %m.link.name, vips = %left.join(","),
                "VIPs stay configured (vipd did not add them): the programs stay attached \
                 so that this node never answers ARP for them; remove the addresses, or start \
                 vipd again, which adopts it");
            guard.push(m.link.index);
        }
    }
    guard
}

fn status(d: &Daemon<Kernel>, control: &control::ServerStats) -> Status {
    let xdp =
        d.fx.dp
            .counters()
            .map(|c| c.iter().map(|(n, v)| (n.to_owned(), v)).collect())
            .unwrap_or_default();
    let mut s = d.status(Instant::now(), xdp);
    s.control = control.snapshot();
    s.forwarding =
        d.fx.dp
            .drain_counters()
            .map(|c| c.into_iter().map(|(n, v)| (n.to_owned(), v)).collect())
            .unwrap_or_default();
    s
}

async fn on_adverts(d: &mut Daemon<Kernel>, events: Vec<AdvertEvent>) {
    for ev in events {
        d.on_advert_from(
            ev.ifindex,
            Some(ev.src_mac),
            &ev.packet,
            instant_of(ev.rx_ns),
        )
        .await;
    }
}

/// Switches the process to SCHED_FIFO at `prio`; children (scripts) start as ordinary
/// processes again (SCHED_RESET_ON_FORK).
fn set_realtime(prio: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(prio),
    };
    // SAFETY: sched_setscheduler on our own process with a valid parameter.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A random u64 from the kernel (the advertisement counter starts there).
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    match getrandom(&mut b) {
        Ok(()) => u64::from_ne_bytes(b),
        Err(_) => monotonic_ns(),
    }
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    // SAFETY: getrandom writes at most buf.len() bytes into the buffer we own.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == buf.len() as isize {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Where the demoted groups of this network namespace are remembered.
fn demotions_path() -> PathBuf {
    PathBuf::from(format!(
        "/var/lib/vipd/netns-{}.demoted",
        crate::dataplane::netns_id()
    ))
}

/// The groups (interface, vhid) remembered as demoted; a missing or unreadable file is none.
fn load_demotions(path: &std::path::Path) -> Vec<(String, u8)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let (interface, vhid) = l.split_once(' ')?;
            Some((interface.to_owned(), vhid.trim().parse().ok()?))
        })
        .collect()
}

/// Remembers which groups are demoted with `--persist` (written to a temporary file, then
/// renamed).
fn save_demotions<E: Effects>(d: &Daemon<E>, path: &std::path::Path) {
    let text: String = d
        .members
        .iter()
        .filter(|m| {
            m.core.election().is_demoted()
                && d.persistent
                    .contains(&(m.cfg.interface.clone(), m.cfg.vhid))
        })
        .map(|m| format!("{} {}\n", m.cfg.interface, m.cfg.vhid))
        .collect();
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        warn!(path = %path.display(), error = %e, "cannot remember the demoted groups");
    }
}

/// The next tracker report, if there are trackers.
async fn next_tracker_event(
    events: &mut Option<tokio::sync::mpsc::Receiver<crate::trackers::TrackerEvent>>,
) -> Option<crate::trackers::TrackerEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next metrics scrape, if metrics are served.
async fn next_scrape(
    scrapes: &mut Option<tokio::sync::mpsc::Receiver<control::Pending>>,
) -> Option<control::Pending> {
    match scrapes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Tells systemd `state` (`Type=notify`) without stalling the event loop: a watchdog ping
/// is never waited for (when the service manager is slow to read, one is lost and the next
/// follows), READY and STOPPING wait at most 50 ms for room in its queue. An advertisement
/// is never delayed by a slow PID 1. `NOTIFY_SOCKET` may name an abstract socket (`@name`).
fn notify_systemd(state: sd_notify::NotifyState) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let addr = match path.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(&path),
    };
    let ping = matches!(state, sd_notify::NotifyState::Watchdog);
    let sent = UnixDatagram::unbound().and_then(|sock| {
        if ping {
            sock.set_nonblocking(true)?;
        } else {
            sock.set_write_timeout(Some(Duration::from_millis(50)))?;
        }
        sock.send_to_addr(format!("{state}\n").as_bytes(), &addr?)
    });
    if let Err(e) = sent {
        tracing::debug!(error = %e, %state, "systemd notification not sent");
    }
}

/// Half the watchdog period systemd asks for (`WATCHDOG_USEC`), if it asks.
fn watchdog_interval() -> Option<tokio::time::Interval> {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let mut every = tokio::time::interval(Duration::from_micros(usec / 2));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(every)
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// While a group drains, its connections are counted this often.
const DRAIN_CHECK: Duration = Duration::from_millis(100);

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// The two advertisement rings: known peers' first, then everyone else's.
struct Rings {
    peers: AsyncFd<RingBuf<MapData>>,
    others: AsyncFd<RingBuf<MapData>>,
}

impl Rings {
    /// Takes both rings, discarding what an adopted ring holds (received while no vipd
    /// listened: stale).
    fn open(dp: &mut Dataplane) -> Result<Rings> {
        let register = |ring: Option<RingBuf<MapData>>, what: &str| -> Result<_> {
            let mut ring = ring.with_context(|| format!("{what} ring buffer"))?;
            let mut stale = 0;
            while ring.next().is_some() {
                stale += 1;
            }
            if stale > 0 {
                info!(
                    records = stale,
                    ring = what,
                    "discarded advertisements queued while no vipd ran"
                );
            }
            // SAFETY: the ring buffer owns its fd and outlives the registration (both live
            // in the AsyncFd).
            unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
                .map_err(|e| anyhow::anyhow!("polling the {what} ring buffer: {e}"))
        };
        let peers = register(dp.take_peer_adverts(), "known peers'")?;
        let others = register(dp.take_adverts(), "advertisement")?;
        Ok(Rings { peers, others })
    }

    /// Waits until a ring has records and takes a bounded batch, the known peers' first.
    async fn readable(&mut self) -> std::io::Result<Vec<AdvertEvent>> {
        tokio::select! {
            biased;
            guard = self.peers.readable_mut() => Ok(drain_ready(guard?)),
            guard = self.others.readable_mut() => Ok(drain_ready(guard?)),
        }
    }

    /// What both rings hold now (a bounded batch of each), the known peers' first.
    fn drain_now(&mut self) -> Vec<AdvertEvent> {
        let mut events = drain(self.peers.get_mut());
        events.extend(drain(self.others.get_mut()));
        events
    }
}

/// Takes what the ring buffer holds once epoll reports it readable; re-arms the wait once
/// the ring is empty.
fn drain_ready(mut guard: AsyncFdReadyMutGuard<'_, RingBuf<MapData>>) -> Vec<AdvertEvent> {
    let events = drain(guard.get_inner_mut());
    if events.len() < RING_BATCH {
        guard.clear_ready();
    }
    events
}

/// At most this many records per wake-up: the loop then serves timers and requests, and
/// comes back for the rest.
const RING_BATCH: usize = 256;

fn drain(ring: &mut RingBuf<MapData>) -> Vec<AdvertEvent> {
    let mut out = Vec::new();
    while out.len() < RING_BATCH
        && let Some(item) = ring.next()
    {
        if item.len() >= std::mem::size_of::<AdvertEvent>() {
            // SAFETY: the XDP program writes whole AdvertEvent records.
            out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<AdvertEvent>()) });
        }
    }
    out
}

/// The Instant at which the kernel saw a frame, from its CLOCK_MONOTONIC stamp.
fn instant_of(rx_ns: u64) -> Instant {
    let now = Instant::now();
    let age = monotonic_ns().saturating_sub(rx_ns);
    now.checked_sub(Duration::from_nanos(age)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carp::{Advert, DEFAULT_GROUP, Key, build_ipv4};
    use crate::effects::{Effect, Recorder};
    use crate::election::State;
    use crate::executor::tests::{IFINDEX, member};

    pub(super) const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    pub(super) fn daemon(t0: Instant) -> Daemon<Recorder> {
        let links = HashMap::from([(IFINDEX, true)]);
        Daemon::new(vec![member(|_| {})], links, Recorder::default(), t0)
    }

    /// Group 1's advertisement from `src`, signed as the test member's peers sign it.
    pub(super) fn advert(src: Ipv4Addr, counter: u64, advbase: u8, advskew: u8) -> Vec<u8> {
        let vips = [Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101)];
        let adv = Advert::signed(1, advbase, advskew, 0, counter, &vips, &Key::new(b"secret"));
        build_ipv4(src, DEFAULT_GROUP, 1, &adv).to_vec()
    }

    fn leases(log: &[Effect]) -> Vec<bool> {
        log.iter()
            .filter_map(|e| match e {
                Effect::Lease { lease, .. } => Some(lease.is_some()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_replayed_advertisement_is_counted_and_changes_nothing() {
        let t0 = Instant::now();
        let mut d = daemon(t0);
        d.start(t0).await;
        d.fx.take();
        let ms = Duration::from_millis;
        d.on_advert(IFINDEX, &advert(PEER, 5, 1, 100), t0 + ms(10))
            .await;
        let deadline = d.next_deadline();
        // The master's advertisement, replayed from elsewhere with better timing.
        let forged = advert(Ipv4Addr::new(10, 0, 0, 66), 5, 0, 1);
        d.on_advert(IFINDEX, &forged, t0 + ms(20)).await;
        assert_eq!(d.next_deadline(), deadline, "master-down not re-armed");
        let s = d.status(t0 + ms(30), Vec::new());
        let g = &s.groups[0];
        assert_eq!((g.adverts_received, g.state.as_str()), (1, "BACKUP"));
        assert_eq!(g.master.as_deref(), Some("10.0.0.2"));
        assert_eq!(g.rejected, [("replayed".to_string(), 1)]);
        // An unknown group is counted apart.
        let mut other = advert(PEER, 6, 1, 100);
        other[21] = 9;
        d.on_advert(IFINDEX, &other, t0 + ms(40)).await;
        assert_eq!(d.status(t0, Vec::new()).unknown_group, 1);
        // Only the accepted source gets the known peers' ring, once.
        assert_eq!(
            d.fx.take(),
            [Effect::Peer {
                ifindex: IFINDEX,
                addr: PEER
            }]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn demote_hands_over_until_the_peer_advertises() {
        let t0 = Instant::now();
        let mut d = daemon(t0);
        d.start(t0).await;
        let t1 = d.next_deadline().unwrap();
        d.on_timers(t1).await;
        assert_eq!(d.members[0].core.state(), State::Master);
        assert_eq!(leases(&d.fx.take())[2..], [true, true]);
        let reply = d
            .on_request(
                Request::Demote {
                    target: Target::All,
                    persist: false,
                },
                t1,
            )
            .await;
        assert!(matches!(reply, Reply::Ok { ref changed } if changed == &[1]));
        let log = d.fx.take();
        // The bow-out leaves first, then the hand-over leases.
        assert!(matches!(log[0], Effect::Frame { .. }), "{log:?}");
        assert_eq!(leases(&log), [true, true]);
        assert!(d.handing_over());
        let peer_took_over = advert(PEER, 77, 1, 100);
        d.on_advert(IFINDEX, &peer_took_over, t1 + Duration::from_millis(3))
            .await;
        assert_eq!(leases(&d.fx.take()), [false, false]);
        assert!(!d.handing_over());
        let s = d.status(t1, Vec::new());
        assert!(s.groups[0].last_demote_at_unix_us.is_some());
        assert!(s.groups[0].demoted);
        // An unknown vhid is refused with a message.
        let r = d
            .on_request(
                Request::Promote {
                    target: Target::Vhid(9),
                },
                t1,
            )
            .await;
        assert!(matches!(r, Reply::Error { .. }));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn link_events_reach_the_election_at_once() {
        let t0 = Instant::now();
        let mut d = daemon(t0);
        d.start(t0).await;
        d.on_timers(d.next_deadline().unwrap()).await;
        d.fx.take();
        let down = LinkEvent::Changed {
            index: IFINDEX,
            running: false,
        };
        d.on_link(down.clone(), t0).await;
        assert_eq!(d.members[0].core.state(), State::Init);
        assert_eq!(leases(&d.fx.take()), [false, false]);
        // The same state again, or another interface: nothing.
        d.on_link(down, t0).await;
        d.on_link(LinkEvent::Removed { index: 99 }, t0).await;
        assert!(d.fx.take().is_empty());
        d.on_link(
            LinkEvent::Changed {
                index: IFINDEX,
                running: true,
            },
            t0,
        )
        .await;
        assert_eq!(d.members[0].core.state(), State::Backup);
    }
}

#[cfg(test)]
mod reload_tests {
    use super::*;
    use crate::effects::{Effect, Recorder};
    use crate::executor::tests::{IFINDEX, member};

    /// One group, MASTER, with its effects so far taken.
    async fn master() -> (Daemon<Recorder>, Instant) {
        let t0 = Instant::now();
        let links = HashMap::from([(IFINDEX, true)]);
        let mut d = Daemon::new(vec![member(|_| {})], links, Recorder::default(), t0);
        d.start(t0).await;
        let t1 = d.next_deadline().unwrap();
        d.on_timers(t1).await;
        assert_eq!(d.members[0].core.state(), State::Master);
        d.fx.take();
        (d, t1)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn new_settings_apply_in_place_without_a_transition() {
        let (mut d, t) = master().await;
        let transitions = d.members[0].counters.transitions;
        let cfg = member(|g| g.advskew = Some(50)).cfg;
        d.update(0, cfg, t).await;
        assert_eq!(d.members[0].core.state(), State::Master);
        assert_eq!(d.members[0].counters.transitions, transitions);
        assert!(d.fx.take().is_empty(), "nothing is sent or written at once");
        // The next advertisement carries the new advskew (byte 2 of the CARP header).
        let carp_dst = crate::garp::dst_mac(crate::carp::DEFAULT_GROUP);
        let mut skews = Vec::new();
        while skews.is_empty() {
            let next = d.next_deadline().unwrap();
            d.on_timers(next).await;
            skews.extend(d.fx.take().into_iter().filter_map(|e| match e {
                Effect::Frame { frame, .. } if frame[..6] == carp_dst => Some(frame[14 + 20 + 2]),
                _ => None,
            }));
        }
        assert_eq!(skews, [50]);
        assert_eq!(d.members[0].core.state(), State::Master);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_removed_master_hands_over_and_leaves_once_the_peer_took_over() {
        let (mut d, t) = master().await;
        d.retire(0, t).await;
        assert!(d.reloading());
        assert!(d.take_retired().is_empty(), "still handing over");
        let log = d.fx.take();
        assert!(
            matches!(log[0], Effect::Frame { .. }),
            "bow-out first: {log:?}"
        );
        let peer = super::tests::advert(super::tests::PEER, 9, 1, 100);
        d.on_advert(IFINDEX, &peer, t + Duration::from_millis(3))
            .await;
        let gone = d.take_retired();
        assert_eq!(gone.len(), 1);
        assert!(d.members.is_empty() && !d.reloading());
        // Its advertisements now belong to no group.
        d.on_advert(IFINDEX, &peer, t + Duration::from_millis(4))
            .await;
        assert_eq!(d.status(t, Vec::new()).unknown_group, 1);
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::config::TrackRef;
    use crate::effects::Recorder;
    use crate::executor::tests::{IFINDEX, member};
    use crate::group::TrackerUpdate;

    /// Two groups of sync group "edge" on one interface, both MASTER; the first tracks
    /// "web" (required).
    async fn pair() -> (Daemon<Recorder>, Instant) {
        pair_tracking(None).await
    }

    /// As [`pair`], "web" with `weight`.
    async fn pair_tracking(weight: Option<u32>) -> (Daemon<Recorder>, Instant) {
        let first = member(|g| {
            g.sync_group = Some("edge".into());
            g.track = vec![TrackRef {
                tracker: "web".into(),
                weight,
            }];
        });
        let second = member(|g| {
            g.vhid = Some(2);
            g.vips = vec!["10.0.0.102/24".into()];
            g.sync_group = Some("edge".into());
        });
        let t0 = Instant::now();
        let links = HashMap::from([(IFINDEX, true)]);
        let mut d = Daemon::new(vec![first, second], links, Recorder::default(), t0);
        d.start(t0).await;
        let t1 = d.next_deadline().unwrap();
        d.on_timers(t1).await;
        assert!(d.members.iter().all(|m| m.core.state() == State::Master));
        (d, t1)
    }

    fn states(d: &Daemon<Recorder>) -> Vec<State> {
        d.members.iter().map(|m| m.core.state()).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_fault_in_one_group_puts_its_sync_group_in_fault_and_back() {
        let (mut d, t) = pair().await;
        d.on_tracker("web", TrackerUpdate::Health(false), t).await;
        assert_eq!(states(&d), [State::Fault, State::Fault]);
        d.on_tracker("web", TrackerUpdate::Health(true), t).await;
        assert_eq!(states(&d), [State::Backup, State::Backup]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_sync_group_advertises_the_demotion_of_its_worst_member() {
        let (mut d, t) = pair_tracking(Some(200)).await;
        d.on_tracker("web", TrackerUpdate::Health(false), t).await;
        let skews: Vec<u8> = d
            .members
            .iter()
            .map(|m| m.core.election().advert_fields().1)
            .collect();
        assert_eq!(skews, [200, 200], "a better member never preempts back");
        d.on_tracker("web", TrackerUpdate::Health(true), t).await;
        assert_eq!(d.members[1].core.election().advert_fields().1, 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_group_removed_by_a_reload_leaves_its_sync_group_in_place() {
        let (mut d, t) = pair().await;
        d.retire(0, t).await;
        assert_eq!(states(&d)[1], State::Master, "the other member stays");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn leaving_master_takes_the_sync_group_along_once() {
        let (mut d, t) = pair().await;
        d.on_request(
            Request::Demote {
                target: Target::Vhid(1),
                persist: false,
            },
            t,
        )
        .await;
        assert_eq!(states(&d), [State::Backup, State::Backup]);
        assert!(d.members[0].core.election().is_demoted());
        assert!(
            !d.members[1].core.election().is_demoted(),
            "the other group steps down, it is not demoted"
        );
        // It may win its group again later; that moves nobody else.
        let later = t + Duration::from_secs(10);
        d.on_timers(later).await;
        assert_eq!(states(&d), [State::Backup, State::Master]);
    }
}

#[cfg(test)]
mod drain_tests {
    use super::tests::{PEER, advert, daemon};
    use super::*;
    use crate::effects::Effect;
    use crate::executor::tests::IFINDEX;

    #[tokio::test(flavor = "current_thread")]
    async fn a_take_over_from_a_bow_out_forwards_to_the_mac_of_the_masters_advertisements() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = daemon(t0);
        d.start(t0).await;
        let (mac_a, mac_x) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0x66]);
        d.on_advert_from(IFINDEX, Some(mac_a), &advert(PEER, 5, 1, 0), t0 + ms(10))
            .await;
        // Its MAC is a peer's: the kernel never forwards what it sends.
        assert!(d.fx.take().contains(&Effect::PeerMac {
            ifindex: IFINDEX,
            mac: mac_a
        }));
        // The bow-out arrives from another MAC (a MAC is not signed): the forwarding goes
        // to the MAC of the advertisements the node followed.
        let at = t0 + ms(20);
        d.on_advert_from(IFINDEX, Some(mac_x), &advert(PEER, 6, 255, 255), at)
            .await;
        assert_eq!(d.members[0].core.state(), State::Master);
        let forwards: Vec<_> =
            d.fx.take()
                .into_iter()
                .filter_map(|e| match e {
                    Effect::Forward { vip, target, .. } => Some((vip, target)),
                    _ => None,
                })
                .collect();
        let target = crate::effects::ForwardTarget {
            vhid: 1,
            peer: PEER,
            peer_mac: mac_a,
            own_mac: crate::executor::tests::MAC,
            until: at + Duration::from_secs(60),
            tail: false,
        };
        assert_eq!(
            forwards,
            [
                (Ipv4Addr::new(10, 0, 0, 100), Some(target)),
                (Ipv4Addr::new(10, 0, 0, 101), Some(target))
            ]
        );
        let g = &d.status(at, Vec::new()).groups[0];
        let f = g.forwarding.as_ref().unwrap();
        assert_eq!(
            (f.to.as_str(), f.mac.as_deref()),
            ("10.0.0.2", Some("02:00:00:00:00:0a"))
        );
        // Handing over in turn: a tail without owning the VIPs, then nothing.
        let demoted = at + ms(1);
        d.on_request(
            Request::Demote {
                target: Target::All,
                persist: false,
            },
            demoted,
        )
        .await;
        let tail = crate::effects::ForwardTarget {
            until: demoted + Duration::from_secs(3),
            tail: true,
            ..target
        };
        let tails =
            d.fx.take()
                .into_iter()
                .filter(|e| matches!(e, Effect::Forward { target: Some(t), .. } if *t == tail))
                .count();
        assert_eq!(tails, 2);
        d.on_timers(tail.until).await;
        let stops =
            d.fx.take()
                .into_iter()
                .filter(|e| matches!(e, Effect::Forward { target: None, .. }))
                .count();
        assert_eq!(stops, 2);
        assert!(d.status(at, Vec::new()).groups[0].forwarding.is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_drain_request_shows_draining_until_the_connections_close_or_its_limit() {
        let t0 = Instant::now();
        let mut d = daemon(t0);
        d.start(t0).await;
        let t1 = d.next_deadline().unwrap();
        d.on_timers(t1).await;
        d.fx.connections = HashMap::from([(Ipv4Addr::new(10, 0, 0, 100), 2)]);
        let drain = Request::Drain {
            target: Target::All,
            persist: false,
            limit_ms: Some(5000),
        };
        d.on_request(drain.clone(), t1).await;
        assert_eq!(d.members[0].core.state(), State::Backup);
        assert_eq!(d.drain_due(), Some(t1));
        d.check_drains(t1).await;
        let g = &d.status(t1, Vec::new()).groups[0];
        assert_eq!(g.state, "DRAINING");
        let left = g.draining.as_ref().unwrap();
        assert_eq!((left.connections, left.remaining_secs), (Some(2), 5.0));
        assert_eq!(d.drain_due(), Some(t1 + DRAIN_CHECK));
        // The connections closed.
        d.fx.connections.clear();
        d.check_drains(t1 + DRAIN_CHECK).await;
        let g = &d.status(t1, Vec::new()).groups[0];
        assert_eq!((g.state.as_str(), g.draining.is_none()), ("BACKUP", true));
        assert_eq!(d.drain_due(), None);
        // A connection that stays: the limit ends the drain.
        d.fx.connections = HashMap::from([(Ipv4Addr::new(10, 0, 0, 101), 1)]);
        let t2 = t1 + Duration::from_secs(1);
        d.on_request(drain, t2).await;
        d.check_drains(t2).await;
        assert!(d.draining());
        d.on_timers(t2 + Duration::from_secs(5)).await;
        assert!(!d.draining());
        assert_eq!(d.status(t2, Vec::new()).groups[0].state, "BACKUP");
    }
}
