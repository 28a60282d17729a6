//! Prometheus metrics: `--metrics-listen ADDR` serves `GET /metrics` in Prometheus' text
//! format. Each scrape asks the daemon for a status snapshot through the same kind of
//! request the control socket sends, so scrapes never touch the daemon's state directly,
//! and a slow or stuck scraper holds up nothing but itself.
use std::net::SocketAddr;
use std::time::Duration;

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::ops::control::{Pending, Reply, Request, Status};

/// Longest a scraper may take to send its request, and the daemon to answer.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Scrapes served at once.
const MAX_CONNECTIONS: usize = 8;

const STATES: [&str; 5] = ["INIT", "BACKUP", "MASTER", "FAULT", "DRAINING"];
const GROUP: &[&str] = &["interface", "vhid"];

/// The metrics of one status snapshot, in Prometheus' text format.
pub fn render(status: &Status) -> String {
    let registry = Registry::new();
    let counter = |name: &str, help: &str, labels: &[&str]| {
        let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
        registry
            .register(Box::new(c.clone()))
            .expect("unique metric");
        c
    };
    let gauge = |name: &str, help: &str, labels: &[&str]| {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
        registry
            .register(Box::new(g.clone()))
            .expect("unique metric");
        g
    };
    let seconds = |name: &str, help: &str| {
        let g = GaugeVec::new(Opts::new(name, help), GROUP).expect("valid metric");
        registry
            .register(Box::new(g.clone()))
            .expect("unique metric");
        g
    };
    let state = gauge(
        "vipd_group_state",
        "1 for the state each group is in, 0 for the others",
        &["interface", "vhid", "state"],
    );
    let transitions = counter(
        "vipd_transitions_total",
        "State changes of each group",
        GROUP,
    );
    let sent = counter("vipd_adverts_sent_total", "Advertisements sent", GROUP);
    let received = counter(
        "vipd_adverts_received_total",
        "Advertisements accepted",
        GROUP,
    );
    let rejected = counter(
        "vipd_adverts_rejected_total",
        "Advertisements rejected, by reason",
        &["interface", "vhid", "reason"],
    );
    let demoted = gauge(
        "vipd_group_demoted",
        "1 while a group is administratively demoted",
        GROUP,
    );
    let last_advert = seconds(
        "vipd_last_advert_age_seconds",
        "Time since the last accepted advertisement from a peer",
    );
    let worst_delay = seconds(
        "vipd_worst_advert_delay_seconds",
        "Longest an advertisement left after its due time",
    );
    let in_state = seconds(
        "vipd_state_age_seconds",
        "Time since the group's last state change",
    );
    let last_takeover = seconds(
        "vipd_last_takeover_timestamp_seconds",
        "When this node last took the group's VIPs over (Unix time)",
    );
    let last_flip = seconds(
        "vipd_last_flip_duration_seconds",
        "How long the ownership map write of the last take-over took",
    );
    let demotion = gauge(
        "vipd_group_tracker_demotion",
        "What failed trackers add to the group's advskew or demote count",
        GROUP,
    );
    let tracker_up = gauge(
        "vipd_tracker_up",
        "1 while a tracker reports healthy, 0 while it reports failing (absent before its first verdict)",
        &["tracker"],
    );
    let tracker_value = gauge(
        "vipd_tracker_value",
        "The last value a file tracker read",
        &["tracker"],
    );
    let verdicts = counter(
        "vipd_dataplane_verdicts_total",
        "Frames the kernel programs passed or dropped, by reason",
        &["reason"],
    );
    let forwarding = counter(
        "vipd_forwarding_segments_total",
        "TCP segments for VIPs with a forwarding entry (after a graceful take-over), by outcome",
        &["outcome"],
    );
    let draining = gauge(
        "vipd_group_draining_connections",
        "Connections to the group's VIPs left while it drains (absent when not draining)",
        GROUP,
    );
    for g in &status.groups {
        let vhid = g.vhid.to_string();
        let labels = [g.interface.as_str(), vhid.as_str()];
        for s in STATES {
            state
                .with_label_values(&[g.interface.as_str(), vhid.as_str(), s])
                .set(i64::from(g.state == s));
        }
        transitions.with_label_values(&labels).inc_by(g.transitions);
        sent.with_label_values(&labels).inc_by(g.adverts_sent);
        received
            .with_label_values(&labels)
            .inc_by(g.adverts_received);
        for (reason, n) in &g.rejected {
            rejected
                .with_label_values(&[g.interface.as_str(), vhid.as_str(), reason.as_str()])
                .inc_by(*n);
        }
        demoted.with_label_values(&labels).set(i64::from(g.demoted));
        if let Some(ms) = g.last_advert_ms {
            last_advert.with_label_values(&labels).set(ms as f64 / 1e3);
        }
        worst_delay
            .with_label_values(&labels)
            .set(g.worst_advert_delay_us as f64 / 1e6);
        in_state.with_label_values(&labels).set(g.since_secs);
        if let Some(us) = g.last_owned_at_unix_us {
            last_takeover
                .with_label_values(&labels)
                .set(us as f64 / 1e6);
        }
        if let Some(us) = g.last_own_flip_us {
            last_flip.with_label_values(&labels).set(us / 1e6);
        }
        demotion
            .with_label_values(&labels)
            .set(i64::from(g.demotion));
    }
    for t in &status.trackers {
        if let Some(up) = t.healthy {
            tracker_up
                .with_label_values(&[t.name.as_str()])
                .set(i64::from(up));
        }
        if let Some(v) = t.value {
            tracker_value.with_label_values(&[t.name.as_str()]).set(v);
        }
    }
    for (reason, n) in &status.xdp {
        verdicts.with_label_values(&[reason.as_str()]).inc_by(*n);
    }
    for (outcome, n) in &status.forwarding {
        forwarding.with_label_values(&[outcome.as_str()]).inc_by(*n);
    }
    for g in &status.groups {
        if let Some(n) = g.draining.as_ref().and_then(|d| d.connections) {
            let vhid = g.vhid.to_string();
            draining
                .with_label_values(&[g.interface.as_str(), vhid.as_str()])
                .set(i64::from(n));
        }
    }
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_default()
}

/// Serves `GET /metrics` on `addr`: the daemon answers the [`Pending`] status requests on
/// the returned channel.
pub async fn serve(addr: SocketAddr) -> std::io::Result<mpsc::Receiver<Pending>> {
    let listener = TcpListener::bind(addr).await?;
    let (tx, rx) = mpsc::channel(MAX_CONNECTIONS);
    let slots = std::sync::Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(TIMEOUT * 2, scrape(stream, tx)).await;
                drop(slot);
            });
        }
    });
    Ok(rx)
}

async fn scrape(mut stream: TcpStream, daemon: mpsc::Sender<Pending>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let (code, body) = if head.starts_with(b"GET /metrics ") {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            request: Request::Status,
            reply,
        };
        match daemon.send(pending).await {
            Ok(()) => match tokio::time::timeout(TIMEOUT, answer).await {
                Ok(Ok(Reply::Status(s))) => ("200 OK", render(&s)),
                _ => (
                    "503 Service Unavailable",
                    String::from("vipd did not answer\n"),
                ),
            },
            Err(_) => (
                "503 Service Unavailable",
                String::from("vipd is stopping\n"),
            ),
        }
    } else {
        ("404 Not Found", String::from("only GET /metrics\n"))
    };
    let response = format!(
        "HTTP/1.1 {code}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::control::GroupStatus;

    fn status(state: &str, transitions: u64) -> Status {
        Status {
            schema: crate::ops::control::SCHEMA_VERSION,
            pid: 1,
            groups: vec![GroupStatus {
                interface: "eth0".into(),
                vhid: 7,
                vips: vec!["10.0.0.100/24".into()],
                peers: Vec::new(),
                state: state.into(),
                since_secs: 1.0,
                master: None,
                advbase: 1,
                advskew: 0,
                demoted: false,
                last_advert_ms: Some(250),
                transitions,
                adverts_sent: 10,
                worst_advert_delay_us: 1500,
                adverts_received: 3,
                rejected: vec![("bad_hmac".into(), 2)],
                last_owned_at_unix_us: Some(1_700_000_000_500_000),
                last_own_flip_us: Some(4.0),
                last_demote_at_unix_us: None,
                demotion: 0,
                failing: Vec::new(),
                draining: None,
                forwarding: None,
            }],
            xdp: vec![("drop_arp_not_owned".into(), 5)],
            unknown_group: 0,
            control: Default::default(),
            interfaces: Vec::new(),
            trackers: vec![
                crate::ops::control::TrackerStatus {
                    name: "web".into(),
                    healthy: Some(false),
                    value: None,
                    since_secs: Some(0.5),
                },
                crate::ops::control::TrackerStatus {
                    name: "weight".into(),
                    healthy: None,
                    value: Some(3),
                    since_secs: Some(1.0),
                },
            ],
            forwarding: vec![("forwarded".into(), 9)],
        }
    }

    #[test]
    fn a_snapshot_renders_as_prometheus_text() {
        let text = render(&status("MASTER", 2));
        for line in [
            "vipd_group_state{interface=\"eth0\",state=\"MASTER\",vhid=\"7\"} 1",
            "vipd_group_state{interface=\"eth0\",state=\"BACKUP\",vhid=\"7\"} 0",
            "vipd_transitions_total{interface=\"eth0\",vhid=\"7\"} 2",
            "vipd_adverts_rejected_total{interface=\"eth0\",reason=\"bad_hmac\",vhid=\"7\"} 2",
            "vipd_last_advert_age_seconds{interface=\"eth0\",vhid=\"7\"} 0.25",
            "vipd_dataplane_verdicts_total{reason=\"drop_arp_not_owned\"} 5",
            "vipd_forwarding_segments_total{outcome=\"forwarded\"} 9",
            "vipd_state_age_seconds{interface=\"eth0\",vhid=\"7\"} 1",
            "vipd_last_takeover_timestamp_seconds{interface=\"eth0\",vhid=\"7\"} 1700000000.5",
            "vipd_last_flip_duration_seconds{interface=\"eth0\",vhid=\"7\"} 0.000004",
            "vipd_tracker_up{tracker=\"web\"} 0",
            "vipd_tracker_value{tracker=\"weight\"} 3",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        let after = render(&status("BACKUP", 3));
        assert!(after.contains("state=\"BACKUP\",vhid=\"7\"} 1"));
        assert!(after.contains("vipd_transitions_total{interface=\"eth0\",vhid=\"7\"} 3"));
        // A tracker without a verdict yet has no up/down line.
        assert!(
            !text.contains("vipd_tracker_up{tracker=\"weight\"}"),
            "{text}"
        );
    }
}
