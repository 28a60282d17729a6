//! Carries out a group's [`Command`]s through the [`Effects`] boundary. It decides nothing
//! about the protocol: it signs and frames advertisements, writes leases for each VIP,
//! frames gratuitous ARP, expands scripts per VIP, and keeps the group's counters.
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info, warn};

use crate::config::{GroupConfig, Vip};
use crate::daemon::effects::{Effects, ForwardTarget};
use crate::kernel::garp;
use crate::ops::scripts::ScriptRun;
use crate::protocol::carp::{self, Advert};
use crate::protocol::election::{Hook, Reason};
use crate::protocol::group::{self, Command};
use crate::protocol::rx::{Receiver, SentCounters};

/// The interface a group runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
}

/// What the group sends with: its source address and the running counters.
#[derive(Clone, Copy, Debug)]
pub struct Tx {
    pub src: Ipv4Addr,
    pub sent: SentCounters,
    pub ip_id: u16,
}

impl Tx {
    /// `counter_start` and `ip_id` should be random: the counter's low bits would otherwise
    /// tell how many advertisements were sent.
    pub fn new(src: Ipv4Addr, counter_start: u64, ip_id: u16) -> Tx {
        Tx {
            src,
            sent: SentCounters {
                start: counter_start,
                last: counter_start,
            },
            ip_id,
        }
    }
}

/// What `vipd status` reports of a group beyond its state.
#[derive(Clone, Copy, Debug)]
pub struct GroupCounters {
    pub since: Instant,
    pub transitions: u64,
    pub adverts_sent: u64,
    pub last_advert: Option<Instant>,
    pub last_owned_at: Option<SystemTime>,
    pub last_own_flip: Option<Duration>,
    pub last_demote_at: Option<SystemTime>,
    /// Connections to the VIPs left while draining (the last count).
    pub drain_left: Option<u32>,
}

impl GroupCounters {
    pub fn new(now: Instant) -> GroupCounters {
        GroupCounters {
            since: now,
            transitions: 0,
            adverts_sent: 0,
            last_advert: None,
            last_owned_at: None,
            last_own_flip: None,
            last_demote_at: None,
            drain_left: None,
        }
    }
}

/// One group at run time, in parts with one job each.
pub struct Member {
    pub cfg: GroupConfig,
    pub link: Link,
    pub core: group::GroupCore,
    pub rx: Receiver,
    pub tx: Tx,
    pub counters: GroupCounters,
    /// VIP addresses vipd created (and removes when it stops).
    pub added: Vec<Vip>,
    /// The MAC each peer's regular advertisements come from: where a graceful take-over
    /// forwards the previous master's connections.
    pub peer_macs: std::collections::HashMap<Ipv4Addr, [u8; 6]>,
}

impl Member {
    pub fn label(&self) -> String {
        format!("{}/vhid{}", self.cfg.interface, self.cfg.vhid)
    }

    fn vip_addrs(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.cfg.vips.iter().map(|v| v.addr)
    }
}

/// Carries out `commands`, in order, decided at `now`.
pub async fn execute<E: Effects>(fx: &mut E, m: &mut Member, commands: Vec<Command>, now: Instant) {
    for c in commands {
        match c {
            Command::SendAdvert {
                advbase,
                advskew,
                demote,
            } => send_advert(fx, m, advbase, advskew, demote),
            Command::Take(lease) => {
                let started = Instant::now();
                write_leases(fx, m, Some(lease));
                let flip = started.elapsed();
                m.counters.last_own_flip = Some(flip);
                m.counters.last_owned_at = Some(SystemTime::now());
                info!(group = %m.label(), flip_us = flip.as_secs_f64() * 1e6,
                    "VIPs owned in the XDP map");
            }
            Command::Renew(lease) => write_leases(fx, m, Some(lease)),
            Command::HandOver(lease) => {
                write_leases(fx, m, Some(lease));
                info!(group = %m.label(), "handing over: VIPs held until a peer advertises");
            }
            Command::Release => {
                let started = Instant::now();
                write_leases(fx, m, None);
                info!(group = %m.label(), flip_us = started.elapsed().as_secs_f64() * 1e6,
                    "VIPs released in the XDP map");
            }
            Command::Garp => {
                for vip in m.vip_addrs().collect::<Vec<_>>() {
                    let frame = garp::garp_frame(m.link.mac, vip);
                    if let Err(e) = fx.send_frame(m.link.index, &frame) {
                        debug!(group = %m.label(), error = %e, "gratuitous ARP not sent");
                    }
                }
            }
            Command::AddAddresses => {
                for v in m.cfg.vips.clone() {
                    match fx.add_address(m.link.index, v).await {
                        Ok(true) => m.added.push(v),
                        Ok(false) => {}
                        Err(e) => warn!(group = %m.label(), vip = %v, error = %e, "cannot add VIP"),
                    }
                }
            }
            Command::RemoveAddresses => {
                for v in m.cfg.vips.clone() {
                    if let Err(e) = fx.remove_address(m.link.index, v).await {
                        warn!(group = %m.label(), vip = %v, error = %e, "cannot remove VIP");
                    }
                    m.added.retain(|a| *a != v);
                }
            }
            Command::Script(hook) => {
                let script = match hook {
                    Hook::Up => m.cfg.upscript.clone(),
                    Hook::Down => m.cfg.downscript.clone(),
                };
                if let Some(script) = script {
                    for v in &m.cfg.vips {
                        let mut args = vec![m.cfg.interface.clone(), v.addr.to_string()];
                        args.extend(m.cfg.xparam.clone());
                        fx.run_script(ScriptRun {
                            vhid: m.cfg.vhid,
                            script: script.clone(),
                            args,
                            timeout: m.cfg.script_timeout,
                            user: m.cfg.script_user.clone(),
                        });
                    }
                }
            }
            Command::Forward { to, until } | Command::ForwardTail { to, until } => {
                let tail = matches!(c, Command::ForwardTail { .. });
                match m.peer_macs.get(&to).copied() {
                    Some(peer_mac) => {
                        let target = ForwardTarget {
                            vhid: m.cfg.vhid,
                            peer: to,
                            peer_mac,
                            own_mac: m.link.mac,
                            until,
                            tail,
                        };
                        write_forwards(fx, m, Some(target));
                        info!(group = %m.label(), previous_master = %to,
                            mac = %mac_text(peer_mac), tail,
                            limit_s = until.saturating_duration_since(now).as_secs_f64(),
                            "forwarding the previous master's connections to it");
                    }
                    None => warn!(group = %m.label(), previous_master = %to,
                        "no MAC known for the previous master: its connections are not forwarded"),
                }
            }
            Command::StopForwarding => {
                write_forwards(fx, m, None);
                info!(group = %m.label(), "forwarding stopped");
            }
            Command::Drain { until } => {
                m.counters.drain_left = None;
                info!(group = %m.label(),
                    limit_s = until.saturating_duration_since(now).as_secs_f64(),
                    "draining: waiting for the connections to the VIPs to close");
            }
            Command::Drained { limit } => {
                if limit {
                    warn!(group = %m.label(), left = ?m.counters.drain_left,
                        "drain limit reached with connections left");
                } else {
                    info!(group = %m.label(), "drained");
                }
                m.counters.drain_left = None;
            }
            Command::Transition { from, to, reason } => {
                if reason == Reason::MasterDownExpired {
                    // What was last heard of the master: by the daemon, and by the kernel.
                    let ms = |t: Instant| now.saturating_duration_since(t).as_secs_f64() * 1e3;
                    let kernel = fx.last_seen(m.link.index, m.cfg.vhid);
                    info!(
                        group = %m.label(),
                        last_accepted_ms = m.counters.last_advert.map(ms),
                        kernel_last_seen_ms = kernel.map(|(t, _)| ms(t)),
                        kernel_last_src = ?kernel.map(|(_, a)| a),
                        "master-down expired"
                    );
                }
                m.counters.transitions += 1;
                m.counters.since = now;
                info!(group = %m.label(), from = from.name(), to = to.name(), %reason, "transition");
                if let Some(notify) = m.cfg.notify.clone() {
                    // keepalived's habit: one script hears every state, with the group and
                    // what the group advertises as its priority (advskew, demotion included).
                    let state = if reason == Reason::Shutdown {
                        "STOP"
                    } else {
                        to.name()
                    };
                    let (_, advskew, _) = m.core.election().advert_fields();
                    fx.run_script(ScriptRun {
                        vhid: m.cfg.vhid,
                        script: notify,
                        args: vec![
                            m.cfg.interface.clone(),
                            m.cfg.vhid.to_string(),
                            state.to_owned(),
                            advskew.to_string(),
                        ],
                        timeout: m.cfg.script_timeout,
                        user: m.cfg.script_user.clone(),
                    });
                }
            }
        }
    }
}

fn write_forwards<E: Effects>(fx: &mut E, m: &Member, target: Option<ForwardTarget>) {
    for vip in m.vip_addrs() {
        if let Err(e) = fx.set_forward(m.link.index, vip, target) {
            warn!(group = %m.label(), %vip, error = %e, "cannot write the forwarding entry");
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

fn write_leases<E: Effects>(fx: &mut E, m: &Member, lease: Option<group::Lease>) {
    for vip in m.vip_addrs() {
        if let Err(e) = fx.write_lease(m.link.index, m.cfg.vhid, vip, lease) {
            warn!(group = %m.label(), %vip, error = %e, "cannot write the VIP lease");
        }
    }
}

fn send_advert<E: Effects>(fx: &mut E, m: &mut Member, advbase: u8, advskew: u8, demote: u8) {
    m.tx.sent.last = m.tx.sent.last.wrapping_add(1);
    m.tx.ip_id = m.tx.ip_id.wrapping_add(1);
    let vips: Vec<Ipv4Addr> = m.vip_addrs().collect();
    let adv = Advert::signed(
        m.cfg.vhid,
        advbase,
        advskew,
        demote,
        m.tx.sent.last,
        &vips,
        &m.cfg.key,
    )
    .sealed(m.cfg.coverage, &vips, &m.cfg.key, m.tx.src);
    if m.cfg.unicast() {
        // One copy to each peer; the advertisement counts as sent when one copy left.
        let mut sent = false;
        for &peer in &m.cfg.peers {
            let packet = carp::build_ipv4(m.tx.src, peer, m.tx.ip_id, &adv);
            match fx.send_packet(m.link.index, peer, &packet) {
                Ok(()) => sent = true,
                Err(e) => debug!(group = %m.label(), %peer, error = %e, "advertisement not sent"),
            }
        }
        if sent {
            m.counters.adverts_sent += 1;
        }
        return;
    }
    let packet = carp::build_ipv4(m.tx.src, m.cfg.destination, m.tx.ip_id, &adv);
    let frame = garp::ipv4_frame(m.link.mac, m.cfg.destination, &packet);
    match fx.send_frame(m.link.index, &frame) {
        Ok(()) => m.counters.adverts_sent += 1,
        Err(e) => debug!(group = %m.label(), error = %e, "advertisement not sent"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::RawGroup;
    use crate::daemon::recorder::{Effect, Recorder};
    use crate::protocol::carp::DEFAULT_GROUP;
    use crate::protocol::election::Params;
    use crate::protocol::group::{Lease, Settings};

    pub(crate) const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    pub(crate) const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    pub(crate) const IFINDEX: u32 = 7;

    /// A group on ifindex 7 with two VIPs, advertising from 10.0.0.1.
    pub(crate) fn member(edit: impl FnOnce(&mut RawGroup)) -> Member {
        let mut raw = RawGroup {
            interface: Some("eth0".into()),
            vhid: Some(1),
            vips: vec!["10.0.0.100/24".into(), "10.0.0.101/24".into()],
            password: Some("secret".into()),
            ..RawGroup::default()
        };
        edit(&mut raw);
        let cfg = raw.validate("").unwrap();
        let params = Params {
            vhid: cfg.vhid,
            advbase: cfg.advbase,
            advskew: cfg.advskew,
            preempt: cfg.preempt,
            neutral: cfg.neutral,
            dead_ratio: cfg.dead_ratio,
            local_addr: ME,
            demote_by: crate::protocol::election::DemoteBy::Advskew,
        };
        let settings = Settings::of(&cfg);
        Member {
            link: Link {
                name: "eth0".into(),
                index: IFINDEX,
                mac: MAC,
            },
            core: group::GroupCore::new(params, settings),
            rx: Receiver::new("eth0/vhid1".into(), &cfg, ME),
            tx: Tx::new(ME, 1000, 7),
            counters: GroupCounters::new(Instant::now()),
            added: Vec::new(),
            peer_macs: Default::default(),
            cfg,
        }
    }

    fn vip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    fn lease(now: Instant) -> Lease {
        Lease {
            renewed: now,
            firm_until: now + Duration::from_secs(3),
            grace_until: now + Duration::from_secs(6),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_unicast_group_sends_each_peer_its_own_copy_and_no_multicast_frame() {
        let mut fx = Recorder::default();
        let peers = [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)];
        let mut m = member(|r| {
            r.peers = peers.iter().map(|p| p.to_string()).collect();
            r.srcip = Some(ME.to_string());
        });
        let now = Instant::now();
        let advert = Command::SendAdvert {
            advbase: 1,
            advskew: 0,
            demote: 0,
        };
        execute(&mut fx, &mut m, vec![advert], now).await;
        let log = fx.take();
        assert_eq!(log.len(), 2, "{log:?}");
        let vips = [vip(100), vip(101)];
        for (e, peer) in log.iter().zip(peers) {
            let Effect::Packet {
                ifindex,
                dst,
                packet,
            } = e
            else {
                panic!("{e:?}");
            };
            assert_eq!((*ifindex, *dst), (IFINDEX, peer));
            // Addressed to the peer, signed, TTL 255, the same counter in both copies.
            let (src, adv) = carp::decode(packet, peer, |v| {
                (v == 1).then_some((&vips[..], &m.cfg.key))
            })
            .unwrap();
            assert_eq!((src, adv.counter), (ME, 1001));
        }
        assert_eq!(m.counters.adverts_sent, 1);
        // No copy left: not counted as sent.
        fx.fail_sends = true;
        execute(&mut fx, &mut m, vec![advert], now).await;
        assert!(fx.take().is_empty());
        assert_eq!(m.counters.adverts_sent, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_take_over_writes_every_lease_then_announces_then_advertises() {
        let mut fx = Recorder::default();
        let mut m = member(|_| {});
        let now = Instant::now();
        let l = lease(now);
        let commands = vec![
            Command::Take(l),
            Command::Garp,
            Command::SendAdvert {
                advbase: 1,
                advskew: 0,
                demote: 0,
            },
        ];
        execute(&mut fx, &mut m, commands, now).await;
        let log = fx.take();
        assert_eq!(log.len(), 5, "{log:?}");
        for (i, last) in [100, 101].into_iter().enumerate() {
            assert_eq!(
                log[i],
                Effect::Lease {
                    ifindex: IFINDEX,
                    vhid: 1,
                    vip: vip(last),
                    lease: Some(l)
                }
            );
            assert_eq!(
                log[2 + i],
                Effect::Frame {
                    ifindex: IFINDEX,
                    frame: garp::garp_frame(MAC, vip(last))
                }
            );
        }
        // The advertisement is a valid, signed one with the next counter.
        let Effect::Frame { frame, .. } = &log[4] else {
            panic!("{:?}", log[4]);
        };
        assert_eq!(&frame[..6], &garp::dst_mac(DEFAULT_GROUP));
        let vips = [vip(100), vip(101)];
        let (src, adv) = carp::decode(&frame[14..], DEFAULT_GROUP, |v| {
            (v == 1).then_some((&vips[..], &m.cfg.key))
        })
        .unwrap();
        assert_eq!((src, adv.counter, adv.advbase), (ME, 1001, 1));
        assert_eq!(m.tx.sent.last, 1001);
        assert_eq!(m.counters.adverts_sent, 1);
        assert!(m.counters.last_owned_at.is_some() && m.counters.last_own_flip.is_some());
        // Renewal and release touch only the leases.
        execute(
            &mut fx,
            &mut m,
            vec![Command::Renew(l), Command::Release],
            now,
        )
        .await;
        let leases: Vec<_> = fx
            .take()
            .into_iter()
            .map(|e| match e {
                Effect::Lease { vip, lease, .. } => (vip, lease),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            leases,
            [
                (vip(100), Some(l)),
                (vip(101), Some(l)),
                (vip(100), None),
                (vip(101), None)
            ]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn scripts_run_once_per_vip_as_ucarp_runs_them() {
        let up = std::env::current_exe().unwrap();
        let mut fx = Recorder::default();
        let mut m = member(|g| {
            g.upscript = Some(up.clone());
            g.xparam = Some("extra".into());
        });
        let now = Instant::now();
        let commands = vec![Command::Script(Hook::Up), Command::Script(Hook::Down)];
        execute(&mut fx, &mut m, commands, now).await;
        assert_eq!(
            fx.take(),
            [
                Effect::Script {
                    script: up.clone(),
                    args: vec!["eth0".into(), "10.0.0.100".into(), "extra".into()]
                },
                Effect::Script {
                    script: up,
                    args: vec!["eth0".into(), "10.0.0.101".into(), "extra".into()]
                },
            ],
            "no down script configured: nothing runs for Down"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn move_mode_removes_on_release_only_what_it_manages_and_forgets_what_it_added() {
        let mut fx = Recorder {
            present: vec![(IFINDEX, vip(100))],
            ..Recorder::default()
        };
        let mut m = member(|g| g.address_mode = Some(crate::config::AddressMode::Move));
        let now = Instant::now();
        execute(&mut fx, &mut m, vec![Command::AddAddresses], now).await;
        assert_eq!(m.added, [m.cfg.vips[1]], "10.0.0.100 was there already");
        execute(&mut fx, &mut m, vec![Command::RemoveAddresses], now).await;
        assert!(m.added.is_empty());
        assert!(fx.present.is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_advertisement_that_cannot_leave_is_not_counted_as_sent() {
        let mut fx = Recorder {
            fail_sends: true,
            ..Recorder::default()
        };
        let mut m = member(|_| {});
        let send = Command::SendAdvert {
            advbase: 1,
            advskew: 0,
            demote: 0,
        };
        execute(&mut fx, &mut m, vec![send, send], Instant::now()).await;
        assert_eq!(m.counters.adverts_sent, 0);
        // The counter still moves on: a counter is never sent twice.
        assert_eq!(m.tx.sent.last, 1002);
    }
}
