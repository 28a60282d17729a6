//! The CARP election of one group, following ucarp 1.5.2 (src/carp.c: `carp_set_state`,
//! `carp_setrun`, `carp_master_down`, `packethandler`) and OpenBSD's ip_carp.c
//! (`carp_set_state`, `carp_proto_input_c`, `carp_master_down`) where ucarp has no rule
//! (demote count, bow-out).
//!
//! It is pure: `(state, event, now) -> (state, actions)` with no I/O and no clock reads. The
//! caller passes `now`, feeds timer expiries and received advertisements as events, and
//! carries out the returned [`Action`]s in order. Every state change goes through one
//! function, `Election::set_state`, which emits exactly one [`Action::Transition`].
//!
//! Rules, with where they come from:
//! - Start: INIT -> BACKUP, master-down armed; the down hook runs on entering BACKUP unless
//!   neutral (`-n`) — ucarp's `carp_set_state(BACKUP)` skips the downscript only when
//!   coming from INIT in neutral mode.
//! - Master-down = dead_ratio × advbase + advskew/256 s (ucarp `carp_setrun`, `-r`).
//! - An advertiser ranks by (demote count, advbase + advskew/256, source address); lower
//!   wins. The demote count comes first as in OpenBSD; ucarp sends 0 and ignores it. The
//!   address tie-break is ucarp's (OpenBSD has none): a MASTER steps down when an equal
//!   interval comes from a source whose raw `s_addr` is lower than ours, i.e. the
//!   network-order bytes read as a host integer (on little-endian hosts the last octet
//!   weighs most).
//! - BACKUP on an advertisement: take over at once on a bow-out (255/255), on a higher
//!   demote count (OpenBSD, regardless of preemption), on a slower interval with `-P`
//!   (ucarp and OpenBSD compare intervals only, never addresses, for preemption), or when
//!   the peer's interval exceeds our master-down (ucarp "going to time out"); otherwise
//!   re-arm master-down — also for a worse peer without `-P`, as ucarp's `carp_setrun`.
//! - MASTER stepping down first sends one more advertisement, as ucarp does ("to be really
//!   sure the new master knows that it has to reassert control of the VIP").
//! - Administrative demotion (ucarp's SIGUSR2, made persistent): bow out, stay BACKUP until
//!   promoted. Shutdown as MASTER bows out (OpenBSD/FreeBSD; ucarp goes silent). Link loss
//!   goes to INIT (OpenBSD) without an advertisement.
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::protocol::carp::{BOW_OUT, interval_of, skew};

/// The state of one group. States are matched explicitly (no catch-all), so a new state
/// does not compile until every place handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Init,
    Backup,
    Master,
    /// A tracked service or link this group depends on failed: no VIP, no take-over.
    Fault,
}

impl State {
    /// The name ucarp logs ("Switching to state: MASTER").
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// A group's election parameters (ucarp's `-v -b -k -P -n -r -s`).
#[derive(Clone, Debug)]
pub struct Params {
    pub vhid: u8,
    pub advbase: u8,
    pub advskew: u8,
    pub preempt: bool,
    /// Don't run the down hook on entering BACKUP at start (ucarp `-n`).
    pub neutral: bool,
    /// ucarp's `-r` (default 3): master-down = dead_ratio × advbase + advskew/256.
    pub dead_ratio: u32,
    /// Our source address: the tie-break, and how our own advertisements are recognised.
    pub local_addr: Ipv4Addr,
    /// How a demotion from trackers goes on the wire.
    pub demote_by: DemoteBy,
}

/// How a group's demotion (the weights of its failed trackers) is advertised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DemoteBy {
    /// Added to advskew (at most 254), as FreeBSD does: what ucarp peers understand. A
    /// MASTER that is demoted this way keeps the VIPs unless a backup preempts.
    #[default]
    Advskew,
    /// OpenBSD's demote count (byte 4), compared before advbase and advskew: a BACKUP
    /// takes over from a more demoted MASTER even without preemption. ucarp ignores it.
    DemoteCount,
}

/// Why [`Params`] cannot run.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    #[error("0 is not in 1..=255")]
    ZeroVhid,
    #[error("advbase 0 needs an advskew above 0 (the interval is advbase + advskew/256 s)")]
    ZeroInterval,
    #[error("255 is not in 0..=254 (255 is reserved for bow-out advertisements)")]
    AdvbaseReserved,
    #[error("255 is not in 0..=254 (255 is reserved for bow-out advertisements)")]
    AdvskewReserved,
    #[error("0 is not in 1..=255: a dead ratio of 0 would declare the master dead at once")]
    ZeroDeadRatio,
    #[error("the local address is 0.0.0.0: advertisements need a persistent source address")]
    NoLocalAddr,
}

impl ParamError {
    /// The parameter at fault, as configuration names it.
    pub fn field(self) -> &'static str {
        match self {
            ParamError::ZeroVhid => "vhid",
            ParamError::ZeroInterval | ParamError::AdvbaseReserved => "advbase",
            ParamError::AdvskewReserved => "advskew",
            ParamError::ZeroDeadRatio => "dead_ratio",
            ParamError::NoLocalAddr => "srcip",
        }
    }
}

impl Params {
    /// Our advertisement interval: advbase + advskew/256 s.
    pub fn interval(&self) -> Duration {
        interval_of(self.advbase, self.advskew)
    }

    /// How long a BACKUP waits for an advertisement: dead_ratio × advbase + advskew/256 s
    /// (ucarp; with advbase 0 it equals the interval).
    pub fn master_down(&self) -> Duration {
        Duration::from_secs(u64::from(self.advbase) * u64::from(self.dead_ratio))
            + skew(self.advskew)
    }

    /// Checks the parameters as ucarp and carp(4) do: the timing rules of
    /// [`Params::check_timing`] and a source address.
    pub fn validate(&self) -> Result<(), ParamError> {
        Params::check_timing(self.vhid, self.advbase, self.advskew, self.dead_ratio)?;
        if self.local_addr.is_unspecified() {
            return Err(ParamError::NoLocalAddr);
        }
        Ok(())
    }

    /// The rules for a group's numbers, the only place they are written (configuration
    /// checks them with this before the source address is known): vhid 1..=255, an
    /// interval above zero, advbase and advskew below 255 (the bow-out values), dead ratio
    /// 1 or more.
    pub fn check_timing(
        vhid: u8,
        advbase: u8,
        advskew: u8,
        dead_ratio: u32,
    ) -> Result<(), ParamError> {
        if vhid == 0 {
            return Err(ParamError::ZeroVhid);
        }
        if advbase == 0 && advskew == 0 {
            return Err(ParamError::ZeroInterval);
        }
        if advbase == BOW_OUT {
            return Err(ParamError::AdvbaseReserved);
        }
        if advskew == BOW_OUT {
            return Err(ParamError::AdvskewReserved);
        }
        if dead_ratio == 0 {
            return Err(ParamError::ZeroDeadRatio);
        }
        Ok(())
    }
}

/// What happens to a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The daemon starts the group.
    Start,
    /// A valid, authenticated advertisement for this vhid (ours too, if looped back).
    Advert {
        src: Ipv4Addr,
        advbase: u8,
        advskew: u8,
        demote: u8,
    },
    /// The timer armed with [`Timer::MasterDown`] expired.
    MasterDownTimer,
    /// The timer armed with [`Timer::Advert`] expired.
    AdvertTimer,
    /// Administrative demotion: give up MASTER and stay BACKUP until [`Event::Promote`].
    Demote,
    /// Ends a demotion.
    Promote,
    /// The daemon stops the group.
    Shutdown,
    /// The interface lost its carrier.
    LinkDown,
    /// The interface has its carrier again.
    LinkUp,
    /// A tracker the group depends on failed: go to FAULT.
    Fault,
    /// Every tracker the group depends on is healthy again.
    Recover,
    /// The weights of the failed trackers add up to this demotion.
    SetDemotion(u8),
    /// Another group of our sync group left MASTER: hand over too (a bow-out, not sticky).
    StepDown,
}

/// Why a transition happened, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The group started.
    Started,
    /// No advertisement within master-down.
    MasterDownExpired,
    /// The master sent a bow-out advertisement (advbase and advskew 255).
    PeerBowedOut,
    /// The master advertises so slowly that it would time out anyway (ucarp).
    PeerTooSlow,
    /// The master advertises a higher demote count than ours (OpenBSD).
    PeerDemoted,
    /// A better master advertises.
    BetterPeer,
    /// Preemption (`-P`) over a master with a slower interval.
    PreemptWorsePeer,
    /// Administratively demoted.
    Demoted,
    /// The group is stopping.
    Shutdown,
    /// The interface lost its carrier.
    LinkDown,
    /// The interface has its carrier again.
    LinkUp,
    /// A tracked service or link failed.
    Fault,
    /// Every tracked service and link is healthy again.
    Recovered,
    /// Another group of the sync group left MASTER.
    SyncGroup,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Started => "started",
            Reason::MasterDownExpired => "no advertisement within master-down",
            Reason::PeerBowedOut => "the master bowed out",
            Reason::PeerTooSlow => "the master advertises slower than our master-down",
            Reason::PeerDemoted => "the master advertises a higher demote count",
            Reason::BetterPeer => "a better master advertises",
            Reason::PreemptWorsePeer => "preempting a worse master",
            Reason::Demoted => "demoted",
            Reason::Shutdown => "shutting down",
            Reason::LinkDown => "link down",
            Reason::LinkUp => "link up",
            Reason::Fault => "a tracked service or link failed",
            Reason::Recovered => "every tracked service and link is healthy",
            Reason::SyncGroup => "another group of the sync group left MASTER",
        })
    }
}

/// The group's two timers. Arming one replaces its previous deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    Advert,
    MasterDown,
}

/// The user's scripts (ucarp `-u` / `-d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Up,
    Down,
}

/// What the daemon must do, in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one advertisement with these fields (255/255 is a bow-out).
    SendAdvert {
        advbase: u8,
        advskew: u8,
        demote: u8,
    },
    /// (Re)arm a timer to expire `after` from the event's `now`.
    Arm {
        timer: Timer,
        after: Duration,
    },
    /// Disarm a timer (nothing happens if it is not armed).
    Cancel(Timer),
    /// The state changed; emitted once per change, by `Election::set_state` only.
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
    /// Own the VIPs.
    BecomeMaster,
    /// Stop owning the VIPs. `bowed_out`: a bow-out advertisement was just sent, so a peer
    /// is about to take over and the VIPs may be held until it has (a graceful hand-over);
    /// otherwise they are let go at once.
    BecomeBackup {
        bowed_out: bool,
    },
    /// Another node claims mastership of our group and loses to us: an advertisement has
    /// just been sent so that it steps down; the VIPs must be announced again now.
    Reannounce,
    RunHook(Hook),
}

/// The rank of an advertiser; lower is better (derived order: field by field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    demote: u8,
    interval: Duration,
    /// ucarp compares `ip_src.s_addr` as an integer: the network-order bytes in host order.
    addr: u32,
}

impl Rank {
    fn new(demote: u8, advbase: u8, advskew: u8, src: Ipv4Addr) -> Rank {
        Rank {
            demote,
            interval: interval_of(advbase, advskew),
            addr: u32::from_ne_bytes(src.octets()),
        }
    }

    /// Worse for preemption: ucarp and OpenBSD compare demote and interval, not addresses.
    fn slower_than(&self, other: &Rank) -> bool {
        (self.demote, self.interval) > (other.demote, other.interval)
    }
}

/// The election state of one group.
#[derive(Clone, Debug)]
pub struct Election {
    params: Params,
    state: State,
    /// OpenBSD's demote counter, sent in byte 4 of our advertisements.
    demote_count: u8,
    /// Administratively demoted: stays BACKUP until promoted.
    demoted: bool,
    /// Whether the interface has its carrier (assumed until [`Event::LinkDown`]).
    link_up: bool,
    /// Started and not shut down: INIT then only means the link is down.
    started: bool,
    /// The MASTER of the group as far as we know: ourselves, or the source of the last
    /// advertisement we followed as BACKUP.
    master: Option<Ipv4Addr>,
    /// A tracker the group depends on is down.
    faulted: bool,
    /// The weights of the failed trackers, advertised as `params.demote_by` says.
    demotion: u8,
}

impl Election {
    pub fn new(params: Params) -> Election {
        Election {
            params,
            state: State::Init,
            demote_count: 0,
            demoted: false,
            link_up: true,
            started: false,
            master: None,
            faulted: false,
            demotion: 0,
        }
    }

    /// The MASTER as far as we know (ourselves when MASTER).
    pub fn master(&self) -> Option<Ipv4Addr> {
        self.master
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Takes new parameters (a reload): the next advertisement and the next master-down
    /// use them; the state, the master followed and any demotion stay.
    pub fn set_params(&mut self, params: Params) {
        self.params = params;
    }

    /// Administratively demoted ([`Event::Demote`] without [`Event::Promote`] since).
    pub fn is_demoted(&self) -> bool {
        self.demoted
    }

    /// The demote count our advertisements carry (OpenBSD's carpdemote; 0 as ucarp).
    pub fn demote_count(&self) -> u8 {
        self.demote_count
    }

    /// Sets the demote count of our next advertisements. Peers compare it before the
    /// interval: OpenBSD backups with a lower count take over from us at once.
    pub fn set_demote_count(&mut self, count: u8) {
        self.demote_count = count;
    }

    /// A tracker the group depends on is down ([`Event::Fault`] without [`Event::Recover`]).
    pub fn is_faulted(&self) -> bool {
        self.faulted
    }

    /// The demotion from failed trackers.
    pub fn demotion(&self) -> u8 {
        self.demotion
    }

    /// (advbase, advskew, demote) of our regular advertisements, demotion included.
    pub fn advert_fields(&self) -> (u8, u8, u8) {
        match self.params.demote_by {
            DemoteBy::Advskew => (
                self.params.advbase,
                self.params
                    .advskew
                    .saturating_add(self.demotion)
                    .min(BOW_OUT - 1),
                self.demote_count,
            ),
            DemoteBy::DemoteCount => (
                self.params.advbase,
                self.params.advskew,
                self.demote_count
                    .saturating_add(self.demotion)
                    .min(BOW_OUT - 1),
            ),
        }
    }

    /// Our advertisement interval, demotion included.
    fn interval(&self) -> Duration {
        let (advbase, advskew, _) = self.advert_fields();
        interval_of(advbase, advskew)
    }

    /// How long we wait for the master, demotion included.
    pub fn master_down(&self) -> Duration {
        let (advbase, advskew, _) = self.advert_fields();
        Duration::from_secs(u64::from(advbase) * u64::from(self.params.dead_ratio)) + skew(advskew)
    }

    /// BACKUP, or FAULT while a tracker the group depends on is down.
    fn standby(&self) -> State {
        if self.faulted {
            State::Fault
        } else {
            State::Backup
        }
    }

    /// The one entry point: feeds one event and returns the actions to carry out, in
    /// order. Timers are armed relative to the instant of the event.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.on_start(&mut out),
            Event::Advert {
                src,
                advbase,
                advskew,
                demote,
            } => {
                if src != self.params.local_addr {
                    let peer = Rank::new(demote, advbase, advskew, src);
                    let bow_out = crate::protocol::carp::is_bow_out(advbase, advskew);
                    self.on_advert(src, peer, bow_out, &mut out);
                }
            }
            Event::MasterDownTimer => {
                if self.state == State::Backup {
                    if self.demoted {
                        out.push(self.arm_master_down());
                    } else {
                        self.become_master(Reason::MasterDownExpired, &mut out);
                    }
                }
            }
            Event::AdvertTimer => {
                if self.state == State::Master {
                    out.push(self.advert());
                    out.push(self.arm_advert());
                }
            }
            Event::Demote => {
                self.demoted = true;
                if self.state == State::Master {
                    out.push(self.bow_out());
                    self.leave_master(State::Backup, Reason::Demoted, true, &mut out);
                }
            }
            Event::Promote => {
                let was_demoted = std::mem::replace(&mut self.demoted, false);
                if was_demoted && self.state == State::Backup {
                    out.push(self.arm_master_down());
                }
            }
            Event::Shutdown => {
                self.started = false;
                let bowed_out = self.state == State::Master;
                if bowed_out {
                    out.push(self.bow_out());
                }
                self.enter_init(Reason::Shutdown, bowed_out, &mut out);
            }
            Event::LinkDown => {
                self.link_up = false;
                self.enter_init(Reason::LinkDown, false, &mut out);
            }
            Event::LinkUp => {
                self.link_up = true;
                if self.state == State::Init && self.started {
                    self.set_state(self.standby(), Reason::LinkUp, &mut out);
                    if self.state == State::Backup {
                        out.push(self.arm_master_down());
                    }
                }
            }
            Event::Fault => {
                self.faulted = true;
                match self.state {
                    State::Master => {
                        out.push(self.bow_out());
                        self.leave_master(State::Fault, Reason::Fault, true, &mut out);
                    }
                    State::Backup => {
                        self.set_state(State::Fault, Reason::Fault, &mut out);
                        out.push(Action::Cancel(Timer::MasterDown));
                    }
                    State::Init | State::Fault => {}
                }
            }
            Event::Recover => {
                self.faulted = false;
                if self.state == State::Fault {
                    self.set_state(State::Backup, Reason::Recovered, &mut out);
                    out.push(self.arm_master_down());
                }
            }
            Event::StepDown => {
                if self.state == State::Master {
                    out.push(self.bow_out());
                    self.leave_master(State::Backup, Reason::SyncGroup, true, &mut out);
                }
            }
            Event::SetDemotion(d) => {
                let changed = std::mem::replace(&mut self.demotion, d) != d;
                if changed && self.state == State::Master {
                    // Peers learn the new rank at once, not at the next interval.
                    out.push(self.advert());
                    out.push(self.arm_advert());
                }
            }
        }
        out
    }

    /// The one place the state changes, and the one place a Transition is emitted.
    fn set_state(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        if from != to {
            self.state = to;
            match to {
                State::Master => self.master = Some(self.params.local_addr),
                State::Backup | State::Init | State::Fault => self.master = None,
            }
            out.push(Action::Transition { from, to, reason });
        }
    }

    fn advert(&self) -> Action {
        let (advbase, advskew, demote) = self.advert_fields();
        Action::SendAdvert {
            advbase,
            advskew,
            demote,
        }
    }

    fn bow_out(&self) -> Action {
        Action::SendAdvert {
            advbase: BOW_OUT,
            advskew: BOW_OUT,
            demote: self.demote_count,
        }
    }

    fn arm_master_down(&self) -> Action {
        Action::Arm {
            timer: Timer::MasterDown,
            after: self.master_down(),
        }
    }

    fn arm_advert(&self) -> Action {
        Action::Arm {
            timer: Timer::Advert,
            after: self.interval(),
        }
    }

    fn our_rank(&self) -> Rank {
        let (advbase, advskew, demote) = self.advert_fields();
        Rank::new(demote, advbase, advskew, self.params.local_addr)
    }

    fn on_start(&mut self, out: &mut Vec<Action>) {
        if self.state != State::Init || self.started {
            return;
        }
        self.started = true;
        if self.link_up {
            self.set_state(self.standby(), Reason::Started, out);
        }
        // ucarp runs the downscript on INIT -> BACKUP unless neutral; vipd also makes sure
        // the VIPs are not owned then (neutral leaves them alone, as ucarp does).
        if !self.params.neutral {
            out.push(Action::BecomeBackup { bowed_out: false });
            out.push(Action::RunHook(Hook::Down));
        }
        if self.state == State::Backup {
            out.push(self.arm_master_down());
        }
    }

    fn become_master(&mut self, reason: Reason, out: &mut Vec<Action>) {
        self.set_state(State::Master, reason, out);
        out.push(Action::BecomeMaster);
        out.push(Action::RunHook(Hook::Up));
        out.push(self.advert());
        out.push(self.arm_advert());
        out.push(Action::Cancel(Timer::MasterDown));
    }

    /// Leaves MASTER for BACKUP, or for INIT on shutdown and link loss; `bowed_out` when a
    /// bow-out advertisement was sent just before.
    fn leave_master(&mut self, to: State, reason: Reason, bowed_out: bool, out: &mut Vec<Action>) {
        self.set_state(to, reason, out);
        out.push(Action::BecomeBackup { bowed_out });
        out.push(Action::RunHook(Hook::Down));
        out.push(Action::Cancel(Timer::Advert));
        if to == State::Backup {
            out.push(self.arm_master_down());
        } else {
            out.push(Action::Cancel(Timer::MasterDown));
        }
    }

    fn enter_init(&mut self, reason: Reason, bowed_out: bool, out: &mut Vec<Action>) {
        match self.state {
            State::Init => {}
            State::Master => self.leave_master(State::Init, reason, bowed_out, out),
            State::Backup | State::Fault => {
                self.set_state(State::Init, reason, out);
                out.push(Action::Cancel(Timer::Advert));
                out.push(Action::Cancel(Timer::MasterDown));
            }
        }
    }

    /// An advertisement from a peer (not ours).
    fn on_advert(&mut self, src: Ipv4Addr, peer: Rank, bow_out: bool, out: &mut Vec<Action>) {
        let ours = self.our_rank();
        match self.state {
            // In FAULT the group takes nothing over, whoever advertises.
            State::Init | State::Fault => {}
            // A bow-out never makes us step down, whatever its demote count.
            State::Master if bow_out => {}
            State::Master => {
                if peer < ours {
                    out.push(self.advert());
                    self.leave_master(State::Backup, Reason::BetterPeer, false, out);
                    self.master = Some(src);
                } else {
                    // A worse node claims the group (a healed partition): tell it now,
                    // and announce the VIPs again for the clients that followed it.
                    out.push(self.advert());
                    out.push(Action::Reannounce);
                }
            }
            State::Backup => {
                if bow_out && self.master != Some(src) {
                    // Only the master we follow can hand over: a bow-out from anyone
                    // else (a replay, a stale node) changes nothing.
                    return;
                }
                if !bow_out {
                    self.master = Some(src);
                }
                if self.demoted {
                    out.push(self.arm_master_down());
                } else if bow_out {
                    self.become_master(Reason::PeerBowedOut, out);
                } else if peer.demote > ours.demote {
                    self.become_master(Reason::PeerDemoted, out);
                } else if self.params.preempt && peer.slower_than(&ours) {
                    self.become_master(Reason::PreemptWorsePeer, out);
                } else if peer.interval > self.master_down() {
                    self.become_master(Reason::PeerTooSlow, out);
                } else {
                    out.push(self.arm_master_down());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
