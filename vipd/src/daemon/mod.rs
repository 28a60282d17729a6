//! The daemon: every group's member state and the one place their events are handled.
//! [`build`] makes it, [`run`] is the event loop; the core ([`crate::protocol::group`])
//! decides, the [`executor`] carries out its commands through the [`effects`] boundary.
//! Data flows one way: event -> core -> executor -> effects.
//!
//! Owns the members and their bookkeeping (reload, drain, demotions); decides nothing the
//! core decides, and touches the system only through [`effects::Effects`].
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use tracing::{info, warn};

use crate::config::GroupConfig;
use crate::kernel::dataplane::XdpPreference;
use crate::kernel::netlink::{LinkEvent, LinkInfo};
use crate::ops::control::{GroupStatus, InterfaceStatus, Reply, Request, Status, Target};
use crate::protocol::election::{Event, State};
use crate::protocol::group::{self, Command, Settings};
use crate::protocol::rx::Receiver;
use build::params_of;
use effects::Effects;
use executor::Member;
use vipd_common::IPV4_HLEN;

mod build;
pub(crate) mod effects;
pub(crate) mod executor;
#[cfg(test)]
pub(crate) mod recorder;
mod reload;
mod run;
mod status;
#[cfg(test)]
mod tests;

pub use build::{build, start};
pub use run::run;

/// While a group drains, its connections are counted this often.
const DRAIN_CHECK: Duration = Duration::from_millis(100);

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
    pending: Vec<(GroupConfig, LinkInfo, Ipv4Addr)>,
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

    /// Groups demoted with `persist`, as (interface, vhid): remembered across restarts.
    pub fn persisted(&self) -> impl Iterator<Item = (&str, u8)> {
        self.members
            .iter()
            .filter(|m| {
                m.core.election().is_demoted()
                    && self
                        .persistent
                        .contains(&(m.cfg.interface.clone(), m.cfg.vhid))
            })
            .map(|m| (m.cfg.interface.as_str(), m.cfg.vhid))
    }

    /// Whether a reload's removed or replaced groups are still handing over.
    pub fn reloading(&self) -> bool {
        !self.retiring.is_empty() || !self.pending.is_empty()
    }

    /// Applies group `i`'s new settings in place (a reload): its state stays.
    pub async fn update(&mut self, i: usize, g: GroupConfig, now: Instant) {
        let m = &mut self.members[i];
        if g.key != m.cfg.key || g.coverage != m.cfg.coverage {
            warn!(group = %m.label(), "new password or authentication: peers must change it too, \
                or they stop accepting each other's advertisements");
            m.rx = Receiver::new(m.label(), &g, m.core.params().local_addr);
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
    pub fn blocks(&self, g: &GroupConfig, index: u32) -> bool {
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
            let bow_out = crate::protocol::carp::is_bow_out(adv.advbase, adv.advskew);
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
