//! Link loss, demotion, sub-second timing, neutral mode, validation, and properties
//! that hold for any sequence of events.
use super::*;

#[test]
fn link_down_while_master() {
    let mut lan = Lan::new(vec![node(1, 1, 0, false), node(2, 1, 100, false)]);
    lan.start_all();
    lan.run_until(5.5);
    // n1 loses its carrier: it neither sends nor hears adverts any more.
    lan.feed(0, Event::LinkDown);
    lan.nodes[0].alive = false;
    assert_eq!(
        lan.returned(0, Event::LinkDown),
        [
            Action::Transition {
                from: State::Master,
                to: State::Init,
                reason: Reason::LinkDown
            },
            Action::BecomeBackup { bowed_out: false },
            Action::RunHook(Hook::Down),
            Action::Cancel(Timer::Advert),
            Action::Cancel(Timer::MasterDown),
        ],
        "no advertisement on a dead link"
    );
    lan.run_until(12.0);
    lan.nodes[0].alive = true;
    lan.feed(0, Event::LinkUp);
    lan.run_until(30.0);
    assert_eq!(
        lan.log[2..],
        [
            "3.000 n1 BACKUP->MASTER (no advertisement within master-down)",
            "5.500 n1 MASTER->INIT (link down)",
            "8.391 n2 BACKUP->MASTER (no advertisement within master-down)",
            "12.000 n1 INIT->BACKUP (link up)",
        ]
    );
    // Back on the link n1 is BACKUP behind n2 (no -P), without running a hook again.
    assert_eq!(lan.states(), [State::Backup, State::Master]);
    let after_link_up = lan.actions_of(0);
    let up = after_link_up
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::Transition {
                    reason: Reason::LinkUp,
                    ..
                }
            )
        })
        .unwrap();
    assert!(
        !after_link_up[up..]
            .iter()
            .any(|a| matches!(a, Action::RunHook(_)))
    );
}

#[test]
fn link_down_while_backup_and_before_start() {
    let mut g = Election::new(node(1, 1, 0, false));
    assert_eq!(g.step(Event::LinkDown), []);
    // Started without a carrier: the start-time down hook runs (as ucarp), no timer.
    assert_eq!(
        g.step(Event::Start),
        [
            Action::BecomeBackup { bowed_out: false },
            Action::RunHook(Hook::Down)
        ]
    );
    assert_eq!(g.state(), State::Init);
    assert_eq!(g.step(Event::MasterDownTimer), []);
    let up = g.step(Event::LinkUp);
    assert_eq!(g.state(), State::Backup);
    assert!(up.contains(&Action::Arm {
        timer: Timer::MasterDown,
        after: secs(3.0)
    }));
    let down = g.step(Event::LinkDown);
    assert_eq!(
        down,
        [
            Action::Transition {
                from: State::Backup,
                to: State::Init,
                reason: Reason::LinkDown
            },
            Action::Cancel(Timer::Advert),
            Action::Cancel(Timer::MasterDown),
        ]
    );
}

#[test]
fn a_demoted_node_stays_backup_until_promoted() {
    let mut lan = Lan::new(vec![node(1, 1, 0, true), node(2, 1, 100, false)]);
    lan.start_all();
    lan.run_until(4.5);
    lan.feed(0, Event::Demote);
    assert!(lan.nodes[0].group.is_demoted());
    // n2 keeps advertising a worse interval; n1 has -P but is demoted.
    lan.run_until(10.2);
    // n2 dies; n1's master-down keeps expiring, and it stays BACKUP.
    lan.kill(1);
    lan.run_until(30.0);
    assert_eq!(lan.nodes[0].group.state(), State::Backup);
    lan.feed(0, Event::Promote);
    assert!(!lan.nodes[0].group.is_demoted());
    lan.run_until(40.0);
    assert_eq!(
        lan.log[2..],
        [
            "3.000 n1 BACKUP->MASTER (no advertisement within master-down)",
            "4.500 n2 BACKUP->MASTER (the master bowed out)",
            "4.500 n1 MASTER->BACKUP (demoted)",
            "33.000 n1 BACKUP->MASTER (no advertisement within master-down)",
        ]
    );
    // The demotion: bow-out first, then the state change, then letting go.
    assert_eq!(
        lan.returned(0, Event::Demote),
        [
            Action::SendAdvert {
                advbase: 255,
                advskew: 255,
                demote: 0
            },
            Action::Transition {
                from: State::Master,
                to: State::Backup,
                reason: Reason::Demoted
            },
            Action::BecomeBackup { bowed_out: true },
            Action::RunHook(Hook::Down),
            Action::Cancel(Timer::Advert),
            Action::Arm {
                timer: Timer::MasterDown,
                after: secs(3.0)
            },
        ]
    );
}

#[test]
fn a_demoted_backup_ignores_bow_outs_and_promotion_with_preempt_takes_over() {
    let mut g = Election::new(node(1, 1, 0, true));
    g.step(Event::Start);
    assert_eq!(g.step(Event::Demote), []);
    let from = |advbase, advskew| Event::Advert {
        src: addr(2),
        advbase,
        advskew,
        demote: 0,
    };
    let md = Action::Arm {
        timer: Timer::MasterDown,
        after: secs(3.0),
    };
    assert_eq!(g.step(from(1, 100)), [md]);
    assert_eq!(g.step(from(255, 255)), [md]);
    assert_eq!(g.step(Event::MasterDownTimer), [md]);
    assert_eq!(g.state(), State::Backup);
    assert_eq!(g.step(Event::Promote), [md]);
    assert_eq!(g.step(Event::Promote), [], "already promoted");
    let a = g.step(from(1, 100));
    assert_eq!(
        a[0],
        Action::Transition {
            from: State::Backup,
            to: State::Master,
            reason: Reason::PreemptWorsePeer
        }
    );
}

#[test]
fn sub_second_intervals_with_advbase_zero() {
    // advskew 5: interval 5/256 s = 19.531 ms; master-down 3 × 0 + 5/256 s, the same.
    let p = node(1, 0, 5, false);
    assert_eq!(p.validate(), Ok(()));
    assert_eq!(p.interval(), Duration::from_micros(19_531));
    assert_eq!(p.master_down(), Duration::from_micros(19_531));
    let mut lan = Lan::new(vec![node(1, 0, 3, false), node(2, 0, 6, false)]);
    lan.start_all();
    lan.run_until(0.5);
    assert_eq!(lan.states(), [State::Master, State::Backup]);
    // n1 advertises every 3/256 s = 11.718 ms.
    let sent = lan.adverts_of(0);
    assert!(
        sent.windows(2)
            .all(|w| w[1] - w[0] == Duration::from_micros(11_718))
    );
    assert_eq!(sent.len(), 42);
    lan.kill(0);
    lan.run_until(1.0);
    let (_, took_over, _) = *lan
        .actions
        .iter()
        .find(|(n, _, a)| *n == 1 && *a == Action::BecomeMaster)
        .unwrap();
    assert_eq!(
        took_over - *sent.last().unwrap(),
        Duration::from_micros(23_437)
    );
    assert_eq!(
        lan.log,
        [
            "0.000 n1 INIT->BACKUP (started)",
            "0.000 n2 INIT->BACKUP (started)",
            "0.012 n1 BACKUP->MASTER (no advertisement within master-down)",
            "0.516 n2 BACKUP->MASTER (no advertisement within master-down)",
        ]
    );
}

#[test]
fn a_master_too_slow_to_beat_our_master_down_is_taken_over_at_once() {
    // ucarp: "Putting MASTER DOWN (going to time out)" — even without -P.
    let mut g = Election::new(node(1, 1, 0, false));
    g.step(Event::Start);
    let slow = Event::Advert {
        src: addr(2),
        advbase: 4,
        advskew: 0,
        demote: 0,
    };
    let a = g.step(slow);
    assert_eq!(
        a[0],
        Action::Transition {
            from: State::Backup,
            to: State::Master,
            reason: Reason::PeerTooSlow
        }
    );
    // advbase 3 = our master-down exactly: not slower, so we wait.
    let mut g = Election::new(node(1, 1, 0, false));
    g.step(Event::Start);
    let just = Event::Advert {
        src: addr(2),
        advbase: 3,
        advskew: 0,
        demote: 0,
    };
    assert_eq!(
        g.step(just),
        [Action::Arm {
            timer: Timer::MasterDown,
            after: secs(3.0)
        }]
    );
}

#[test]
fn neutral_mode_skips_the_down_hook_at_start_only() {
    let mut g = Election::new(node(1, 1, 0, false));
    assert_eq!(
        g.step(Event::Start),
        [
            Action::Transition {
                from: State::Init,
                to: State::Backup,
                reason: Reason::Started
            },
            Action::BecomeBackup { bowed_out: false },
            Action::RunHook(Hook::Down),
            Action::Arm {
                timer: Timer::MasterDown,
                after: secs(3.0)
            },
        ]
    );
    let mut p = node(1, 1, 0, false);
    p.neutral = true;
    let mut g = Election::new(p);
    assert_eq!(
        g.step(Event::Start),
        [
            Action::Transition {
                from: State::Init,
                to: State::Backup,
                reason: Reason::Started
            },
            Action::Arm {
                timer: Timer::MasterDown,
                after: secs(3.0)
            },
        ]
    );
    // Leaving MASTER later runs the down hook in neutral mode too.
    g.step(Event::MasterDownTimer);
    let better = Event::Advert {
        src: addr(2),
        advbase: 0,
        advskew: 128,
        demote: 0,
    };
    assert!(g.step(better).contains(&Action::RunHook(Hook::Down)));
}

#[test]
fn timers_in_the_wrong_state_are_ignored() {
    let mut g = Election::new(node(1, 1, 0, false));
    assert_eq!(g.step(Event::MasterDownTimer), []);
    assert_eq!(g.step(Event::AdvertTimer), []);
    g.step(Event::Start);
    assert_eq!(g.step(Event::AdvertTimer), []);
    g.step(Event::MasterDownTimer);
    assert_eq!(g.step(Event::MasterDownTimer), []);
    assert_eq!(
        g.step(Event::AdvertTimer),
        [
            Action::SendAdvert {
                advbase: 1,
                advskew: 0,
                demote: 0
            },
            Action::Arm {
                timer: Timer::Advert,
                after: secs(1.0)
            },
        ]
    );
    assert_eq!(g.step(Event::Start), [], "already started");
}

#[test]
fn shutdown_as_backup_only_stops_the_timers() {
    let mut g = Election::new(node(1, 1, 0, false));
    g.step(Event::Start);
    assert_eq!(
        g.step(Event::Shutdown),
        [
            Action::Transition {
                from: State::Backup,
                to: State::Init,
                reason: Reason::Shutdown
            },
            Action::Cancel(Timer::Advert),
            Action::Cancel(Timer::MasterDown),
        ]
    );
    assert_eq!(g.step(Event::LinkUp), [], "stopped");
    assert_eq!(g.step(Event::Shutdown), []);
}

#[test]
fn params_are_validated_as_ucarp_does() {
    let ok = node(1, 1, 0, false);
    assert_eq!(ok.validate(), Ok(()));
    let with = |f: fn(&mut Params)| {
        let mut p = ok.clone();
        f(&mut p);
        p.validate()
    };
    assert_eq!(with(|p| p.vhid = 0), Err(ParamError::ZeroVhid));
    assert_eq!(with(|p| p.vhid = 255), Ok(()));
    assert_eq!(with(|p| p.advbase = 0), Err(ParamError::ZeroInterval));
    assert_eq!(
        with(|p| {
            p.advbase = 0;
            p.advskew = 1
        }),
        Ok(())
    );
    assert_eq!(with(|p| p.advbase = 255), Err(ParamError::AdvbaseReserved));
    assert_eq!(with(|p| p.advskew = 255), Err(ParamError::AdvskewReserved));
    assert_eq!(with(|p| p.dead_ratio = 0), Err(ParamError::ZeroDeadRatio));
    assert_eq!(
        with(|p| p.local_addr = Ipv4Addr::UNSPECIFIED),
        Err(ParamError::NoLocalAddr)
    );
    assert!(ParamError::ZeroInterval.to_string().contains("advskew"));
    let mut p = node(1, 2, 128, false);
    p.dead_ratio = 5;
    assert_eq!(p.interval(), secs(2.5));
    assert_eq!(p.master_down(), secs(10.5));
}

#[test]
fn names_and_reasons_read_well() {
    assert_eq!(
        [State::Init, State::Backup, State::Master].map(State::name),
        ["INIT", "BACKUP", "MASTER"]
    );
    assert_eq!(
        Reason::PreemptWorsePeer.to_string(),
        "preempting a worse master"
    );
    assert_eq!(Reason::LinkDown.to_string(), "link down");
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Start),
        Just(Event::MasterDownTimer),
        Just(Event::AdvertTimer),
        Just(Event::Demote),
        Just(Event::Promote),
        Just(Event::Shutdown),
        Just(Event::LinkDown),
        Just(Event::LinkUp),
        Just(Event::Fault),
        Just(Event::Recover),
        Just(Event::StepDown),
        (0u8..255).prop_map(Event::SetDemotion),
        (1u8..4, 0u8..3, any::<u8>(), 0u8..3).prop_map(|(src, advbase, advskew, demote)| {
            Event::Advert {
                src: addr(src),
                advbase,
                advskew,
                demote,
            }
        }),
        Just(Event::Advert {
            src: addr(2),
            advbase: 255,
            advskew: 255,
            demote: 0
        }),
    ]
}

proptest! {
    #[test]
    fn transitions_are_emitted_once_per_change_and_match_the_state(
        advbase in 0u8..3,
        advskew in 1u8..255,
        preempt: bool,
        neutral: bool,
        demote_count in 0u8..2,
        events in proptest::collection::vec(event(), 1..60),
    ) {
        let mut p = node(1, advbase, advskew, preempt);
        p.neutral = neutral;
        let mut g = Election::new(p);
        g.set_demote_count(demote_count);
        for ev in events {
            let before = g.state();
            let was_demoted = g.is_demoted();
            let actions = g.step(ev);
            let transitions: Vec<_> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Transition { from, to, .. } => Some((*from, *to)),
                    _ => None,
                })
                .collect();
            if before == g.state() {
                prop_assert!(transitions.is_empty(), "{ev:?}: {actions:?}");
            } else {
                prop_assert_eq!(transitions, vec![(before, g.state())]);
            }
            let became_master = actions.contains(&Action::BecomeMaster);
            prop_assert_eq!(became_master, before != State::Master && g.state() == State::Master);
            if was_demoted {
                prop_assert!(g.state() != State::Master, "a demoted group became MASTER");
            }
            if g.is_faulted() {
                prop_assert!(g.state() != State::Master && g.state() != State::Backup,
                    "a faulted group is {:?}", g.state());
            }
            let (_, skew, _) = g.advert_fields();
            prop_assert!(skew < 255, "our advskew never reads as a bow-out");
            if let Event::Advert { src, .. } = ev
                && src == addr(1)
            {
                prop_assert!(actions.is_empty());
            }
            if g.state() == State::Master {
                prop_assert!(!g.is_demoted());
            }
        }
    }
}
