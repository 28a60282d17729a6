//! The CARP election of one group, as ucarp 1.5.2 (carp.c) and OpenBSD (ip_carp.c,
//! carp_input/carp_master_down/carp_set_state) run it, as a pure function:
//! `(state, event, now) -> (state, actions)`. No I/O and no clock reads: the caller passes
//! `now` and carries out the actions. Every state change goes through [`Group::set_state`],
//! which emits one [`Action::Transition`] with its reason.
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Init,
    Backup,
    Master,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
        }
    }
}

/// A group's election parameters.
#[derive(Clone, Debug)]
pub struct Params {
    pub vhid: u8,
    pub advbase: u8,
    pub advskew: u8,
    pub preempt: bool,
    pub neutral: bool,
    /// ucarp's `-r`: master-down = dead_ratio * advbase + advskew/256.
    pub dead_ratio: u32,
    /// Our source address: tie-break and recognising our own advertisements.
    pub local_addr: Ipv4Addr,
}

fn interval_of(advbase: u8, advskew: u8) -> Duration {
    Duration::from_secs(u64::from(advbase))
        + Duration::from_micros(u64::from(advskew) * 1_000_000 / 256)
}

impl Params {
    /// advbase + advskew/256 s.
    pub fn interval(&self) -> Duration {
        interval_of(self.advbase, self.advskew)
    }

    /// dead_ratio * advbase + advskew/256 s.
    pub fn master_down(&self) -> Duration {
        Duration::from_secs(u64::from(self.advbase) * u64::from(self.dead_ratio))
            + Duration::from_micros(u64::from(self.advskew) * 1_000_000 / 256)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Start,
    Advert {
        src: Ipv4Addr,
        advbase: u8,
        advskew: u8,
        demote: u8,
    },
    MasterDownTimer,
    AdvertTimer,
    Demote,
    Promote,
    Shutdown,
    LinkDown,
    LinkUp,
}

/// Why a transition happened, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Started,
    MasterDownExpired,
    PeerBowedOut,
    PeerTooSlow,
    BetterPeer,
    PreemptWorsePeer,
    Demoted,
    Shutdown,
    LinkDown,
    LinkUp,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Started => "started",
            Reason::MasterDownExpired => "no advertisement within master-down",
            Reason::PeerBowedOut => "the master bowed out",
            Reason::PeerTooSlow => "the master advertises slower than our master-down",
            Reason::BetterPeer => "a better master advertises",
            Reason::PreemptWorsePeer => "preempting a worse master",
            Reason::Demoted => "demoted",
            Reason::Shutdown => "shutting down",
            Reason::LinkDown => "link down",
            Reason::LinkUp => "link up",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    Advert,
    MasterDown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Up,
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SendAdvert {
        advbase: u8,
        advskew: u8,
        demote: u8,
    },
    Arm {
        timer: Timer,
        after: Duration,
    },
    Cancel(Timer),
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
    /// Own the VIPs: flip the ownership map, announce with gratuitous ARP.
    BecomeMaster,
    /// Stop owning the VIPs.
    BecomeBackup,
    RunHook(Hook),
}

/// The election state of one group.
#[derive(Clone, Debug)]
pub struct Group {
    params: Params,
    state: State,
    /// OpenBSD's demote counter, sent in byte 4 of our advertisements.
    demote_count: u8,
    /// Administratively demoted: stays BACKUP until promoted.
    demoted: bool,
    started: bool,
}

/// Ordering key of an advertiser: lower wins. OpenBSD compares the demote count first;
/// then the interval; ucarp breaks ties on the source address as the raw `s_addr`
/// (network-order bytes read as a little-endian integer on the x86 hosts ucarp runs on).
type Rank = (u8, Duration, u32);

fn rank(demote: u8, advbase: u8, advskew: u8, src: Ipv4Addr) -> Rank {
    (
        demote,
        interval_of(advbase, advskew),
        u32::from_le_bytes(src.octets()),
    )
}

impl Group {
    pub fn new(params: Params) -> Group {
        Group {
            params,
            state: State::Init,
            demote_count: 0,
            demoted: false,
            started: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn is_demoted(&self) -> bool {
        self.demoted
    }

    /// (advbase, advskew, demote) of our regular advertisements.
    pub fn advert_fields(&self) -> (u8, u8, u8) {
        (self.params.advbase, self.params.advskew, self.demote_count)
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
            advbase: crate::carp::BOW_OUT,
            advskew: crate::carp::BOW_OUT,
            demote: self.demote_count,
        }
    }

    fn arm_master_down(&self) -> Action {
        Action::Arm {
            timer: Timer::MasterDown,
            after: self.params.master_down(),
        }
    }

    /// The one place the state changes.
    fn set_state(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        out.push(Action::Transition { from, to, reason });
    }

    fn become_master(&mut self, reason: Reason, out: &mut Vec<Action>) {
        self.set_state(State::Master, reason, out);
        out.push(self.advert());
        out.push(Action::BecomeMaster);
        out.push(Action::RunHook(Hook::Up));
        out.push(Action::Cancel(Timer::MasterDown));
        out.push(Action::Arm {
            timer: Timer::Advert,
            after: self.params.interval(),
        });
    }

    /// Leaves MASTER for `to` (BACKUP, or INIT on shutdown and link loss).
    fn leave_master(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        self.set_state(to, reason, out);
        out.push(Action::BecomeBackup);
        out.push(Action::RunHook(Hook::Down));
        out.push(Action::Cancel(Timer::Advert));
        if to == State::Backup {
            out.push(self.arm_master_down());
        } else {
            out.push(Action::Cancel(Timer::MasterDown));
        }
    }

    /// A valid advertisement from a peer, ranked, while MASTER or BACKUP.
    fn on_peer_advert(&mut self, state: State, peer: Rank, out: &mut Vec<Action>) {
        let p = &self.params;
        let ours = rank(self.demote_count, p.advbase, p.advskew, p.local_addr);
        let (_, peer_interval, _) = peer;
        let bow_out = peer_interval == interval_of(crate::carp::BOW_OUT, crate::carp::BOW_OUT);
        if state == State::Master {
            if peer < ours {
                self.leave_master(State::Backup, Reason::BetterPeer, out);
            }
        } else if self.demoted {
            out.push(self.arm_master_down());
        } else if bow_out {
            self.become_master(Reason::PeerBowedOut, out);
        } else if p.preempt && (peer.0, peer.1) > (ours.0, ours.1) {
            // ucarp preempts on a slower interval only, never on the address.
            self.become_master(Reason::PreemptWorsePeer, out);
        } else if peer_interval > p.master_down() {
            // The master would time out anyway (a bow-out's 255 s always does).
            self.become_master(Reason::PeerTooSlow, out);
        } else {
            out.push(self.arm_master_down());
        }
    }

    /// Feeds one event; returns the actions to carry out, in order.
    pub fn step(&mut self, event: Event, _now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let p = self.params.clone();
        match (self.state, event) {
            (State::Init, Event::Start) if !self.started => {
                self.started = true;
                self.set_state(State::Backup, Reason::Started, &mut out);
                out.push(Action::BecomeBackup);
                if !p.neutral {
                    out.push(Action::RunHook(Hook::Down));
                }
                out.push(self.arm_master_down());
            }
            (State::Init, Event::LinkUp) if self.started => {
                self.set_state(State::Backup, Reason::LinkUp, &mut out);
                out.push(self.arm_master_down());
            }
            (State::Backup, Event::MasterDownTimer) => {
                if self.demoted {
                    out.push(self.arm_master_down());
                } else {
                    self.become_master(Reason::MasterDownExpired, &mut out);
                }
            }
            (State::Master, Event::AdvertTimer) => {
                out.push(self.advert());
                out.push(Action::Arm {
                    timer: Timer::Advert,
                    after: p.interval(),
                });
            }
            (
                state @ (State::Master | State::Backup),
                Event::Advert {
                    src,
                    advbase,
                    advskew,
                    demote,
                },
            ) if src != p.local_addr => {
                let peer = rank(demote, advbase, advskew, src);
                self.on_peer_advert(state, peer, &mut out);
            }
            (State::Master, Event::Demote) => {
                self.demoted = true;
                out.push(self.bow_out());
                self.leave_master(State::Backup, Reason::Demoted, &mut out);
            }
            (_, Event::Demote) => self.demoted = true,
            (state, Event::Promote) => {
                self.demoted = false;
                if state == State::Backup {
                    out.push(self.arm_master_down());
                }
            }
            (State::Master, Event::Shutdown) => {
                out.push(self.bow_out());
                self.leave_master(State::Init, Reason::Shutdown, &mut out);
            }

            (State::Master, Event::LinkDown) => {
                self.leave_master(State::Init, Reason::LinkDown, &mut out);
            }
            (State::Backup, ev @ (Event::Shutdown | Event::LinkDown)) => {
                let reason = if ev == Event::Shutdown {
                    Reason::Shutdown
                } else {
                    Reason::LinkDown
                };
                self.set_state(State::Init, reason, &mut out);
                out.push(Action::Cancel(Timer::MasterDown));
            }
            _ => {}
        }
        out
    }
}
