use super::*;
use proptest::prelude::*;
use std::time::Instant;

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

/// Node `n` (1-based) at 10.0.0.n with ucarp's defaults otherwise.
fn node(n: u8, advbase: u8, advskew: u8, preempt: bool) -> Params {
    Params {
        vhid: 1,
        advbase,
        advskew,
        preempt,
        neutral: false,
        dead_ratio: 3,
        local_addr: addr(n),
        demote_by: DemoteBy::Advskew,
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

struct Node {
    group: Election,
    advert_at: Option<Instant>,
    master_down_at: Option<Instant>,
    alive: bool,
}

/// Groups wired by hand on one virtual clock: each SendAdvert reaches every other live
/// node at the same instant (and the sender too with `loopback`), timers fire in time
/// order. `log` holds the transitions as the daemon would log them.
struct Lan {
    base: Instant,
    now: Instant,
    nodes: Vec<Node>,
    /// Adverts are lost between the nodes.
    partitioned: bool,
    /// Multicast loopback: senders hear their own adverts.
    loopback: bool,
    log: Vec<String>,
    /// Every action with its node (0-based) and instant, in the order carried out.
    actions: Vec<(usize, Instant, Action)>,
    /// Every step: node, instant, event and the actions it returned.
    steps: Vec<(usize, Instant, Event, Vec<Action>)>,
}

impl Lan {
    fn new(params: Vec<Params>) -> Lan {
        let base = Instant::now();
        let mut lan = Lan {
            base,
            now: base,
            nodes: Vec::new(),
            partitioned: false,
            loopback: false,
            log: Vec::new(),
            actions: Vec::new(),
            steps: Vec::new(),
        };
        for p in params {
            lan.add(p);
        }
        lan
    }

    fn add(&mut self, p: Params) {
        self.nodes.push(Node {
            group: Election::new(p),
            advert_at: None,
            master_down_at: None,
            alive: true,
        });
    }

    fn at(&self, t: Instant) -> f64 {
        t.duration_since(self.base).as_secs_f64()
    }

    fn feed(&mut self, i: usize, event: Event) {
        let now = self.now;
        let actions = self.nodes[i].group.step(event);
        self.steps.push((i, now, event, actions.clone()));
        for a in actions {
            self.actions.push((i, now, a));
            match a {
                Action::Transition { from, to, reason } => self.log.push(format!(
                    "{:.3} n{} {}->{} ({reason})",
                    self.at(now),
                    i + 1,
                    from.name(),
                    to.name()
                )),
                Action::Arm { timer, after } => {
                    let slot = match timer {
                        Timer::Advert => &mut self.nodes[i].advert_at,
                        Timer::MasterDown => &mut self.nodes[i].master_down_at,
                    };
                    *slot = Some(now + after);
                }
                Action::Cancel(Timer::Advert) => self.nodes[i].advert_at = None,
                Action::Cancel(Timer::MasterDown) => self.nodes[i].master_down_at = None,
                Action::SendAdvert {
                    advbase,
                    advskew,
                    demote,
                } => {
                    let src = self.nodes[i].group.params().local_addr;
                    let advert = Event::Advert {
                        src,
                        advbase,
                        advskew,
                        demote,
                    };
                    for j in 0..self.nodes.len() {
                        let reaches = if j == i {
                            self.loopback
                        } else {
                            !self.partitioned
                        };
                        if reaches && self.nodes[j].alive {
                            self.feed(j, advert);
                        }
                    }
                }
                Action::BecomeMaster
                | Action::BecomeBackup { .. }
                | Action::Reannounce
                | Action::RunHook(_) => {}
            }
        }
    }

    /// Fires timers in time order up to `secs` after the start.
    fn run_until(&mut self, secs_from_start: f64) {
        let end = self.base + secs(secs_from_start);
        loop {
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.alive)
                .flat_map(|(i, n)| {
                    [
                        n.master_down_at.map(|t| (t, i, 0)),
                        n.advert_at.map(|t| (t, i, 1)),
                    ]
                })
                .flatten()
                .min();
            let Some((t, i, which)) = next.filter(|(t, _, _)| *t <= end) else {
                break;
            };
            self.now = t;
            let event = if which == 0 {
                self.nodes[i].master_down_at = None;
                Event::MasterDownTimer
            } else {
                self.nodes[i].advert_at = None;
                Event::AdvertTimer
            };
            self.feed(i, event);
        }
        self.now = end;
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.feed(i, Event::Start);
        }
    }

    /// The daemon of node `i` is killed: it goes silent.
    fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
    }

    /// Node `i` comes back as a fresh process.
    fn restart(&mut self, i: usize, p: Params) {
        self.nodes[i] = Node {
            group: Election::new(p),
            advert_at: None,
            master_down_at: None,
            alive: true,
        };
        self.feed(i, Event::Start);
    }

    fn states(&self) -> Vec<State> {
        self.nodes.iter().map(|n| n.group.state()).collect()
    }

    /// Instants at which node `i` sent an advertisement.
    fn adverts_of(&self, i: usize) -> Vec<Instant> {
        self.actions
            .iter()
            .filter(|(n, _, a)| *n == i && matches!(a, Action::SendAdvert { .. }))
            .map(|(_, t, _)| *t)
            .collect()
    }

    /// What node `i` returned for the last `event` it was fed.
    fn returned(&self, i: usize, event: Event) -> Vec<Action> {
        let step = self
            .steps
            .iter()
            .rev()
            .find(|(n, _, e, _)| *n == i && *e == event);
        step.map(|(_, _, _, a)| a.clone()).unwrap_or_default()
    }

    /// All actions, with instants relative to the start.
    fn timeline(&self) -> Vec<(usize, Duration, Action)> {
        let base = self.base;
        self.actions
            .iter()
            .map(|(i, t, a)| (*i, *t - base, *a))
            .collect()
    }

    fn actions_of(&self, i: usize) -> Vec<Action> {
        self.actions
            .iter()
            .filter(|(n, _, _)| *n == i)
            .map(|(_, _, a)| *a)
            .collect()
    }
}

#[test]
fn two_nodes_start_and_the_lower_skew_wins() {
    let mut lan = Lan::new(vec![node(1, 1, 100, false), node(2, 1, 0, false)]);
    lan.start_all();
    lan.run_until(10.0);
    // n2's master-down is 3 s, n1's 3 + 100/256 = 3.390625 s.
    assert_eq!(
        lan.log,
        [
            "0.000 n1 INIT->BACKUP (started)",
            "0.000 n2 INIT->BACKUP (started)",
            "3.000 n2 BACKUP->MASTER (no advertisement within master-down)",
        ]
    );
    assert_eq!(lan.states(), [State::Backup, State::Master]);
    // Then n2 advertises every second and n1 keeps re-arming its master-down.
    let sent: Vec<f64> = lan.adverts_of(1).iter().map(|t| lan.at(*t)).collect();
    assert_eq!(sent, [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
    assert!(lan.adverts_of(0).is_empty(), "a BACKUP never advertises");
}

#[test]
fn equal_skew_is_won_by_the_lower_source_address_as_in_ucarp() {
    // A partition makes both nodes MASTER; when it heals, the MASTER that hears the
    // same interval from a lower address steps down (ucarp: `ip_src.s_addr <
    // srcip.s_addr`), whichever node advertises first.
    for (first, second) in [(1, 2), (2, 1)] {
        let mut lan = Lan::new(vec![node(first, 1, 0, false), node(second, 1, 0, false)]);
        lan.partitioned = true;
        lan.start_all();
        lan.run_until(3.5);
        assert_eq!(lan.states(), [State::Master, State::Master]);
        lan.partitioned = false;
        lan.run_until(10.0);
        let loser = if first == 2 { "n1" } else { "n2" };
        assert_eq!(
            lan.log[4..],
            [format!(
                "4.000 {loser} MASTER->BACKUP (a better master advertises)"
            )],
            "10.0.0.{first} advertises first"
        );
        let winner = lan
            .nodes
            .iter()
            .find(|n| n.group.state() == State::Master)
            .unwrap();
        assert_eq!(winner.group.params().local_addr, addr(1));
    }
}

#[test]
#[cfg(target_endian = "little")]
fn the_tie_break_is_ucarps_raw_address_comparison() {
    // ucarp compares s_addr (network-order bytes) as a host integer: on little-endian
    // hosts the last octet weighs most, so 10.0.2.3 beats 10.0.1.5 although it is the
    // larger address. Agreeing with ucarp matters more than numeric order: two nodes
    // that disagree would both stay MASTER, or both step down.
    let mut a = node(1, 1, 0, false);
    a.local_addr = Ipv4Addr::new(10, 0, 2, 3);
    let mut b = node(2, 1, 0, false);
    b.local_addr = Ipv4Addr::new(10, 0, 1, 5);
    let mut lan = Lan::new(vec![b, a]);
    lan.partitioned = true;
    lan.start_all();
    lan.run_until(3.5);
    lan.partitioned = false;
    lan.run_until(6.0);
    assert_eq!(
        lan.log[4..],
        ["4.000 n1 MASTER->BACKUP (a better master advertises)"]
    );
    assert_eq!(
        lan.nodes[1].group.params().local_addr,
        Ipv4Addr::new(10, 0, 2, 3)
    );
    assert_eq!(lan.states(), [State::Backup, State::Master]);
}

#[test]
fn master_goes_silent_and_the_backup_takes_over_after_exactly_master_down() {
    let mut lan = Lan::new(vec![node(1, 1, 0, false), node(2, 1, 100, false)]);
    lan.start_all();
    lan.run_until(5.5);
    lan.kill(0);
    lan.run_until(20.0);
    let last_advert = *lan.adverts_of(0).last().unwrap();
    assert_eq!(lan.at(last_advert), 5.0);
    let md = lan.nodes[1].group.params().master_down();
    assert_eq!(md, Duration::from_micros(3_390_625));
    let (_, took_over, _) = *lan
        .actions
        .iter()
        .find(|(n, _, a)| *n == 1 && *a == Action::BecomeMaster)
        .unwrap();
    assert_eq!(took_over, last_advert + md);
    assert_eq!(
        lan.log[2..],
        [
            "3.000 n1 BACKUP->MASTER (no advertisement within master-down)",
            "8.391 n2 BACKUP->MASTER (no advertisement within master-down)",
        ]
    );
    // What the new master does, in order.
    let n2 = lan.actions_of(1);
    let from = n2
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::Transition {
                    to: State::Master,
                    ..
                }
            )
        })
        .unwrap();
    assert_eq!(
        n2[from + 1..from + 6],
        [
            Action::BecomeMaster,
            Action::RunHook(Hook::Up),
            Action::SendAdvert {
                advbase: 1,
                advskew: 100,
                demote: 0
            },
            Action::Arm {
                timer: Timer::Advert,
                after: Duration::from_micros(1_390_625)
            },
            Action::Cancel(Timer::MasterDown),
        ]
    );
}

#[test]
fn without_preemption_a_better_node_that_joins_stays_backup() {
    let mut lan = Lan::new(vec![node(1, 1, 100, false)]);
    lan.start_all();
    lan.run_until(5.0);
    lan.add(node(2, 1, 0, false));
    lan.feed(1, Event::Start);
    lan.run_until(60.0);
    assert_eq!(
        lan.log,
        [
            "0.000 n1 INIT->BACKUP (started)",
            "3.391 n1 BACKUP->MASTER (no advertisement within master-down)",
            "5.000 n2 INIT->BACKUP (started)",
        ]
    );
}

#[test]
fn with_preemption_a_better_node_takes_over_at_the_masters_next_advert() {
    let mut lan = Lan::new(vec![node(1, 1, 100, false)]);
    lan.start_all();
    lan.run_until(5.0);
    lan.add(node(2, 1, 0, true));
    lan.feed(1, Event::Start);
    lan.run_until(60.0);
    // n1 advertises at 3.391, 4.781, 6.172: n2 hears the third and preempts; n1 then
    // hears n2's advert, sends one more of its own (ucarp) and steps down.
    assert_eq!(
        lan.log[2..],
        [
            "5.000 n2 INIT->BACKUP (started)",
            "6.172 n2 BACKUP->MASTER (preempting a worse master)",
            "6.172 n1 MASTER->BACKUP (a better master advertises)",
        ]
    );
    let n2_advert = Event::Advert {
        src: addr(2),
        advbase: 1,
        advskew: 0,
        demote: 0,
    };
    let step_down = lan
        .steps
        .iter()
        .find(|(n, _, e, _)| *n == 0 && *e == n2_advert)
        .unwrap();
    assert_eq!(
        step_down.3,
        [
            Action::SendAdvert {
                advbase: 1,
                advskew: 100,
                demote: 0
            },
            Action::Transition {
                from: State::Master,
                to: State::Backup,
                reason: Reason::BetterPeer
            },
            Action::BecomeBackup { bowed_out: false },
            Action::RunHook(Hook::Down),
            Action::Cancel(Timer::Advert),
            Action::Arm {
                timer: Timer::MasterDown,
                after: Duration::from_secs(3) + Duration::from_micros(390_625)
            },
        ]
    );
}

#[test]
fn preemption_compares_intervals_not_addresses() {
    // Same interval, we have the lower address: ucarp does not preempt on the address.
    let mut lan = Lan::new(vec![node(2, 1, 0, false)]);
    lan.start_all();
    lan.run_until(5.0);
    lan.add(node(1, 1, 0, true));
    lan.feed(1, Event::Start);
    lan.run_until(30.0);
    assert_eq!(lan.states(), [State::Master, State::Backup]);
}

#[test]
fn a_bow_out_gives_an_immediate_takeover() {
    let mut lan = Lan::new(vec![node(1, 1, 0, false), node(2, 1, 100, false)]);
    lan.start_all();
    lan.run_until(4.5);
    lan.feed(0, Event::Shutdown);
    assert_eq!(
        lan.log[2..],
        [
            "3.000 n1 BACKUP->MASTER (no advertisement within master-down)",
            "4.500 n2 BACKUP->MASTER (the master bowed out)",
            "4.500 n1 MASTER->INIT (shutting down)",
        ]
    );
    // The bow-out is n1's first action: it reaches n2 before n1 lets the VIPs go.
    assert_eq!(
        lan.returned(0, Event::Shutdown),
        [
            Action::SendAdvert {
                advbase: 255,
                advskew: 255,
                demote: 0
            },
            Action::Transition {
                from: State::Master,
                to: State::Init,
                reason: Reason::Shutdown
            },
            Action::BecomeBackup { bowed_out: true },
            Action::RunHook(Hook::Down),
            Action::Cancel(Timer::Advert),
            Action::Cancel(Timer::MasterDown),
        ]
    );
}

#[test]
fn a_node_restarted_without_preemption_stays_backup() {
    let mut lan = Lan::new(vec![node(1, 1, 0, false), node(2, 1, 100, false)]);
    lan.start_all();
    lan.run_until(4.0);
    lan.kill(0);
    lan.run_until(10.0);
    lan.restart(0, node(1, 1, 0, false));
    lan.run_until(60.0);
    assert_eq!(
        lan.log[2..],
        [
            "3.000 n1 BACKUP->MASTER (no advertisement within master-down)",
            "7.391 n2 BACKUP->MASTER (no advertisement within master-down)",
            "10.000 n1 INIT->BACKUP (started)",
        ]
    );
    // The better node hears the worse master and, without -P, re-arms its master-down
    // every time (ucarp's carp_setrun) instead of taking over.
    let rearmed = lan
        .actions_of(0)
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Arm {
                    timer: Timer::MasterDown,
                    ..
                }
            )
        })
        .count();
    assert!(rearmed > 30, "{rearmed}");
    assert_eq!(lan.states(), [State::Backup, State::Master]);
}

#[test]
fn our_own_advertisements_are_ignored() {
    let mut looped = Lan::new(vec![node(1, 1, 0, false), node(2, 1, 100, false)]);
    looped.loopback = true;
    looped.start_all();
    looped.run_until(20.0);
    let mut plain = Lan::new(vec![node(1, 1, 0, false), node(2, 1, 100, false)]);
    plain.start_all();
    plain.run_until(20.0);
    assert_eq!(looped.log, plain.log);
    assert_eq!(looped.timeline(), plain.timeline());
    // n1 heard each of its own adverts and returned nothing for them.
    let own: Vec<_> = looped
        .steps
        .iter()
        .filter(|(n, _, e, _)| *n == 0 && matches!(e, Event::Advert { src, .. } if *src == addr(1)))
        .collect();
    assert_eq!(own.len(), looped.adverts_of(0).len());
    assert!(own.iter().all(|(_, _, _, a)| a.is_empty()));
    // Even an "advert" from our address that would beat us changes nothing.
    let mut g = Election::new(node(1, 1, 100, true));
    g.step(Event::Start);
    let own = Event::Advert {
        src: addr(1),
        advbase: 0,
        advskew: 1,
        demote: 0,
    };
    assert_eq!(g.step(own), []);
    g.step(Event::MasterDownTimer);
    assert_eq!(g.step(own), []);
    assert_eq!(g.state(), State::Master);
}

#[test]
fn the_demote_count_outranks_advskew() {
    // n1 has the better skew but demote count 1 (OpenBSD carpdemote): n2, with demote
    // 0, takes over as soon as it hears n1, without preemption, and n1 then steps down.
    let mut lan = Lan::new(vec![node(1, 1, 0, false), node(2, 1, 100, false)]);
    lan.nodes[0].group.set_demote_count(1);
    assert_eq!(lan.nodes[0].group.advert_fields(), (1, 0, 1));
    lan.start_all();
    lan.run_until(10.0);
    assert_eq!(
        lan.log[2..],
        [
            "3.000 n1 BACKUP->MASTER (no advertisement within master-down)",
            "3.000 n2 BACKUP->MASTER (the master advertises a higher demote count)",
            "3.000 n1 MASTER->BACKUP (a better master advertises)",
        ]
    );
    assert_eq!(lan.states(), [State::Backup, State::Master]);
    // A MASTER does not yield to a better interval that comes with a higher demote
    // count: it answers the worse claimant at once and announces its VIPs again.
    let mut g = Election::new(node(1, 1, 200, false));
    g.step(Event::Start);
    g.step(Event::MasterDownTimer);
    let faster_but_demoted = Event::Advert {
        src: addr(9),
        advbase: 0,
        advskew: 1,
        demote: 1,
    };
    assert_eq!(
        g.step(faster_but_demoted),
        [
            Action::SendAdvert {
                advbase: 1,
                advskew: 200,
                demote: 0
            },
            Action::Reannounce
        ]
    );
    assert_eq!(g.state(), State::Master);
}

mod states;
