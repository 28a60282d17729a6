use super::super::*;
use super::{PEER, advert, daemon};
use crate::daemon::executor::tests::IFINDEX;
use crate::daemon::recorder::Effect;

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
    let target = crate::daemon::effects::ForwardTarget {
        vhid: 1,
        peer: PEER,
        peer_mac: mac_a,
        own_mac: crate::daemon::executor::tests::MAC,
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
    let tail = crate::daemon::effects::ForwardTarget {
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
