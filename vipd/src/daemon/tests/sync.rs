use super::super::*;
use crate::config::TrackRef;
use crate::daemon::executor::tests::{IFINDEX, member};
use crate::daemon::recorder::Recorder;
use crate::protocol::group::TrackerUpdate;

/// Two groups of sync group "edge" on one interface, both MASTER; the first tracks
/// "web" (required).
async fn pair() -> (Daemon<Recorder>, Instant) {
    pair_tracking(None).await
}

/// As [`pair`], "web" with `weight`.
async fn pair_tracking(weight: Option<u32>) -> (Daemon<Recorder>, Instant) {
    let first = member(|g| {
        g.sync_group = Some("edge".into());
        g.track = vec![TrackRef {
            tracker: "web".into(),
            weight,
        }];
    });
    let second = member(|g| {
        g.vhid = Some(2);
        g.vips = vec!["10.0.0.102/24".into()];
        g.sync_group = Some("edge".into());
    });
    let t0 = Instant::now();
    let links = HashMap::from([(IFINDEX, true)]);
    let mut d = Daemon::new(vec![first, second], links, Recorder::default(), t0);
    d.start(t0).await;
    let t1 = d.next_deadline().unwrap();
    d.on_timers(t1).await;
    assert!(d.members.iter().all(|m| m.core.state() == State::Master));
    (d, t1)
}

fn states(d: &Daemon<Recorder>) -> Vec<State> {
    d.members.iter().map(|m| m.core.state()).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_fault_in_one_group_puts_its_sync_group_in_fault_and_back() {
    let (mut d, t) = pair().await;
    d.on_tracker("web", TrackerUpdate::Health(false), t).await;
    assert_eq!(states(&d), [State::Fault, State::Fault]);
    d.on_tracker("web", TrackerUpdate::Health(true), t).await;
    assert_eq!(states(&d), [State::Backup, State::Backup]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_sync_group_advertises_the_demotion_of_its_worst_member() {
    let (mut d, t) = pair_tracking(Some(200)).await;
    d.on_tracker("web", TrackerUpdate::Health(false), t).await;
    let skews: Vec<u8> = d
        .members
        .iter()
        .map(|m| m.core.election().advert_fields().1)
        .collect();
    assert_eq!(skews, [200, 200], "a better member never preempts back");
    d.on_tracker("web", TrackerUpdate::Health(true), t).await;
    assert_eq!(d.members[1].core.election().advert_fields().1, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_group_removed_by_a_reload_leaves_its_sync_group_in_place() {
    let (mut d, t) = pair().await;
    d.retire(0, t).await;
    assert_eq!(states(&d)[1], State::Master, "the other member stays");
}

#[tokio::test(flavor = "current_thread")]
async fn leaving_master_takes_the_sync_group_along_once() {
    let (mut d, t) = pair().await;
    d.on_request(
        Request::Demote {
            target: Target::Vhid(1),
            persist: false,
        },
        t,
    )
    .await;
    assert_eq!(states(&d), [State::Backup, State::Backup]);
    assert!(d.members[0].core.election().is_demoted());
    assert!(
        !d.members[1].core.election().is_demoted(),
        "the other group steps down, it is not demoted"
    );
    // It may win its group again later; that moves nobody else.
    let later = t + Duration::from_secs(10);
    d.on_timers(later).await;
    assert_eq!(states(&d), [State::Backup, State::Master]);
}
