use super::*;
use std::net::Ipv4Addr;

fn params(n: u8, advbase: u8, advskew: u8) -> Params {
    Params {
        vhid: 1,
        advbase,
        advskew,
        preempt: false,
        neutral: false,
        dead_ratio: 3,
        local_addr: Ipv4Addr::new(10, 0, 0, n),
        demote_by: crate::protocol::election::DemoteBy::Advskew,
    }
}

fn settings() -> Settings {
    Settings {
        garp_count: 3,
        garp_interval: Duration::from_millis(200),
        garp_refresh: None,
        shutdown_script: false,
        move_addresses: false,
        tracks: Vec::new(),
        drain_limit: Duration::from_secs(60),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn advert_from(n: u8, advbase: u8, advskew: u8) -> Event {
    Event::Advert {
        src: Ipv4Addr::new(10, 0, 0, n),
        advbase,
        advskew,
        demote: 0,
    }
}

/// A group started at `t0` and MASTER after its master-down, with the commands of
/// the take-over.
fn master(p: Params, s: Settings, t0: Instant) -> (GroupCore, Instant, Vec<Command>) {
    let mut g = GroupCore::new(p, s);
    g.step(Event::Start, t0);
    let t = g.next_deadline().unwrap();
    let out = g.tick(t);
    assert_eq!(g.state(), State::Master);
    (g, t, out)
}

fn leases(out: &[Command]) -> Vec<Lease> {
    out.iter()
        .filter_map(|c| match c {
            Command::Take(l) | Command::Renew(l) | Command::HandOver(l) => Some(*l),
            _ => None,
        })
        .collect()
}

#[test]
fn taking_over_owns_then_announces_then_renews_with_every_advertisement() {
    let t0 = Instant::now();
    let (mut g, t, out) = master(params(1, 1, 0), settings(), t0);
    assert_eq!(t, t0 + Duration::from_secs(3));
    let md = Duration::from_secs(3);
    let lease = Lease {
        renewed: t,
        firm_until: t + md,
        grace_until: t + md + md,
    };
    assert_eq!(
        out,
        [
            Command::Transition {
                from: State::Backup,
                to: State::Master,
                reason: Reason::MasterDownExpired
            },
            Command::Take(lease),
            Command::Garp,
            Command::Script(Hook::Up),
            Command::SendAdvert {
                advbase: 1,
                advskew: 0,
                demote: 0
            },
        ],
        "one lease write on taking over: the first advertisement does not renew it again"
    );
    // The burst: two more gratuitous ARPs, 200 ms apart.
    assert_eq!(g.next_deadline(), Some(t + ms(200)));
    assert_eq!(g.tick(t + ms(200)), [Command::Garp]);
    assert_eq!(g.tick(t + ms(400)), [Command::Garp]);
    assert_eq!(g.next_deadline(), Some(t + Duration::from_secs(1)));
    // Each advertisement renews the lease from its own instant.
    let t1 = t + Duration::from_secs(1);
    let out = g.tick(t1);
    assert_eq!(
        out,
        [
            Command::SendAdvert {
                advbase: 1,
                advskew: 0,
                demote: 0
            },
            Command::Renew(Lease {
                renewed: t1,
                firm_until: t1 + md,
                grace_until: t1 + md + md,
            }),
        ]
    );
}

#[test]
fn a_late_renewal_leaves_no_hole_when_master_down_is_one_interval() {
    // -b 0 -k 5: interval = master-down = 19.531 ms. A renewal 3 ms late finds the
    // firm lease over but the grace still running: the kernel never stops answering.
    let t0 = Instant::now();
    let (mut g, t, out) = master(params(1, 0, 5), settings(), t0);
    let first = leases(&out)[0];
    let interval = g.params().interval();
    assert_eq!(interval, g.params().master_down());
    let late = t + interval + ms(3);
    let renewed = leases(&g.tick(late));
    assert_eq!(renewed.len(), 1);
    assert!(
        first.firm_until < late,
        "the firm part alone would leave a hole"
    );
    assert!(
        first.grace_until > late,
        "the grace covers the late renewal"
    );
    assert_eq!(renewed[0].renewed, late);
    assert_eq!(g.worst_advert_delay(), ms(3));
}

#[test]
fn demotion_hands_over_until_a_peer_advertises() {
    let t0 = Instant::now();
    let (mut g, t, _) = master(params(1, 1, 0), settings(), t0);
    let d = t + ms(1500);
    let out = g.step(Event::Demote, d);
    let md = Duration::from_secs(3);
    assert_eq!(
        out,
        [
            Command::SendAdvert {
                advbase: 255,
                advskew: 255,
                demote: 0
            },
            Command::Transition {
                from: State::Master,
                to: State::Backup,
                reason: Reason::Demoted
            },
            Command::HandOver(Lease {
                renewed: d,
                firm_until: d,
                grace_until: d + md,
            }),
            Command::Script(Hook::Down),
        ]
    );
    assert!(g.is_handing_over());
    // No more gratuitous ARP while handing over.
    assert!(g.tick(t + ms(200)).iter().all(|c| *c != Command::Garp));
    // The peer that took over advertises: released at once.
    assert_eq!(
        g.step(advert_from(2, 1, 100), d + ms(2)),
        [Command::Release]
    );
    assert_eq!(g.ownership(), Ownership::Released);
    assert!(!g.is_handing_over());
}

#[test]
fn a_hand_over_nobody_takes_ends_at_master_down() {
    let t0 = Instant::now();
    let (mut g, t, _) = master(params(1, 1, 0), settings(), t0);
    g.step(Event::Demote, t);
    // A bow-out from elsewhere is not a peer taking over.
    assert_eq!(g.step(advert_from(2, 255, 255), t + ms(5)), []);
    let md = Duration::from_secs(3);
    assert!(g.tick(t + md - ms(1)).is_empty());
    assert_eq!(g.tick(t + md), [Command::Release]);
    // Promoted again: it may win the next election.
    assert_eq!(g.step(Event::Promote, t + md), []);
    let out = g.tick(g.next_deadline().unwrap());
    assert!(matches!(out[1], Command::Take(_)), "{out:?}");
}

#[test]
fn losing_to_a_better_master_releases_at_once() {
    let t0 = Instant::now();
    let (mut g, t, _) = master(params(2, 1, 100), settings(), t0);
    let out = g.step(advert_from(1, 1, 0), t + ms(10));
    assert_eq!(
        out,
        [
            Command::SendAdvert {
                advbase: 1,
                advskew: 100,
                demote: 0
            },
            Command::Transition {
                from: State::Master,
                to: State::Backup,
                reason: Reason::BetterPeer
            },
            Command::Release,
            Command::Script(Hook::Down),
        ]
    );
    assert_eq!(g.election().master(), Some(Ipv4Addr::new(10, 0, 0, 1)));
}

#[test]
fn shutdown_runs_the_down_script_only_when_asked() {
    for shutdown_script in [false, true] {
        let t0 = Instant::now();
        let s = Settings {
            shutdown_script,
            ..settings()
        };
        let (mut g, t, _) = master(params(1, 1, 0), s, t0);
        let out = g.step(Event::Shutdown, t + ms(7));
        assert!(matches!(out[0], Command::SendAdvert { advbase: 255, .. }));
        assert!(matches!(out[2], Command::HandOver(_)), "{out:?}");
        assert_eq!(
            out.contains(&Command::Script(Hook::Down)),
            shutdown_script,
            "-z: {shutdown_script}"
        );
        assert!(g.is_handing_over());
        // A BACKUP that stops releases nothing and runs nothing (without -z).
        let mut b = GroupCore::new(params(2, 1, 0), settings());
        b.step(Event::Start, t0);
        assert_eq!(
            b.step(Event::Shutdown, t0 + ms(1)),
            [Command::Transition {
                from: State::Backup,
                to: State::Init,
                reason: Reason::Shutdown
            }]
        );
    }
}

#[test]
fn link_loss_releases_at_once_without_a_bow_out() {
    let t0 = Instant::now();
    let (mut g, t, _) = master(params(1, 1, 0), settings(), t0);
    let out = g.step(Event::LinkDown, t + ms(1));
    assert!(!out.iter().any(|c| matches!(c, Command::SendAdvert { .. })));
    assert!(out.contains(&Command::Release));
    assert_eq!(g.next_deadline(), None);
}

#[test]
fn a_worse_node_claiming_the_group_gets_an_advertisement_then_a_new_burst() {
    let t0 = Instant::now();
    let (mut g, t, _) = master(params(1, 1, 0), settings(), t0);
    let later = t + Duration::from_secs(5);
    g.tick(later);
    let at = later + ms(1);
    let out = g.step(advert_from(2, 1, 100), at);
    let md = Duration::from_secs(3);
    assert_eq!(
        out,
        [
            Command::SendAdvert {
                advbase: 1,
                advskew: 0,
                demote: 0
            },
            Command::Renew(Lease {
                renewed: at,
                firm_until: at + md,
                grace_until: at + md + md
            }),
            Command::Garp,
        ],
        "the loser hears us before the clients do"
    );
    assert_eq!(g.tick(later + ms(201)), [Command::Garp]);
    assert_eq!(g.state(), State::Master);
}

#[test]
fn announcements_repeat_while_master_when_configured() {
    let t0 = Instant::now();
    let s = Settings {
        garp_refresh: Some(ms(500)),
        garp_count: 1,
        ..settings()
    };
    let (mut g, t, _) = master(params(1, 5, 0), s, t0);
    assert_eq!(g.tick(t + ms(500)), [Command::Garp]);
    assert_eq!(g.tick(t + ms(1000)), [Command::Garp]);
    g.step(Event::Demote, t + ms(1100));
    assert_eq!(g.tick(t + ms(1500)), []);
}

#[test]
fn move_mode_adds_and_removes_the_addresses() {
    let t0 = Instant::now();
    let s = Settings {
        move_addresses: true,
        ..settings()
    };
    let mut g = GroupCore::new(params(1, 1, 0), s.clone());
    let out = g.step(Event::Start, t0);
    assert_eq!(
        out[1..3],
        [Command::Release, Command::RemoveAddresses],
        "{out:?}"
    );
    let (mut g, t, out) = master(params(1, 1, 0), s, t0);
    assert_eq!(out[2], Command::AddAddresses);
    let out = g.step(advert_from(9, 0, 1), t + ms(1));
    assert!(
        out.ends_with(&[
            Command::Release,
            Command::RemoveAddresses,
            Command::Script(Hook::Down)
        ]),
        "{out:?}"
    );
}

#[test]
fn a_bow_out_is_honoured_only_from_the_master_we_follow() {
    let t0 = Instant::now();
    let mut g = GroupCore::new(params(2, 1, 100), settings());
    g.step(Event::Start, t0);
    g.step(advert_from(1, 1, 0), t0 + ms(10));
    // A replayed bow-out from another address changes nothing, not even master-down.
    let deadline = g.next_deadline();
    assert_eq!(g.step(advert_from(66, 255, 255), t0 + ms(20)), []);
    assert_eq!(g.next_deadline(), deadline);
    assert_eq!(g.state(), State::Backup);
    // The master's own bow-out hands over at once.
    let out = g.step(advert_from(1, 255, 255), t0 + ms(30));
    assert!(matches!(out[1], Command::Take(_)), "{out:?}");
}

fn tracked(tracks: &[(&str, Option<u32>)]) -> Settings {
    Settings {
        tracks: tracks
            .iter()
            .map(|(t, w)| Track {
                tracker: t.to_string(),
                weight: *w,
            })
            .collect(),
        ..settings()
    }
}

#[test]
fn a_failed_service_hands_over_at_once_and_recovery_goes_through_backup() {
    let t0 = Instant::now();
    let (mut g, t, _) = master(params(1, 1, 0), tracked(&[("web", None)]), t0);
    let down = t + ms(500);
    let out = g.track("web", TrackerUpdate::Health(false), down);
    assert_eq!(
        out[..3],
        [
            Command::SendAdvert {
                advbase: 255,
                advskew: 255,
                demote: 0
            },
            Command::Transition {
                from: State::Master,
                to: State::Fault,
                reason: Reason::Fault
            },
            Command::HandOver(Lease {
                renewed: down,
                firm_until: down,
                grace_until: down + Duration::from_secs(3),
            }),
        ],
        "a bow-out first: a healthy peer takes over with no probe lost"
    );
    assert!(out.contains(&Command::Script(Hook::Down)));
    assert_eq!(g.state(), State::Fault);
    // The peer that took over advertises: released. FAULT takes nothing over, even
    // the peer's bow-out, and master-down never fires.
    assert_eq!(
        g.step(advert_from(2, 1, 100), down + ms(1)),
        [Command::Release]
    );
    assert_eq!(g.step(advert_from(2, 255, 255), down + ms(2)), []);
    assert_eq!(g.next_deadline(), None);
    // Recovered: BACKUP first, master-down armed.
    let up = down + Duration::from_secs(10);
    let out = g.track("web", TrackerUpdate::Health(true), up);
    assert_eq!(
        out,
        [Command::Transition {
            from: State::Fault,
            to: State::Backup,
            reason: Reason::Recovered
        }]
    );
    assert_eq!(g.next_deadline(), Some(up + Duration::from_secs(3)));
    // The same report again changes nothing; an unrelated tracker is ignored.
    assert_eq!(g.track("web", TrackerUpdate::Health(true), up), []);
    assert_eq!(g.track("db", TrackerUpdate::Health(false), up), []);
}

#[test]
fn a_fault_while_the_link_is_down_is_remembered_both_ways() {
    let t0 = Instant::now();
    let mut g = GroupCore::new(params(1, 1, 0), tracked(&[("web", None)]));
    g.step(Event::Start, t0);
    g.step(Event::LinkDown, t0);
    g.track("web", TrackerUpdate::Health(false), t0);
    g.step(Event::LinkUp, t0 + ms(1));
    assert_eq!(g.state(), State::Fault);
    g.step(Event::LinkDown, t0 + ms(2));
    g.track("web", TrackerUpdate::Health(true), t0 + ms(3));
    g.step(Event::LinkUp, t0 + ms(4));
    assert_eq!(g.state(), State::Backup);
}

#[test]
fn weights_are_advertised_as_added_advskew_at_once() {
    let t0 = Instant::now();
    let tracks = tracked(&[("a", Some(50)), ("b", Some(30)), ("f", Some(10))]);
    let (mut g, t, _) = master(params(1, 1, 0), tracks, t0);
    let adverts = |out: Vec<Command>| -> Vec<u8> {
        out.iter()
            .filter_map(|c| match c {
                Command::SendAdvert { advskew, .. } => Some(*advskew),
                _ => None,
            })
            .collect()
    };
    assert_eq!(adverts(g.track("a", TrackerUpdate::Health(false), t)), [50]);
    assert_eq!(adverts(g.track("b", TrackerUpdate::Health(false), t)), [80]);
    assert_eq!(adverts(g.track("a", TrackerUpdate::Health(true), t)), [30]);
    assert_eq!(adverts(g.track("f", TrackerUpdate::Value(3), t)), [60]);
    assert_eq!(g.state(), State::Master, "a weight never causes FAULT");
    // The next advertisement comes one new interval later: 1 s + 60/256 s (after the
    // take-over's gratuitous ARP burst).
    assert_eq!(g.tick(t + ms(200)), [Command::Garp]);
    assert_eq!(g.tick(t + ms(400)), [Command::Garp]);
    assert_eq!(
        g.next_deadline(),
        Some(t + Duration::from_secs(1) + crate::protocol::carp::skew(60))
    );
    // Capped below the bow-out value.
    assert_eq!(adverts(g.track("f", TrackerUpdate::Value(1000), t)), [254]);
}

#[test]
fn a_demoted_masters_lease_lasts_the_master_down_peers_wait_for_it() {
    let t0 = Instant::now();
    let mut p = params(1, 1, 0);
    p.dead_ratio = 1;
    let (mut g, t, _) = master(p, tracked(&[("a", Some(128))]), t0);
    let out = g.track("a", TrackerUpdate::Health(false), t);
    let renewed = leases(&out);
    // advbase 1, dead ratio 1, advskew 0 + 128: 1.5 s, the interval it now advertises.
    let md = Duration::from_millis(1500);
    assert_eq!(
        renewed,
        [Lease {
            renewed: t,
            firm_until: t + md,
            grace_until: t + md + md
        }]
    );
}

#[test]
fn weights_go_into_the_demote_count_when_asked() {
    let t0 = Instant::now();
    let mut p = params(1, 1, 7);
    p.demote_by = crate::protocol::election::DemoteBy::DemoteCount;
    let (mut g, t, _) = master(p, tracked(&[("a", Some(2))]), t0);
    let out = g.track("a", TrackerUpdate::Health(false), t);
    assert_eq!(
        out[0],
        Command::SendAdvert {
            advbase: 1,
            advskew: 7,
            demote: 2
        }
    );
    // A BACKUP takes over from a more demoted MASTER without preemption.
    let mut b = GroupCore::new(params(2, 1, 100), settings());
    b.step(Event::Start, t0);
    let demoted = Event::Advert {
        src: Ipv4Addr::new(10, 0, 0, 1),
        advbase: 1,
        advskew: 7,
        demote: 2,
    };
    b.step(demoted, t);
    assert_eq!(b.state(), State::Master);
}

#[test]
fn a_file_value_other_than_zero_is_a_fault_without_a_weight() {
    let t0 = Instant::now();
    let (mut g, t, _) = master(params(1, 1, 0), tracked(&[("maint", None)]), t0);
    assert!(g.track("maint", TrackerUpdate::Value(0), t).is_empty());
    g.track("maint", TrackerUpdate::Value(1), t);
    assert_eq!(g.state(), State::Fault);
    g.track("maint", TrackerUpdate::Value(0), t);
    assert_eq!(g.state(), State::Backup);
}

fn forwards(out: &[Command]) -> Vec<Command> {
    out.iter()
        .filter(|c| {
            matches!(
                c,
                Command::Forward { .. }
                    | Command::ForwardTail { .. }
                    | Command::StopForwarding
                    | Command::Drain { .. }
                    | Command::Drained { .. }
            )
        })
        .copied()
        .collect()
}

/// A BACKUP following 10.0.0.1, started at `t0`.
fn follower(n: u8, t0: Instant) -> GroupCore {
    let mut g = GroupCore::new(params(n, 1, 100), settings());
    g.step(Event::Start, t0);
    g.step(advert_from(1, 1, 0), t0 + ms(10));
    g
}

#[test]
fn a_graceful_take_over_forwards_to_the_master_that_bowed_out_until_the_limit() {
    let t0 = Instant::now();
    let mut b = follower(2, t0);
    let at = t0 + ms(30);
    let out = b.step(advert_from(1, 255, 255), at);
    let until = at + Duration::from_secs(60);
    assert_eq!(
        forwards(&out),
        [Command::Forward {
            to: Ipv4Addr::new(10, 0, 0, 1),
            until
        }]
    );
    let take = out.iter().position(|c| matches!(c, Command::Take(_)));
    let fwd = out
        .iter()
        .position(|c| matches!(c, Command::Forward { .. }));
    let garp = out.iter().position(|c| *c == Command::Garp);
    assert!(
        take < fwd && fwd < garp,
        "owned, then forwarding, then announced: {out:?}"
    );
    assert_eq!(b.forwarding().map(|f| f.until), Some(until));
    // The limit ends it, whatever else happens.
    let out = b.tick(until);
    assert_eq!(forwards(&out), [Command::StopForwarding]);
    assert_eq!(b.forwarding(), None);
    assert_eq!(forwards(&b.tick(until + ms(1))), []);
}

#[test]
fn only_a_bow_out_makes_a_take_over_forward() {
    let t0 = Instant::now();
    // Master-down: the master died or vanished; nothing to forward to.
    let mut b = follower(2, t0);
    let out = b.tick(b.next_deadline().unwrap());
    assert_eq!(b.state(), State::Master);
    assert_eq!(forwards(&out), []);
    // A bow-out with forwarding turned off.
    let mut g = GroupCore::new(
        params(2, 1, 100),
        Settings {
            drain_limit: Duration::ZERO,
            ..settings()
        },
    );
    g.step(Event::Start, t0);
    g.step(advert_from(1, 1, 0), t0 + ms(10));
    let out = g.step(advert_from(1, 255, 255), t0 + ms(20));
    assert_eq!(g.state(), State::Master);
    assert_eq!(forwards(&out), []);
}

#[test]
fn leaving_master_stops_forwarding_at_once_or_after_the_tail_of_a_bow_out() {
    let t0 = Instant::now();
    let to = Ipv4Addr::new(10, 0, 0, 1);
    // Link lost: at once.
    let mut b = follower(2, t0);
    b.step(advert_from(1, 255, 255), t0 + ms(30));
    assert!(b.forwarding().is_some());
    let out = b.step(Event::LinkDown, t0 + ms(40));
    assert_ne!(b.state(), State::Master);
    assert!(out.contains(&Command::StopForwarding), "{out:?}");
    assert_eq!(b.forwarding(), None);
    // A bow-out, a better master: clients still send here until they have processed
    // the next master's gratuitous ARP, so forwarding goes on, for master-down at most.
    for event in [
        Event::Demote,
        Event::Shutdown,
        Event::Fault,
        Event::StepDown,
        advert_from(1, 0, 0),
    ] {
        let mut b = follower(2, t0);
        b.step(advert_from(1, 255, 255), t0 + ms(30));
        let at = t0 + ms(40);
        let out = b.step(event, at);
        assert_ne!(b.state(), State::Master, "{event:?}");
        let until = at + b.election().master_down();
        assert_eq!(
            forwards(&out),
            [Command::ForwardTail { to, until }],
            "{event:?}"
        );
        assert_eq!(forwards(&b.tick(until - ms(1))), []);
        assert_eq!(forwards(&b.tick(until)), [Command::StopForwarding]);
        assert_eq!(b.forwarding(), None);
    }
}

#[test]
fn back_and_forth_each_master_forwards_only_to_the_one_before_it() {
    let t0 = Instant::now();
    let (mut a, t, _) = master(params(1, 1, 0), settings(), t0);
    let mut b = follower(2, t0);
    // A hands over to B: B forwards to A, A forwards nothing.
    let out = a.step(Event::Demote, t + ms(1));
    assert_eq!(forwards(&out), []);
    let out = b.step(advert_from(1, 255, 255), t + ms(2));
    assert!(out.contains(&Command::Forward {
        to: Ipv4Addr::new(10, 0, 0, 1),
        until: t + ms(2) + Duration::from_secs(60)
    }));
    // A hears B, follows it; then B hands back to A.
    a.step(Event::Promote, t + ms(3));
    a.step(advert_from(2, 1, 100), t + ms(4));
    let out = b.step(Event::Demote, t + ms(5));
    assert!(
        matches!(forwards(&out)[..], [Command::ForwardTail { to, .. }] if to == Ipv4Addr::new(10, 0, 0, 1)),
        "only a tail towards its own previous master: {out:?}"
    );
    let out = a.step(advert_from(2, 255, 255), t + ms(6));
    assert!(out.contains(&Command::Forward {
        to: Ipv4Addr::new(10, 0, 0, 2),
        until: t + ms(6) + Duration::from_secs(60)
    }));
    assert_eq!(
        a.forwarding().map(|f| f.to),
        Some(Ipv4Addr::new(10, 0, 0, 2))
    );
}

#[test]
fn a_drain_ends_when_the_connections_closed_or_at_its_limit_or_on_taking_over() {
    let t0 = Instant::now();
    let (mut a, t, _) = master(params(1, 1, 0), settings(), t0);
    assert_eq!(a.start_drain(ms(500), t), [], "a MASTER does not drain");
    a.step(Event::Demote, t + ms(1));
    let out = a.start_drain(ms(500), t + ms(2));
    assert_eq!(out, [Command::Drain { until: t + ms(502) }]);
    assert_eq!(a.draining(), Some(t + ms(502)));
    assert_eq!(a.drained(), [Command::Drained { limit: false }]);
    assert_eq!(a.drained(), []);
    // At its limit.
    a.start_drain(ms(500), t + ms(10));
    assert_eq!(
        forwards(&a.tick(t + ms(510))),
        [Command::Drained { limit: true }]
    );
    assert_eq!(a.draining(), None);
    // Taking over again ends it.
    a.start_drain(ms(5000), t + ms(600));
    a.step(Event::Promote, t + ms(601));
    let mut out = Vec::new();
    while a.state() != State::Master {
        out = a.tick(a.next_deadline().unwrap());
    }
    assert!(out.contains(&Command::Drained { limit: false }), "{out:?}");
}

#[test]
fn move_mode_keeps_the_addresses_after_a_graceful_hand_over_while_connections_drain() {
    let t0 = Instant::now();
    let s = Settings {
        move_addresses: true,
        ..settings()
    };
    let removals = |out: &[Command]| {
        out.iter()
            .filter(|c| **c == Command::RemoveAddresses)
            .count()
    };
    // Demoted: the next master forwards our connections to us for its limit, so the
    // addresses stay that long.
    let (mut g, t, _) = master(params(1, 1, 0), s.clone(), t0);
    g.step(Event::Demote, t + ms(1));
    let out = g.step(advert_from(2, 1, 100), t + ms(2));
    assert_eq!(out, [Command::Release], "released, the addresses kept");
    let limit = t + ms(2) + Duration::from_secs(60);
    assert_eq!(removals(&g.tick(limit - ms(1))), 0);
    assert_eq!(removals(&g.tick(limit)), 1);
    // Draining: they go when the drain ends.
    let (mut g, t, _) = master(params(1, 1, 0), s.clone(), t0);
    g.step(Event::Demote, t + ms(1));
    g.start_drain(Duration::from_secs(5), t + ms(1));
    g.step(advert_from(2, 1, 100), t + ms(2));
    assert_eq!(
        g.drained(),
        [Command::Drained { limit: false }, Command::RemoveAddresses]
    );
    assert_eq!(removals(&g.tick(t + Duration::from_secs(61))), 0, "once");
    // Taking over again keeps them, and nothing removes them later.
    let (mut g, t, _) = master(params(1, 1, 0), s, t0);
    g.step(Event::Demote, t + ms(1));
    g.step(advert_from(2, 1, 100), t + ms(2));
    g.step(Event::Promote, t + ms(3));
    g.step(advert_from(2, 255, 255), t + ms(4));
    assert_eq!(g.state(), State::Master);
    assert_eq!(removals(&g.tick(t + Duration::from_secs(61))), 0);
}
