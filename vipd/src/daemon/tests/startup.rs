//! Start-up and reload on the recording effects: the order in which the data plane is
//! prepared, and the reload rules that decide what a removed group leaves behind.
use std::path::PathBuf;

use super::super::reload::{Trackers, reload, settle};
use super::super::*;
use crate::config::Config;
use crate::daemon::recorder::{Effect, Recorder};
use crate::kernel::dataplane::XdpPreference;
use crate::testing::Scratch;

const ETH0: u32 = 2;
const OWN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// A configuration file in a scratch directory of its own.
/// The directory goes (with the file) when the `ConfigFile` does.
struct ConfigFile(PathBuf, #[allow(dead_code)] Scratch);

impl ConfigFile {
    fn new(tag: &str) -> ConfigFile {
        let dir = Scratch::new(&format!("startup-{tag}"));
        ConfigFile(dir.0.join("vipd.toml"), dir)
    }

    fn write(&self, groups: &[(u8, &str)]) -> Config {
        let text: String = groups
            .iter()
            .map(|(vhid, vip)| {
                format!(
                    "[[group]]\ninterface = \"eth0\"\nvhid = {vhid}\nvips = [\"{vip}/24\"]\n\
                     password = \"secret\"\nadvbase = 1\n\n"
                )
            })
            .collect();
        std::fs::write(&self.0, text).unwrap();
        Config::load(&self.0).unwrap()
    }

    /// A demotions file nobody writes.
    fn demotions(&self) -> PathBuf {
        self.0.with_extension("demoted")
    }
}

fn options(file: &ConfigFile) -> Options {
    Options {
        control_socket: file.0.with_extension("sock"),
        bpffs_dir: file.0.with_extension("bpf"),
        xdp_mode: XdpPreference::Auto,
        rt_priority: None,
        metrics_listen: None,
        config_file: Some(file.0.clone()),
    }
}

/// eth0 with the node's own address, and `present` addresses configured by hand.
fn recorder(present: &[Ipv4Addr]) -> Recorder {
    let mut fx = Recorder::default();
    fx.links.insert(
        "eth0".into(),
        LinkInfo {
            index: ETH0,
            mac: [2, 0, 0, 0, 0, 1],
            running: true,
        },
    );
    fx.present.push((ETH0, OWN));
    fx.present.extend(present.iter().map(|a| (ETH0, *a)));
    fx
}

fn position(log: &[Effect], what: impl Fn(&Effect) -> bool) -> usize {
    log.iter()
        .position(what)
        .unwrap_or_else(|| panic!("not in {log:?}"))
}

/// Every group MASTER: its master-down passes with no peer.
async fn all_master(d: &mut Daemon<Recorder>, t0: Instant) -> Instant {
    d.start(t0).await;
    let mut t = t0;
    while d.members.iter().any(|m| m.core.state() != State::Master) {
        t = d.next_deadline().unwrap();
        d.on_timers(t).await;
    }
    d.fx.take();
    t
}

/// Runs the timers until the groups a reload removed have gone (as the event loop does,
/// settling after every event).
async fn until_settled(d: &mut Daemon<Recorder>, demotions: &std::path::Path) {
    for _ in 0..100 {
        if !d.reloading() {
            return;
        }
        let t = d.next_deadline().unwrap();
        d.on_timers(t).await;
        settle(d, demotions).await;
    }
    panic!("the removed groups never went");
}

#[tokio::test(flavor = "current_thread")]
async fn start_up_guards_every_vip_before_attaching_and_attaches_before_adding_addresses() {
    let file = ConfigFile::new("order");
    let config = file.write(&[(1, "10.0.0.100"), (2, "10.0.0.102")]);
    let d = start(config, recorder(&[]), &options(&file)).await.unwrap();
    let log = &d.fx.log;
    assert_eq!(
        log[0],
        Effect::OpenDataplane {
            interfaces: vec![ETH0]
        }
    );
    let attach = position(log, |e| matches!(e, Effect::Attach { ifindex: ETH0 }));
    for vip in [Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 102)] {
        let guard = position(
            log,
            |e| matches!(e, Effect::Lease { vip: v, lease: None, .. } if *v == vip),
        );
        let add = position(
            log,
            |e| matches!(e, Effect::AddAddress { vip: v, .. } if v.addr == vip),
        );
        assert!(guard < attach && attach < add, "{log:?}");
    }
    for vhid in [1, 2] {
        let registered = position(
            log,
            |e| matches!(e, Effect::RegisterGroup { vhid: v, .. } if *v == vhid),
        );
        assert!(registered < attach, "{log:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_unicast_group_is_registered_for_its_peers_and_this_nodes_address() {
    let file = ConfigFile::new("unicast");
    let mut config = file.write(&[(1, "10.0.0.100"), (2, "10.0.0.102")]);
    let peer = Ipv4Addr::new(10, 0, 0, 2);
    config.groups[0].peers = vec![peer];
    config.groups[0].peer_ttl_check = false;
    let d = start(config, recorder(&[]), &options(&file)).await.unwrap();
    let rx_of = |vhid: u8| {
        d.fx.log
            .iter()
            .find_map(|e| match e {
                Effect::RegisterGroup { vhid: v, rx, .. } if *v == vhid => Some(rx.clone()),
                _ => None,
            })
            .unwrap()
    };
    let unicast = rx_of(1);
    assert_eq!(
        (unicast.destination, unicast.peers, unicast.ttl_check),
        (OWN, vec![peer], false)
    );
    let multicast = rx_of(2);
    assert_eq!(
        (multicast.destination, multicast.peers, multicast.ttl_check),
        (crate::protocol::carp::DEFAULT_GROUP, vec![], true)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_that_is_this_node_is_refused_before_the_data_plane_is_touched() {
    let file = ConfigFile::new("selfpeer");
    let mut config = file.write(&[(1, "10.0.0.100")]);
    // Not the source address (that is refused in the configuration) but another of its own.
    let other_own = Ipv4Addr::new(10, 0, 0, 7);
    config.groups[0].peers = vec![Ipv4Addr::new(10, 0, 0, 2), other_own];
    let fx = recorder(&[other_own]);
    let err = start(config, fx, &options(&file)).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        "peer 10.0.0.7 is an address of this node on eth0: list the other nodes' addresses"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_wrong_source_address_is_refused_before_the_data_plane_is_touched() {
    let file = ConfigFile::new("srcip");
    let mut config = file.write(&[(1, "10.0.0.100")]);
    config.groups[0].srcip = Some(Ipv4Addr::new(10, 0, 0, 9));
    let mut fx = recorder(&[]);
    fx.log.clear();
    let err = start(config, fx, &options(&file)).await.err().unwrap();
    assert!(
        err.to_string().contains("is not an address of eth0"),
        "{err}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_removed_group_hands_over_before_its_address_and_entries_go() {
    let file = ConfigFile::new("remove");
    let config = file.write(&[(1, "10.0.0.100"), (2, "10.0.0.102")]);
    let opts = options(&file);
    let mut d = start(config, recorder(&[]), &opts).await.unwrap();
    all_master(&mut d, Instant::now()).await;
    file.write(&[(1, "10.0.0.100")]);
    let mut trackers = Trackers::start(Vec::new()).unwrap();
    let summary = reload(&mut d, &opts, &mut trackers, &file.demotions())
        .await
        .unwrap();
    assert!(d.reloading(), "{summary}");
    let gone = Ipv4Addr::new(10, 0, 0, 102);
    let log = d.fx.take();
    // First the hand-over: the group bows out and its lease stops being firm (the kernel
    // ends it once the peer advertises)...
    let now = Instant::now();
    assert!(
        log.iter().any(
            |e| matches!(e, Effect::Lease { vhid: 2, lease: Some(l), .. } if l.firm_until <= now)
        ),
        "{log:?}"
    );
    assert!(
        log.iter().any(|e| matches!(e, Effect::Frame { .. })),
        "no bow-out advertisement: {log:?}"
    );
    // ...while its address and its entries stay.
    assert!(
        !log.iter().any(|e| matches!(
            e,
            Effect::RemoveAddress { .. } | Effect::DropVip { .. } | Effect::DropGroup { .. }
        )),
        "{log:?}"
    );
    until_settled(&mut d, &file.demotions()).await;
    let log = d.fx.take();
    assert!(log.contains(&Effect::RemoveAddress {
        ifindex: ETH0,
        vip: "10.0.0.102/24".parse().unwrap()
    }));
    assert!(log.contains(&Effect::DropVip {
        ifindex: ETH0,
        vip: gone
    }));
    assert!(log.contains(&Effect::DropGroup {
        ifindex: ETH0,
        vhid: 2
    }));
    assert_eq!(d.members.len(), 1);
    assert!(d.fx.vips.contains(&(ETH0, Ipv4Addr::new(10, 0, 0, 100))));
}

#[tokio::test(flavor = "current_thread")]
async fn an_address_another_group_needs_is_kept() {
    let file = ConfigFile::new("moved");
    let config = file.write(&[(1, "10.0.0.100"), (2, "10.0.0.102")]);
    let opts = options(&file);
    let mut d = start(config, recorder(&[]), &opts).await.unwrap();
    all_master(&mut d, Instant::now()).await;
    // The VIP moves from vhid 2 to a new vhid 3.
    file.write(&[(1, "10.0.0.100"), (3, "10.0.0.102")]);
    let mut trackers = Trackers::start(Vec::new()).unwrap();
    reload(&mut d, &opts, &mut trackers, &file.demotions())
        .await
        .unwrap();
    assert!(
        !d.fx
            .log
            .iter()
            .any(|e| matches!(e, Effect::RegisterGroup { vhid: 3, .. })),
        "vhid 3 started while vhid 2 still held its VIP"
    );
    until_settled(&mut d, &file.demotions()).await;
    let log = d.fx.take();
    let moved = Ipv4Addr::new(10, 0, 0, 102);
    assert!(
        !log.iter()
            .any(|e| matches!(e, Effect::RemoveAddress { vip, .. } if vip.addr == moved)),
        "{log:?}"
    );
    assert!(!log.contains(&Effect::DropVip {
        ifindex: ETH0,
        vip: moved
    }));
    assert!(log.contains(&Effect::DropGroup {
        ifindex: ETH0,
        vhid: 2
    }));
    assert!(
        log.iter()
            .any(|e| matches!(e, Effect::RegisterGroup { vhid: 3, .. }))
    );
    let vhids: Vec<u8> = d.members.iter().map(|m| m.cfg.vhid).collect();
    assert_eq!(vhids, [1, 3]);
    assert!(d.fx.present.contains(&(ETH0, moved)));
}

#[tokio::test(flavor = "current_thread")]
async fn a_hand_added_vip_of_a_removed_group_stays_guarded() {
    let file = ConfigFile::new("guarded");
    let by_hand = Ipv4Addr::new(10, 0, 0, 102);
    let config = file.write(&[(1, "10.0.0.100"), (2, "10.0.0.102")]);
    let opts = options(&file);
    let mut d = start(config, recorder(&[by_hand]), &opts).await.unwrap();
    all_master(&mut d, Instant::now()).await;
    file.write(&[(1, "10.0.0.100")]);
    let mut trackers = Trackers::start(Vec::new()).unwrap();
    reload(&mut d, &opts, &mut trackers, &file.demotions())
        .await
        .unwrap();
    until_settled(&mut d, &file.demotions()).await;
    let log = d.fx.take();
    // vipd did not add it: it stays, and so does its entry, "not owned".
    assert!(
        !log.iter()
            .any(|e| matches!(e, Effect::RemoveAddress { .. })),
        "{log:?}"
    );
    assert!(!log.contains(&Effect::DropVip {
        ifindex: ETH0,
        vip: by_hand
    }));
    assert!(d.fx.vips.contains(&(ETH0, by_hand)));
    assert!(d.guarded.contains(&(ETH0, by_hand)));
    // A later reload keeps guarding it.
    file.write(&[(1, "10.0.0.100"), (4, "10.0.0.104")]);
    reload(&mut d, &opts, &mut trackers, &file.demotions())
        .await
        .unwrap();
    assert!(d.fx.vips.contains(&(ETH0, by_hand)));
}
