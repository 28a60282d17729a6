use super::*;
use crate::daemon::executor::tests::{IFINDEX, member};
use crate::daemon::recorder::{Effect, Recorder};
use crate::protocol::carp::{Advert, DEFAULT_GROUP, Key, build_ipv4};
use crate::protocol::election::State;

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

mod drain;
mod reload;
mod startup;
mod sync;
