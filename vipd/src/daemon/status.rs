//! What `vipd status` reports: the daemon's groups, interfaces and trackers.
use super::*;
use crate::kernel::Kernel;
use crate::ops::control;

impl<E: Effects> Daemon<E> {
    pub fn status(&self, now: Instant, xdp: Vec<(String, u64)>) -> Status {
        let unix_us = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .ok()
        };
        Status {
            schema: crate::ops::control::SCHEMA_VERSION,
            pid: std::process::id(),
            groups: self
                .members
                .iter()
                .map(|m| GroupStatus {
                    interface: m.cfg.interface.clone(),
                    vhid: m.cfg.vhid,
                    vips: m.cfg.vips.iter().map(|v| v.to_string()).collect(),
                    peers: m.cfg.peers.iter().map(|p| p.to_string()).collect(),
                    state: if m.core.draining().is_some() {
                        "DRAINING".to_owned()
                    } else {
                        m.core.state().name().to_owned()
                    },
                    since_secs: now
                        .saturating_duration_since(m.counters.since)
                        .as_secs_f64(),
                    master: m.core.election().master().map(|a| a.to_string()),
                    advbase: m.cfg.advbase,
                    advskew: m.cfg.advskew,
                    demoted: m.core.election().is_demoted(),
                    last_advert_ms: m
                        .counters
                        .last_advert
                        .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                    transitions: m.counters.transitions,
                    adverts_sent: m.counters.adverts_sent,
                    worst_advert_delay_us: m.core.worst_advert_delay().as_micros() as u64,
                    adverts_received: m.rx.stats().accepted,
                    rejected: m
                        .rx
                        .stats()
                        .rejections()
                        .iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect(),
                    last_owned_at_unix_us: m.counters.last_owned_at.and_then(unix_us),
                    last_own_flip_us: m.counters.last_own_flip.map(|d| d.as_secs_f64() * 1e6),
                    last_demote_at_unix_us: m.counters.last_demote_at.and_then(unix_us),
                    demotion: m.core.election().demotion(),
                    failing: m.core.failing(),
                    draining: m
                        .core
                        .draining()
                        .map(|until| crate::ops::control::DrainStatus {
                            connections: m.counters.drain_left,
                            remaining_secs: until.saturating_duration_since(now).as_secs_f64(),
                        }),
                    forwarding: m
                        .core
                        .forwarding()
                        .map(|f| crate::ops::control::ForwardStatus {
                            to: f.to.to_string(),
                            mac: m.peer_macs.get(&f.to).map(|mac| executor::mac_text(*mac)),
                            remaining_secs: f.until.saturating_duration_since(now).as_secs_f64(),
                        }),
                })
                .collect(),
            xdp,
            unknown_group: self.unknown_group,
            control: Default::default(),
            interfaces: self.interfaces.clone(),
            trackers: self
                .trackers
                .iter()
                .map(|(name, r)| crate::ops::control::TrackerStatus {
                    name: name.clone(),
                    healthy: r.healthy,
                    value: r.value,
                    since_secs: r.at.map(|t| now.saturating_duration_since(t).as_secs_f64()),
                })
                .collect(),
            forwarding: Vec::new(),
        }
    }
}

/// The real daemon's status, with the kernel programs' and the control socket's counters.
pub(super) fn status(d: &Daemon<Kernel>, control: &control::ServerStats) -> Status {
    let (xdp, forwarding) = d.fx.counters();
    let mut s = d.status(Instant::now(), xdp);
    s.control = control.snapshot();
    s.forwarding = forwarding;
    s
}
