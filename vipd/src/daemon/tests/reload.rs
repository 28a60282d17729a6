use super::super::*;
use crate::daemon::executor::tests::{IFINDEX, member};
use crate::daemon::recorder::{Effect, Recorder};

/// One group, MASTER, with its effects so far taken.
async fn master() -> (Daemon<Recorder>, Instant) {
    let t0 = Instant::now();
    let links = HashMap::from([(IFINDEX, true)]);
    let mut d = Daemon::new(vec![member(|_| {})], links, Recorder::default(), t0);
    d.start(t0).await;
    let t1 = d.next_deadline().unwrap();
    d.on_timers(t1).await;
    assert_eq!(d.members[0].core.state(), State::Master);
    d.fx.take();
    (d, t1)
}

#[tokio::test(flavor = "current_thread")]
async fn new_settings_apply_in_place_without_a_transition() {
    let (mut d, t) = master().await;
    let transitions = d.members[0].counters.transitions;
    let cfg = member(|g| g.advskew = Some(50)).cfg;
    d.update(0, cfg, t).await;
    assert_eq!(d.members[0].core.state(), State::Master);
    assert_eq!(d.members[0].counters.transitions, transitions);
    assert!(d.fx.take().is_empty(), "nothing is sent or written at once");
    // The next advertisement carries the new advskew (byte 2 of the CARP header).
    let carp_dst = crate::kernel::garp::dst_mac(crate::protocol::carp::DEFAULT_GROUP);
    let mut skews = Vec::new();
    while skews.is_empty() {
        let next = d.next_deadline().unwrap();
        d.on_timers(next).await;
        skews.extend(d.fx.take().into_iter().filter_map(|e| match e {
            Effect::Frame { frame, .. } if frame[..6] == carp_dst => Some(frame[14 + 20 + 2]),
            _ => None,
        }));
    }
    assert_eq!(skews, [50]);
    assert_eq!(d.members[0].core.state(), State::Master);
}

#[tokio::test(flavor = "current_thread")]
async fn a_removed_master_hands_over_and_leaves_once_the_peer_took_over() {
    let (mut d, t) = master().await;
    d.retire(0, t).await;
    assert!(d.reloading());
    assert!(d.take_retired().is_empty(), "still handing over");
    let log = d.fx.take();
    assert!(
        matches!(log[0], Effect::Frame { .. }),
        "bow-out first: {log:?}"
    );
    let peer = super::tests::advert(super::tests::PEER, 9, 1, 100);
    d.on_advert(IFINDEX, &peer, t + Duration::from_millis(3))
        .await;
    let gone = d.take_retired();
    assert_eq!(gone.len(), 1);
    assert!(d.members.is_empty() && !d.reloading());
    // Its advertisements now belong to no group.
    d.on_advert(IFINDEX, &peer, t + Duration::from_millis(4))
        .await;
    assert_eq!(d.status(t, Vec::new()).unknown_group, 1);
}
