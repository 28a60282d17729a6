//! Golden event-log tests of the election: nodes wired together on a virtual clock, each
//! advertisement delivered to every other live node at once, timers fired in time order.
//! Each test reads as the scenario it covers; the log lines are what the daemon would log.
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use vipd::election::{Action, Event, Group, Hook, Params, State, Timer};

struct Node {
    group: Group,
    advert_at: Option<Instant>,
    master_down_at: Option<Instant>,
    alive: bool,
}

struct Sim {
    base: Instant,
    now: Instant,
    nodes: Vec<Node>,
    log: Vec<String>,
    /// Every action of every node, for tests that look past transitions.
    actions: Vec<(usize, Action)>,
}

fn params(i: usize, advbase: u8, advskew: u8, preempt: bool) -> Params {
    Params {
        vhid: 1,
        advbase,
        advskew,
        preempt,
        neutral: false,
        dead_ratio: 3,
        local_addr: Ipv4Addr::new(10, 0, 0, i as u8 + 1),
    }
}

impl Sim {
    fn new(nodes: Vec<Params>) -> Sim {
        let base = Instant::now();
        Sim {
            base,
            now: base,
            nodes: nodes
                .into_iter()
                .map(|p| Node {
                    group: Group::new(p),
                    advert_at: None,
                    master_down_at: None,
                    alive: true,
                })
                .collect(),
            log: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn t(&self) -> f64 {
        self.now.duration_since(self.base).as_secs_f64()
    }

    /// Feeds `event` to node `i` and carries out its actions (adverts reach every other
    /// live node at the same instant).
    fn feed(&mut self, i: usize, event: Event) {
        let actions = self.nodes[i].group.step(event, self.now);
        for a in actions {
            self.actions.push((i, a));
            match a {
                Action::Transition { from, to, reason } => self.log.push(format!(
                    "{:.3} n{} {}->{} ({reason})",
                    self.t(),
                    i + 1,
                    from.name(),
                    to.name()
                )),
                Action::Arm {
                    timer: Timer::Advert,
                    after,
                } => self.nodes[i].advert_at = Some(self.now + after),
                Action::Arm {
                    timer: Timer::MasterDown,
                    after,
                } => self.nodes[i].master_down_at = Some(self.now + after),
                Action::Cancel(Timer::Advert) => self.nodes[i].advert_at = None,
                Action::Cancel(Timer::MasterDown) => self.nodes[i].master_down_at = None,
                Action::SendAdvert {
                    advbase,
                    advskew,
                    demote,
                } => {
                    let src = self.nodes[i].group.params().local_addr;
                    for j in 0..self.nodes.len() {
                        if j != i && self.nodes[j].alive {
                            self.feed(
                                j,
                                Event::Advert {
                                    src,
                                    advbase,
                                    advskew,
                                    demote,
                                },
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Runs timers in time order until `secs` after the start.
    fn run_until(&mut self, secs: f64) {
        let end = self.base + Duration::from_secs_f64(secs);
        loop {
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.alive)
                .flat_map(|(i, n)| {
                    [
                        n.master_down_at.map(|t| (t, i, Event::MasterDownTimer)),
                        n.advert_at.map(|t| (t, i, Event::AdvertTimer)),
                    ]
                })
                .flatten()
                .min_by_key(|(t, _, _)| *t);
            match next {
                Some((t, i, ev)) if t <= end => {
                    self.now = t;
                    match ev {
                        Event::MasterDownTimer => self.nodes[i].master_down_at = None,
                        _ => self.nodes[i].advert_at = None,
                    }
                    self.feed(i, ev);
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.feed(i, Event::Start);
        }
    }

    /// The node goes silent (daemon killed): no more timers, no more adverts.
    fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
    }

    fn restart(&mut self, i: usize, p: Params) {
        self.nodes[i] = Node {
            group: Group::new(p),
            advert_at: None,
            master_down_at: None,
            alive: true,
        };
        self.feed(i, Event::Start);
    }

    fn states(&self) -> Vec<State> {
        self.nodes.iter().map(|n| n.group.state()).collect()
    }
}

#[test]
fn two_nodes_start_and_the_lower_skew_wins() {
    let mut sim = Sim::new(vec![params(0, 1, 100, false), params(1, 1, 0, false)]);
    sim.start_all();
    sim.run_until(10.0);
    // n2 (skew 0) times out first: master-down 3 s against n1's 3.391 s.
    assert_eq!(
        sim.log,
        [
            "0.000 n1 INIT->BACKUP (started)",
            "0.000 n2 INIT->BACKUP (started)",
            "3.000 n2 BACKUP->MASTER (no advertisement within master-down)",
        ]
    );
    assert_eq!(sim.states(), [State::Backup, State::Master]);
}

#[test]
fn equal_skew_is_broken_on_the_source_address_as_ucarp_does() {
    // Two MASTERs with the same interval (as after a partition heals): ucarp's rule is that
    // a MASTER hearing the same interval from a lower raw address steps down.
    let t = Instant::now();
    let master = |addr: u8| {
        let mut p = params(0, 1, 0, false);
        p.local_addr = Ipv4Addr::new(10, 0, 0, addr);
        let mut g = Group::new(p);
        g.step(Event::Start, t);
        g.step(Event::MasterDownTimer, t + Duration::from_secs(3));
        assert_eq!(g.state(), State::Master);
        g
    };
    let from = |addr: u8| Event::Advert {
        src: Ipv4Addr::new(10, 0, 0, addr),
        advbase: 1,
        advskew: 0,
        demote: 0,
    };
    let later = t + Duration::from_secs(4);
    let mut g = master(2);
    let a = g.step(from(1), later);
    assert_eq!(
        g.state(),
        State::Backup,
        "10.0.0.1 is lower: 10.0.0.2 steps down"
    );
    assert!(a.contains(&Action::BecomeBackup));
    let mut g = master(2);
    assert_eq!(g.step(from(3), later), []);
    assert_eq!(
        g.state(),
        State::Master,
        "10.0.0.3 is higher: 10.0.0.2 keeps the VIP"
    );
}

#[test]
fn tie_break_compares_the_raw_address_like_ucarp_on_x86() {
    // ucarp compares ip_src.s_addr as a host integer: on little-endian hosts the last octet
    // weighs most, so 10.0.2.3 wins over 10.0.1.5 although it is the larger address.
    let t = Instant::now();
    let mut p = params(0, 1, 0, false);
    p.local_addr = Ipv4Addr::new(10, 0, 2, 3);
    let mut g = Group::new(p);
    g.step(Event::Start, t);
    g.step(Event::MasterDownTimer, t + Duration::from_secs(3));
    let peer = Event::Advert {
        src: Ipv4Addr::new(10, 0, 1, 5),
        advbase: 1,
        advskew: 0,
        demote: 0,
    };
    assert_eq!(g.step(peer, t + Duration::from_secs(4)), []);
    assert_eq!(g.state(), State::Master);
}

#[test]
fn master_goes_silent_and_backup_takes_over_after_exactly_master_down() {
    let mut sim = Sim::new(vec![params(0, 1, 0, false), params(1, 1, 100, false)]);
    sim.start_all();
    sim.run_until(5.5);
    // n1's adverts: at 3.0, 4.0, 5.0. It dies at 5.5: the last one was at 5.0.
    sim.kill(0);
    sim.run_until(20.0);
    let last = sim.log.last().unwrap();
    // master-down of n2 = 3 + 100/256 = 3.390625 s after the last advert: 8.390625.
    assert_eq!(
        last,
        "8.391 n2 BACKUP->MASTER (no advertisement within master-down)"
    );
    let md = params(1, 1, 100, false).master_down();
    assert_eq!(md, Duration::from_micros(3_390_625));
}

#[test]
fn preemption_off_keeps_a_worse_master() {
    let mut sim = Sim::new(vec![params(0, 1, 100, false)]);
    sim.start_all();
    sim.run_until(5.0);
    assert_eq!(sim.states(), [State::Master]);
    // A better node joins without -P: it stays BACKUP as long as the master advertises.
    sim.nodes.push(Node {
        group: Group::new(params(1, 1, 0, false)),
        advert_at: None,
        master_down_at: None,
        alive: true,
    });
    sim.feed(1, Event::Start);
    sim.run_until(30.0);
    assert_eq!(sim.states(), [State::Master, State::Backup]);
}

#[test]
fn preemption_on_takes_over_from_a_worse_master_at_its_next_advert() {
    let mut sim = Sim::new(vec![params(0, 1, 100, false)]);
    sim.start_all();
    sim.run_until(5.0);
    sim.nodes.push(Node {
        group: Group::new(params(1, 1, 0, true)),
        advert_at: None,
        master_down_at: None,
        alive: true,
    });
    sim.feed(1, Event::Start);
    sim.run_until(8.0);
    assert_eq!(
        sim.log[sim.log.len() - 2..],
        [
            "6.172 n2 BACKUP->MASTER (preempting a worse master)",
            "6.172 n1 MASTER->BACKUP (a better master advertises)",
        ]
    );
    assert_eq!(sim.states(), [State::Backup, State::Master]);
}

#[test]
fn bow_out_gives_immediate_takeover_and_demoted_node_stays_backup() {
    let mut sim = Sim::new(vec![params(0, 1, 0, false), params(1, 1, 100, false)]);
    sim.start_all();
    sim.run_until(4.5);
    sim.feed(0, Event::Demote);
    // The bow-out (advbase/advskew 255) is the first action, before the state change.
    let n1: Vec<Action> = sim
        .actions
        .iter()
        .filter(|(i, _)| *i == 0)
        .map(|(_, a)| *a)
        .collect();
    let bow = n1.iter().rposition(|a| {
        matches!(
            a,
            Action::SendAdvert {
                advbase: 255,
                advskew: 255,
                ..
            }
        )
    });
    assert!(bow.is_some(), "{n1:?}");
    assert_eq!(
        sim.log[sim.log.len() - 2..],
        [
            "4.500 n2 BACKUP->MASTER (the master bowed out)",
            "4.500 n1 MASTER->BACKUP (demoted)",
        ]
    );
    // Demoted, n1 stays BACKUP although it is the better node and n2 later dies.
    sim.kill(1);
    sim.run_until(20.0);
    assert_eq!(sim.nodes[0].group.state(), State::Backup);
    assert!(sim.nodes[0].group.is_demoted());
    // Promoted, it takes part again: master-down later it is MASTER.
    sim.feed(0, Event::Promote);
    sim.run_until(23.1);
    assert_eq!(
        sim.log.last().unwrap(),
        "23.000 n1 BACKUP->MASTER (no advertisement within master-down)"
    );
}

#[test]
fn restarted_node_without_preempt_stays_backup() {
    let mut sim = Sim::new(vec![params(0, 1, 0, false), params(1, 1, 100, false)]);
    sim.start_all();
    sim.run_until(4.0);
    sim.kill(0);
    sim.run_until(10.0);
    assert_eq!(sim.states()[1], State::Master);
    sim.restart(0, params(0, 1, 0, false));
    sim.run_until(60.0);
    assert_eq!(sim.states(), [State::Backup, State::Master]);
}

#[test]
fn our_own_advertisements_are_ignored() {
    let mut g = Group::new(params(0, 1, 0, false));
    let t = Instant::now();
    g.step(Event::Start, t);
    let own = Event::Advert {
        src: Ipv4Addr::new(10, 0, 0, 1),
        advbase: 0,
        advskew: 1,
        demote: 0,
    };
    assert_eq!(g.step(own, t), []);
    let actions = g.step(Event::MasterDownTimer, t + Duration::from_secs(3));
    assert!(actions.contains(&Action::BecomeMaster));
    assert_eq!(g.step(own, t + Duration::from_secs(4)), []);
    assert_eq!(g.state(), State::Master);
}

#[test]
fn demote_count_outranks_advskew() {
    // A master with skew 200 but demote 0 beats one with skew 0 and demote 1 (OpenBSD).
    let mut g = Group::new(params(0, 1, 200, false));
    let t = Instant::now();
    g.step(Event::Start, t);
    g.step(Event::MasterDownTimer, t + Duration::from_secs(4));
    let worse = Event::Advert {
        src: Ipv4Addr::new(10, 0, 0, 9),
        advbase: 1,
        advskew: 0,
        demote: 1,
    };
    assert_eq!(g.step(worse, t + Duration::from_secs(5)), []);
    assert_eq!(g.state(), State::Master);
    let even = Event::Advert {
        src: Ipv4Addr::new(10, 0, 0, 9),
        advbase: 1,
        advskew: 100,
        demote: 0,
    };
    let a = g.step(even, t + Duration::from_secs(6));
    assert!(a.contains(&Action::BecomeBackup), "{a:?}");
}

#[test]
fn link_down_while_master_leaves_and_link_up_rejoins_as_backup() {
    let mut g = Group::new(params(0, 1, 0, false));
    let t = Instant::now();
    g.step(Event::Start, t);
    g.step(Event::MasterDownTimer, t + Duration::from_secs(3));
    let a = g.step(Event::LinkDown, t + Duration::from_secs(4));
    assert_eq!(g.state(), State::Init);
    assert!(a.contains(&Action::BecomeBackup));
    assert!(a.contains(&Action::RunHook(Hook::Down)));
    assert!(a.contains(&Action::Cancel(Timer::Advert)));
    assert!(
        !a.iter().any(|x| matches!(x, Action::SendAdvert { .. })),
        "no advert on a dead link"
    );
    let a = g.step(Event::LinkUp, t + Duration::from_secs(5));
    assert_eq!(g.state(), State::Backup);
    assert!(a.contains(&Action::Arm {
        timer: Timer::MasterDown,
        after: Duration::from_secs(3)
    }));
}

#[test]
fn sub_second_intervals_with_advbase_zero() {
    let p = params(0, 0, 5, false);
    assert_eq!(p.interval(), Duration::from_micros(19_531));
    assert_eq!(p.master_down(), Duration::from_micros(19_531));
    let mut sim = Sim::new(vec![params(0, 0, 3, false), params(1, 0, 6, false)]);
    sim.start_all();
    sim.run_until(0.5);
    assert_eq!(sim.states(), [State::Master, State::Backup]);
    // The master dies; the backup takes over 6/256 s after the last advert it heard.
    sim.kill(0);
    sim.run_until(1.0);
    assert_eq!(sim.states()[1], State::Master);
    let line = sim.log.last().unwrap();
    let at: f64 = line.split(' ').next().unwrap().parse().unwrap();
    assert!((0.5..0.5 + 0.0118 + 0.0235 + 0.001).contains(&at), "{line}");
}

#[test]
fn neutral_mode_skips_the_down_hook_at_start() {
    let t = Instant::now();
    let mut g = Group::new(params(0, 1, 0, false));
    assert!(
        g.step(Event::Start, t)
            .contains(&Action::RunHook(Hook::Down))
    );
    let mut p = params(0, 1, 0, false);
    p.neutral = true;
    let mut g = Group::new(p);
    assert!(
        !g.step(Event::Start, t)
            .contains(&Action::RunHook(Hook::Down))
    );
}

#[test]
fn shutdown_as_master_bows_out_first() {
    let t = Instant::now();
    let mut g = Group::new(params(0, 1, 0, false));
    g.step(Event::Start, t);
    g.step(Event::MasterDownTimer, t + Duration::from_secs(3));
    let a = g.step(Event::Shutdown, t + Duration::from_secs(4));
    assert_eq!(
        a[0],
        Action::SendAdvert {
            advbase: 255,
            advskew: 255,
            demote: 0
        }
    );
    assert_eq!(g.state(), State::Init);
}
