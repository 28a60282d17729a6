//! One CARP group's whole protocol, pure: the election, its timers, and what the node does
//! about the VIPs (ownership leases, graceful hand-over, gratuitous ARP, scripts).
//!
//! Events and the current instant go in, [`Command`]s come out; nothing here reads a clock
//! or touches the kernel, so every rule that decides who answers ARP for a VIP has a
//! virtual-clock test. The daemon carries the commands out through its executor.
//!
//! Ownership rules:
//! - A MASTER owns its VIPs with a lease written into the XDP map: firm until master-down
//!   after the last advertisement sent, then a grace of one more master-down during which
//!   the kernel keeps answering only while no other node has advertised the group. A late
//!   timer therefore never leaves a hole, and a dead vipd stops claiming as soon as a peer
//!   that took over advertises (peers take over one master-down after the last
//!   advertisement they heard).
//! - The lease is renewed with every regular advertisement.
//! - A bow-out (demotion, shutdown) hands over gracefully: the VIPs stay answered until a
//!   peer advertises, in the kernel at once and here on the advertisement, or until
//!   master-down has passed. Losing the election to a better master releases at once.
//! - Gratuitous ARP: a burst of `garp_count` on taking over, one every `garp_interval`;
//!   optionally repeated every `garp_refresh` while MASTER; a burst again when another node
//!   claims the group and loses to us (after our advertisement that makes it step down).
//! - The down script does not run at shutdown unless asked (ucarp's `-z`).
//! - Connections survive a graceful hand-off: a node that takes over because the master it
//!   followed bowed out forwards, for `drain_limit`, the TCP segments for the VIPs that
//!   belong to no connection of its own to that previous master (its address from the
//!   advertisement, its MAC from the frame); it stops at the limit, at once when its link
//!   goes, and after a short tail (master-down at most) when it leaves MASTER otherwise
//!   (a bow-out, a better master): clients still send to it until they have processed
//!   the next master's gratuitous ARP. Only the previous master of this group is ever a
//!   target, and the kernel never forwards a segment a CARP peer sent, so no segment is
//!   forwarded twice.
//! - A node asked to drain (`vipd demote --drain`, a stop) stays DRAINING until its
//!   connections to the VIPs have closed (the daemon counts them) or its limit passes;
//!   taking over again ends it.
use std::time::{Duration, Instant};

use crate::protocol::election::{self, Action, Event, Hook, Params, Reason, State, Timer};

/// What the group needs beyond the election's parameters.
#[derive(Clone, Debug)]
pub struct Settings {
    pub garp_count: u32,
    pub garp_interval: Duration,
    /// Announce the VIPs again this often while MASTER (`None`: only on taking over).
    pub garp_refresh: Option<Duration>,
    /// Run the down script when the group stops (ucarp's `-z`).
    pub shutdown_script: bool,
    /// Add the VIP addresses on taking over and remove them on letting go (ucarp's way),
    /// instead of keeping them configured and deciding ownership in XDP only.
    pub move_addresses: bool,
    /// The trackers the group depends on.
    pub tracks: Vec<Track>,
    /// How long a graceful take-over forwards the previous master's connections (zero:
    /// never).
    pub drain_limit: Duration,
}

impl Settings {
    /// A configured group's settings; a member of a sync group also depends on the sync
    /// group's tracker.
    pub fn of(g: &crate::config::GroupConfig) -> Settings {
        Settings {
            garp_count: g.garp_count,
            garp_interval: g.garp_interval,
            garp_refresh: g.garp_refresh,
            shutdown_script: g.shutdown_script,
            move_addresses: g.address_mode == crate::config::AddressMode::Move,
            tracks: g
                .track
                .iter()
                .map(|t| Track {
                    tracker: t.tracker.clone(),
                    weight: t.weight,
                })
                .chain(g.sync_group.iter().map(|name| Track {
                    tracker: format!("{SYNC_TRACKER}{name}"),
                    weight: None,
                }))
                .collect(),
            drain_limit: g.drain_limit,
        }
    }
}

/// A tracker a group depends on: with a weight, its failure adds the weight to the group's
/// demotion (a file tracker adds value × weight); without one, its failure (a file
/// tracker's value other than 0) puts the group in FAULT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    pub tracker: String,
    pub weight: Option<u32>,
}

/// The prefix of the tracker a sync group's members depend on: `sync:<group>` is down
/// while a member of the group is in FAULT because of its own trackers. (Tracker names
/// from configuration cannot contain ':'.)
pub const SYNC_TRACKER: &str = "sync:";

/// What a tracker reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerUpdate {
    Health(bool),
    Value(i64),
}

/// The last report of every tracker the group depends on; a tracker not heard from yet
/// counts as healthy.
#[derive(Clone, Debug, Default)]
struct Tracking {
    health: std::collections::HashMap<String, bool>,
    values: std::collections::HashMap<String, i64>,
    /// The largest demotion of the group's sync group: members advertise at least it, so
    /// that a sync group is only as good as its worst member.
    sync_floor: u8,
}

impl Tracking {
    fn failed(&self, tracker: &str) -> bool {
        self.health.get(tracker) == Some(&false)
    }

    /// Down: failed, or (a file tracker) holding a value other than 0.
    fn down(&self, tracker: &str) -> bool {
        self.failed(tracker) || self.values.get(tracker).is_some_and(|v| *v != 0)
    }

    fn faulted(&self, tracks: &[Track]) -> bool {
        tracks
            .iter()
            .filter(|t| t.weight.is_none())
            .any(|t| self.down(&t.tracker))
    }

    /// The sum of the weights of the failed trackers, at most 254, and at least the sync
    /// group's floor.
    fn demotion(&self, tracks: &[Track]) -> u8 {
        self.own_demotion(tracks).max(self.sync_floor)
    }

    /// The sum of the weights of the failed trackers, at most 254.
    fn own_demotion(&self, tracks: &[Track]) -> u8 {
        let sum: i64 = tracks
            .iter()
            .filter_map(|t| t.weight.map(|w| (t, i64::from(w))))
            .map(|(t, w)| {
                if self.failed(&t.tracker) {
                    w
                } else {
                    self.values
                        .get(&t.tracker)
                        .map_or(0, |v| v.saturating_mul(w).max(0))
                }
            })
            .fold(0i64, i64::saturating_add);
        sum.clamp(0, 254) as u8
    }
}

/// An ownership lease as the XDP program reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// When this lease was written: a peer's advertisement after it ends the grace.
    pub renewed: Instant,
    /// Owned unconditionally until then.
    pub firm_until: Instant,
    /// Then owned until this instant as long as no other node has advertised the group
    /// since `renewed`.
    pub grace_until: Instant,
}

/// What the daemon must do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send one advertisement with these fields (255/255 is a bow-out).
    SendAdvert {
        advbase: u8,
        advskew: u8,
        demote: u8,
    },
    /// Take the VIPs: write this lease for every VIP of the group.
    Take(Lease),
    /// Renew the lease of every VIP.
    Renew(Lease),
    /// Bowed out: write this lease, which holds only until a peer advertises.
    HandOver(Lease),
    /// Mark every VIP of the group not owned.
    Release,
    /// One gratuitous ARP for every VIP.
    Garp,
    /// Add the VIP addresses (address mode "move").
    AddAddresses,
    /// Remove the VIP addresses vipd added (address mode "move").
    RemoveAddresses,
    /// Run the user's script.
    Script(Hook),
    /// The state changed.
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
    /// Forward the TCP segments for the VIPs that belong to no connection of this node to
    /// the previous master `to`, until `until`.
    Forward {
        to: std::net::Ipv4Addr,
        until: Instant,
    },
    /// Keep forwarding to `to` until `until` without owning the VIPs: this node has just
    /// handed them over, and clients still send to it for a moment.
    ForwardTail {
        to: std::net::Ipv4Addr,
        until: Instant,
    },
    /// Forward nothing any more.
    StopForwarding,
    /// Count this node's connections to the VIPs and report when none is left
    /// ([`GroupCore::drained`]); the drain ends at `until` anyway.
    Drain { until: Instant },
    /// The drain ended: every connection closed, or (`limit`) the limit passed, or the
    /// node took the VIPs again.
    Drained { limit: bool },
}

/// A graceful take-over's forwarding: to whom, until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarding {
    pub to: std::net::Ipv4Addr,
    pub until: Instant,
}

/// Where the node stands with the VIPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    Released,
    Owned {
        lease: Lease,
    },
    /// Bowed out: answering until a peer takes over, or until `until`.
    HandingOver {
        until: Instant,
    },
}

/// The group's deadlines; arming one replaces its previous value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Timers {
    advert: Option<Instant>,
    master_down: Option<Instant>,
    garp: Option<Instant>,
    garp_refresh: Option<Instant>,
    release: Option<Instant>,
    forward: Option<Instant>,
    drain: Option<Instant>,
    /// Address mode "move": when the addresses kept after a graceful hand-over go.
    remove_addresses: Option<Instant>,
}

impl Timers {
    fn next(&self) -> Option<Instant> {
        [
            self.advert,
            self.master_down,
            self.garp,
            self.garp_refresh,
            self.release,
            self.forward,
            self.drain,
            self.remove_addresses,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// One group: election, timers and ownership.
#[derive(Clone, Debug)]
pub struct GroupCore {
    election: election::Election,
    settings: Settings,
    timers: Timers,
    ownership: Ownership,
    garps_left: u32,
    tracking: Tracking,
    /// Longest an advertisement left after its due time (how close the node came to a
    /// false failover: the peer's margin is master-down − interval).
    worst_advert_delay: Duration,
    /// Forwarding the previous master's connections (a graceful take-over).
    forwarding: Option<Forwarding>,
    /// Draining until this instant.
    draining: Option<Instant>,
}

impl GroupCore {
    pub fn new(params: Params, settings: Settings) -> GroupCore {
        GroupCore {
            election: election::Election::new(params),
            settings,
            timers: Timers::default(),
            ownership: Ownership::Released,
            garps_left: 0,
            tracking: Tracking::default(),
            worst_advert_delay: Duration::ZERO,
            forwarding: None,
            draining: None,
        }
    }

    /// Where and until when this node forwards the previous master's connections.
    pub fn forwarding(&self) -> Option<Forwarding> {
        self.forwarding
    }

    /// Draining until this instant.
    pub fn draining(&self) -> Option<Instant> {
        self.draining
    }

    /// Starts draining at `now` for at most `limit` (`vipd demote --drain`, a stop): the
    /// daemon counts the connections to the VIPs and reports [`GroupCore::drained`]. A MASTER
    /// does not drain: its connections are its own.
    pub fn start_drain(&mut self, limit: Duration, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        if self.state() == State::Master {
            return out;
        }
        let until = now + limit;
        self.draining = Some(until);
        self.timers.drain = Some(until);
        out.push(Command::Drain { until });
        out
    }

    /// The daemon found no connection left to the VIPs: the drain ends.
    pub fn drained(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        self.end_drain(false, &mut out);
        out
    }

    fn end_drain(&mut self, limit: bool, out: &mut Vec<Command>) {
        self.timers.drain = None;
        if self.draining.take().is_some() {
            out.push(Command::Drained { limit });
            // Address mode "move": the addresses kept for the drain go now.
            if self.timers.remove_addresses.take().is_some() {
                out.push(Command::RemoveAddresses);
            }
        }
    }

    /// Bowed out while forwarding: go on, without owning the VIPs, for master-down at
    /// most (the longest the hand-over lasts), never past the forwarding's own limit.
    fn forward_tail(&mut self, now: Instant, out: &mut Vec<Command>) {
        let Some(f) = self.forwarding else {
            return;
        };
        let until = f.until.min(now + self.election.master_down());
        self.forwarding = Some(Forwarding { to: f.to, until });
        self.timers.forward = Some(until);
        out.push(Command::ForwardTail { to: f.to, until });
    }

    fn stop_forwarding(&mut self, out: &mut Vec<Command>) {
        self.timers.forward = None;
        if self.forwarding.take().is_some() {
            out.push(Command::StopForwarding);
        }
    }

    pub fn election(&self) -> &election::Election {
        &self.election
    }

    pub fn state(&self) -> State {
        self.election.state()
    }

    pub fn params(&self) -> &Params {
        self.election.params()
    }

    pub fn ownership(&self) -> Ownership {
        self.ownership
    }

    /// Still answering for VIPs it bowed out of.
    pub fn is_handing_over(&self) -> bool {
        matches!(self.ownership, Ownership::HandingOver { .. })
    }

    pub fn worst_advert_delay(&self) -> Duration {
        self.worst_advert_delay
    }

    /// The next instant at which [`GroupCore::tick`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Feeds one event that happened at `now`.
    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        self.feed(event, now, &mut out);
        if let Event::Advert {
            src,
            advbase,
            advskew,
            ..
        } = event
        {
            let bow_out = crate::protocol::carp::is_bow_out(advbase, advskew);
            let from_peer = src != self.params().local_addr;
            if from_peer && !bow_out && self.is_handing_over() && self.state() != State::Master {
                self.release(now, &mut out);
            }
        }
        out
    }

    /// New parameters and settings at `now` (a reload): the state stays, the next
    /// advertisement carries them, and a changed demotion is advertised at once. Reports
    /// of trackers the group no longer depends on are forgotten.
    pub fn reconfigure(
        &mut self,
        params: Params,
        settings: Settings,
        now: Instant,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        self.election.set_params(params);
        self.tracking
            .health
            .retain(|t, _| settings.tracks.iter().any(|k| &k.tracker == t));
        self.tracking
            .values
            .retain(|t, _| settings.tracks.iter().any(|k| &k.tracker == t));
        if self.settings.garp_refresh != settings.garp_refresh {
            self.timers.garp_refresh = match (self.state(), settings.garp_refresh) {
                (State::Master, Some(r)) => Some(now + r),
                _ => None,
            };
        }
        self.settings = settings;
        self.follow_trackers(now, &mut out);
        out
    }

    /// The demotion from its own trackers (not its sync group's floor).
    pub fn own_demotion(&self) -> u8 {
        self.tracking.own_demotion(&self.settings.tracks)
    }

    /// Sets the sync group's demotion floor at `now` (the largest demotion of its members).
    pub fn set_sync_floor(&mut self, floor: u8, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        self.tracking.sync_floor = floor;
        self.advertise_demotion(now, &mut out);
        out
    }

    /// In FAULT because of a tracker of its own (not its sync group's).
    pub fn faulted_by_own_trackers(&self) -> bool {
        let own: Vec<Track> = self
            .settings
            .tracks
            .iter()
            .filter(|t| !t.tracker.starts_with(SYNC_TRACKER))
            .cloned()
            .collect();
        self.tracking.faulted(&own)
    }

    /// The trackers the group depends on that are failing now (a file tracker: a value
    /// other than 0).
    pub fn failing(&self) -> Vec<String> {
        self.settings
            .tracks
            .iter()
            .filter(|t| self.tracking.down(&t.tracker))
            .map(|t| t.tracker.clone())
            .collect()
    }

    /// A tracker reported at `now`: the group goes to FAULT, leaves it, or changes its
    /// demotion when the trackers it depends on say so.
    pub fn track(&mut self, tracker: &str, update: TrackerUpdate, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        if !self.settings.tracks.iter().any(|t| t.tracker == tracker) {
            return out;
        }
        match update {
            TrackerUpdate::Health(ok) => {
                self.tracking.health.insert(tracker.to_owned(), ok);
            }
            TrackerUpdate::Value(v) => {
                // Readable again, if it was not.
                self.tracking.health.remove(tracker);
                self.tracking.values.insert(tracker.to_owned(), v);
            }
        }
        self.follow_trackers(now, &mut out);
        out
    }

    /// Advertises the demotion the trackers add up to, and goes to FAULT or leaves it as
    /// they say.
    fn follow_trackers(&mut self, now: Instant, out: &mut Vec<Command>) {
        let faulted = self.tracking.faulted(&self.settings.tracks);
        self.advertise_demotion(now, out);
        if faulted != self.election.is_faulted() {
            let event = if faulted {
                Event::Fault
            } else {
                Event::Recover
            };
            self.feed(event, now, out);
        }
    }

    /// Gives the election the demotion the trackers add up to, if it changed.
    fn advertise_demotion(&mut self, now: Instant, out: &mut Vec<Command>) {
        let demotion = self.tracking.demotion(&self.settings.tracks);
        if demotion != self.election.demotion() {
            self.feed(Event::SetDemotion(demotion), now, out);
        }
    }

    /// Fires every timer due at `now`.
    pub fn tick(&mut self, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.timers.master_down) {
            self.timers.master_down = None;
            self.feed(Event::MasterDownTimer, now, &mut out);
        }
        if let Some(at) = self.timers.advert.filter(|t| *t <= now) {
            self.timers.advert = None;
            self.worst_advert_delay = self.worst_advert_delay.max(now - at);
            self.feed(Event::AdvertTimer, now, &mut out);
        }
        if due(self.timers.garp) {
            self.send_garp(now, &mut out);
        }
        if due(self.timers.garp_refresh) {
            self.timers.garp_refresh = self.settings.garp_refresh.map(|r| now + r);
            out.push(Command::Garp);
        }
        if due(self.timers.release) {
            self.release(now, &mut out);
        }
        if due(self.timers.forward) {
            self.stop_forwarding(&mut out);
        }
        if due(self.timers.drain) {
            self.end_drain(true, &mut out);
        }
        if due(self.timers.remove_addresses) {
            self.timers.remove_addresses = None;
            out.push(Command::RemoveAddresses);
        }
        out
    }

    fn feed(&mut self, event: Event, now: Instant, out: &mut Vec<Command>) {
        for action in self.election.step(event) {
            self.apply(action, event, now, out);
        }
    }

    fn apply(&mut self, action: Action, event: Event, now: Instant, out: &mut Vec<Command>) {
        match action {
            Action::SendAdvert {
                advbase,
                advskew,
                demote,
            } => {
                out.push(Command::SendAdvert {
                    advbase,
                    advskew,
                    demote,
                });
                let bow_out = crate::protocol::carp::is_bow_out(advbase, advskew);
                let renews = !bow_out && self.state() == State::Master;
                if renews && matches!(self.ownership, Ownership::Owned { .. }) {
                    let lease = self.lease(now);
                    if self.ownership != (Ownership::Owned { lease }) {
                        self.ownership = Ownership::Owned { lease };
                        out.push(Command::Renew(lease));
                    }
                }
            }
            Action::Arm { timer, after } => *self.timer(timer) = Some(now + after),
            Action::Cancel(timer) => *self.timer(timer) = None,
            Action::Transition { from, to, reason } => {
                out.push(Command::Transition { from, to, reason });
            }
            Action::BecomeMaster => {
                self.timers.release = None;
                self.timers.remove_addresses = None;
                let lease = self.lease(now);
                self.ownership = Ownership::Owned { lease };
                out.push(Command::Take(lease));
                if self.settings.move_addresses {
                    out.push(Command::AddAddresses);
                }
                // Taking the VIPs again ends a drain: the connections are ours again.
                self.end_drain(false, out);
                // The master we followed bowed out: its connections go on through us, from
                // before the first gratuitous ARP turns the clients to us. Any other
                // take-over forwards nothing (a tail of our own hand-over ends).
                if let Event::Advert {
                    src,
                    advbase,
                    advskew,
                    ..
                } = event
                    && crate::protocol::carp::is_bow_out(advbase, advskew)
                    && !self.settings.drain_limit.is_zero()
                {
                    let until = now + self.settings.drain_limit;
                    self.forwarding = Some(Forwarding { to: src, until });
                    self.timers.forward = Some(until);
                    out.push(Command::Forward { to: src, until });
                } else {
                    self.stop_forwarding(out);
                }
                self.garps_left = self.settings.garp_count;
                self.send_garp(now, out);
                self.timers.garp_refresh = self.settings.garp_refresh.map(|r| now + r);
            }
            Action::Reannounce => {
                self.garps_left = self.settings.garp_count;
                self.send_garp(now, out);
            }
            Action::BecomeBackup { bowed_out } => {
                self.stop_garps();
                // Only a MASTER forwards, and one that has just left MASTER with its link
                // up (a bow-out, a better master), for a tail: clients still send to it
                // until they follow the next master's gratuitous ARP.
                if bowed_out || matches!(event, Event::Advert { .. }) {
                    self.forward_tail(now, out);
                } else {
                    self.stop_forwarding(out);
                }
                if bowed_out && matches!(self.ownership, Ownership::Owned { .. }) {
                    let until = now + self.election.master_down();
                    self.ownership = Ownership::HandingOver { until };
                    self.timers.release = Some(until);
                    out.push(Command::HandOver(Lease {
                        renewed: now,
                        firm_until: now,
                        grace_until: until,
                    }));
                } else {
                    self.release(now, out);
                }
            }
            Action::RunHook(hook) => {
                let stopping = matches!(event, Event::Shutdown);
                if !(hook == Hook::Down && stopping && !self.settings.shutdown_script) {
                    out.push(Command::Script(hook));
                }
            }
        }
    }

    fn timer(&mut self, timer: Timer) -> &mut Option<Instant> {
        match timer {
            Timer::Advert => &mut self.timers.advert,
            Timer::MasterDown => &mut self.timers.master_down,
        }
    }

    /// A MASTER's lease from `now`: firm for master-down, then a grace of master-down.
    fn lease(&self, now: Instant) -> Lease {
        // The master-down peers wait for us, demotion included.
        let md = self.election.master_down();
        Lease {
            renewed: now,
            firm_until: now + md,
            grace_until: now + md + md,
        }
    }

    fn release(&mut self, now: Instant, out: &mut Vec<Command>) {
        let graceful = self.is_handing_over();
        self.timers.release = None;
        self.stop_garps();
        self.ownership = Ownership::Released;
        out.push(Command::Release);
        if self.settings.move_addresses {
            if graceful && !self.settings.drain_limit.is_zero() {
                // After a graceful hand-over the next master forwards our connections to
                // us: the addresses stay until its forwarding ends (or our drain does).
                self.timers.remove_addresses = Some(now + self.settings.drain_limit);
            } else {
                self.timers.remove_addresses = None;
                out.push(Command::RemoveAddresses);
            }
        }
    }

    fn send_garp(&mut self, now: Instant, out: &mut Vec<Command>) {
        if self.garps_left == 0 || !matches!(self.ownership, Ownership::Owned { .. }) {
            self.timers.garp = None;
            return;
        }
        self.garps_left -= 1;
        self.timers.garp = (self.garps_left > 0).then(|| now + self.settings.garp_interval);
        out.push(Command::Garp);
    }

    fn stop_garps(&mut self) {
        self.garps_left = 0;
        self.timers.garp = None;
        self.timers.garp_refresh = None;
    }
}

#[cfg(test)]
mod tests;
