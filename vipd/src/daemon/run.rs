//! The event loop: advertisements from the rings, timers, link events, signals, control
//! requests, tracker reports and metrics scrapes, each handed to the daemon; then the stop.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};
use vipd_common::AdvertEvent;

use super::reload::{Trackers, reload, settle};
use super::status::status;
use super::{Daemon, Options, build};
use crate::config::Config;
use crate::daemon::effects::Effects;
use crate::kernel::netlink::{LinkEvent, LinkWatch};
use crate::kernel::{Kernel, clock};
use crate::ops::control::{self, Reply, Request};
use crate::ops::state::{demotions_path, load_demotions, lock_instance, save_demotions};
use crate::ops::systemd::{notify, watchdog_interval};
use crate::protocol::group;

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(config: Config, opts: Options) -> Result<()> {
    let _instance = lock_instance()?;
    if let Some(prio) = opts.rt_priority {
        match set_realtime(prio) {
            Ok(()) => info!(priority = prio, "scheduling SCHED_FIFO"),
            Err(e) => warn!(
                priority = prio,
                error = %e,
                "cannot switch to SCHED_FIFO; advertisements may be late on a busy node"
            ),
        }
    }
    // Link events are subscribed to before the links are read, so that no change is lost.
    let mut link_watch = LinkWatch::start()?;
    let mut trackers = Trackers::start(config.trackers.clone())?;
    let mut d = build(config, &opts).await?;
    let mut rings = d.fx.open_rings()?;
    let listener = control::listen(&opts.control_socket).await?;
    let (mut requests, control_stats) = control::serve(listener, control::Limits::default());
    let mut scrapes = match opts.metrics_listen {
        Some(addr) => Some(
            crate::ops::metrics::serve(addr)
                .await
                .with_context(|| format!("serving metrics on {addr}"))?,
        ),
        None => None,
    };
    // Set up: from here on the daemon needs little of root.
    match crate::ops::privileges::restrict() {
        Ok(kept) => {
            let mut kept: Vec<String> = kept.iter().map(|c| c.to_string()).collect();
            kept.sort();
            info!(capabilities = %kept.join(","), "privileges reduced (no_new_privs, RLIMIT_RTTIME)");
        }
        Err(e) => warn!(error = %e, "cannot reduce privileges"),
    }
    info!(groups = d.members.len(), socket = %opts.control_socket.display(), "vipd running");
    d.start(Instant::now()).await;
    // `vipd demote --persist` survives a restart: a node in maintenance stays demoted.
    let demotions = demotions_path();
    for (interface, vhid) in load_demotions(&demotions) {
        if let Some(i) = d
            .members
            .iter()
            .position(|m| m.cfg.interface == interface && m.cfg.vhid == vhid)
        {
            d.demote_persisted(i, Instant::now()).await;
        }
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut failure = None;
    // systemd (Type=notify): ready once every group runs; the watchdog is fed from this
    // loop, so a stuck loop is what it catches.
    notify(sd_notify::NotifyState::Ready);
    let mut watchdog = watchdog_interval();
    loop {
        let deadline = d.next_deadline();
        tokio::select! {
            biased;
            events = rings.readable() => {
                on_adverts(&mut d, events?).await;
                // A flood keeps the rings ready; due timers run after every batch anyway.
                d.on_timers(Instant::now()).await;
            }
            _ = sleep_until(deadline) => {
                // Advertisements the kernel queued before the timer count first, so a late
                // wake-up never turns into a master-down the ring buffer already disproves.
                on_adverts(&mut d, rings.drain_now()).await;
                d.on_timers(Instant::now()).await;
            }
            Some(ev) = link_watch.next() => {
                if let LinkEvent::Removed { index } = ev
                    && d.serves_link(index)
                    && let Some(name) = d.interface_name(index)
                {
                    // Its programs went with it; a new interface of that name is another
                    // device, which vipd only takes over when started on it.
                    let e = anyhow::anyhow!(
                        "interface {name} (ifindex {index}) was deleted: vipd stops; start \
                         it again once the interface exists"
                    );
                    tracing::error!("{e}");
                    failure = Some(e);
                }
                d.on_link(ev, Instant::now()).await;
                if failure.is_some() {
                    break;
                }
            }
            Some(p) = requests.recv() => {
                let reply = match p.request {
                    Request::Status => Reply::Status(status(&d, &control_stats)),
                    Request::Reload => match reload(&mut d, &opts, &mut trackers, &demotions).await {
                        Ok(summary) => {
                            info!(changes = %summary, "configuration reloaded");
                            Reply::Reloaded { summary }
                        }
                        Err(e) => {
                            warn!("reload refused, nothing changed: {e:#}");
                            Reply::Error { message: format!("reload refused, nothing changed: {e:#}") }
                        }
                    },
                    req => {
                        let reply = d.on_request(req, Instant::now()).await;
                        save_demotions(d.persisted(), &demotions);
                        reply
                    }
                };
                let _ = p.reply.send(reply);
            }
            Some(ev) = next_tracker_event(&mut trackers.events) => {
                let (name, update) = match ev {
                    crate::trackers::TrackerEvent::Health { name, healthy } => {
                        (name, group::TrackerUpdate::Health(healthy))
                    }
                    crate::trackers::TrackerEvent::Value { name, value } => {
                        (name, group::TrackerUpdate::Value(value))
                    }
                };
                d.on_tracker(&name, update, Instant::now()).await;
            }
            Some(p) = next_scrape(&mut scrapes) => {
                let _ = p.reply.send(Reply::Status(status(&d, &control_stats)));
            }
            _ = usr2.recv() => {
                d.on_usr2(Instant::now()).await;
                save_demotions(d.persisted(), &demotions);
            }
            _ = hup.recv() => {
                match reload(&mut d, &opts, &mut trackers, &demotions).await {
                    Ok(summary) => info!(changes = %summary, "configuration reloaded (SIGHUP)"),
                    Err(e) => warn!("reload refused, nothing changed: {e:#}"),
                }
            }
            _ = usr1.recv() => {
                if let Ok(s) = serde_json::to_string(&status(&d, &control_stats)) {
                    info!(status = %s, "status");
                }
            }
            _ = tick(&mut watchdog) => {
                notify(sd_notify::NotifyState::Watchdog);
            }
            _ = sleep_until(d.drain_due()) => d.check_drains(Instant::now()).await,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        if d.reloading() {
            settle(&mut d, &demotions).await;
        }
    }

    notify(sd_notify::NotifyState::Stopping);
    // Bow out, then wait (at most master-down) until peers show they took over.
    d.begin_shutdown(Instant::now()).await;
    // Then drain: the connections to the VIPs close, or each group's drain_on_stop passes.
    for i in 0..d.members.len() {
        let limit = d.members[i].cfg.drain_on_stop;
        if !limit.is_zero() {
            d.start_drain(i, Some(limit), Instant::now()).await;
        }
    }
    d.check_drains(Instant::now()).await;
    while d.handing_over() || d.draining() {
        let deadline = d.next_deadline();
        tokio::select! {
            _ = sleep_until(d.drain_due()) => d.check_drains(Instant::now()).await,
            Some(p) = requests.recv() => {
                let reply = match p.request {
                    Request::Status => Reply::Status(status(&d, &control_stats)),
                    _ => Reply::Error { message: "vipd is stopping (draining)".into() },
                };
                let _ = p.reply.send(reply);
            }
            events = rings.readable() => {
                let Ok(events) = events else { break };
                on_adverts(&mut d, events).await;
            }
            _ = sleep_until(deadline) => {
                on_adverts(&mut d, rings.drain_now()).await;
                d.on_timers(Instant::now()).await;
            }
            // A drain can outlast WatchdogSec: the loop still runs.
            _ = tick(&mut watchdog) => {
                notify(sd_notify::NotifyState::Watchdog);
            }
        }
    }
    d.remove_added().await;
    let guard = guarded_interfaces(&mut d).await;
    let _ = std::fs::remove_file(&opts.control_socket);
    let Daemon { fx, .. } = d;
    fx.close(&guard, Duration::from_secs(30)).await?;
    if let Some(e) = failure {
        return Err(e);
    }
    info!("vipd stopped");
    Ok(())
}

/// Interfaces where a VIP stays configured after vipd stops (vipd did not add it): their
/// programs stay attached, with every VIP "not owned", so that the kernel never answers
/// ARP for it on its own.
async fn guarded_interfaces(d: &mut Daemon<Kernel>) -> Vec<u32> {
    // VIPs of groups a reload removed that stayed configured.
    let mut guard: Vec<u32> = Vec::new();
    for &(index, vip) in &d.guarded {
        let present = d.fx.addresses(index).await.map(|p| p.contains(&vip));
        if present.unwrap_or(true) && !guard.contains(&index) {
            warn!(%vip, "a VIP of a removed group stays configured: the programs stay attached \
                so that this node never answers ARP for it");
            guard.push(index);
        }
    }
    for m in &d.members {
        let present = match d.fx.addresses(m.link.index).await {
            Ok(p) => p,
            Err(e) => {
                warn!(interface = %m.link.name, error = %e, "cannot list addresses; keeping the programs attached");
                guard.push(m.link.index);
                continue;
            }
        };
        let left: Vec<String> = m
            .cfg
            .vips
            .iter()
            .filter(|v| present.contains(&v.addr))
            .map(|v| v.addr.to_string())
            .collect();
        if !left.is_empty() && !guard.contains(&m.link.index) {
            warn!(interface = %m.link.name, vips = %left.join(","),
                "VIPs stay configured (vipd did not add them): the programs stay attached \
                 so that this node never answers ARP for them; remove the addresses, or start \
                 vipd again, which adopts it");
            guard.push(m.link.index);
        }
    }
    guard
}

async fn on_adverts(d: &mut Daemon<Kernel>, events: Vec<AdvertEvent>) {
    for ev in events {
        d.on_advert_from(
            ev.ifindex,
            Some(ev.src_mac),
            &ev.packet,
            clock::instant_of(ev.rx_ns),
        )
        .await;
    }
}

/// Switches the process to SCHED_FIFO at `prio`; children (scripts) start as ordinary
/// processes again (SCHED_RESET_ON_FORK).
fn set_realtime(prio: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(prio),
    };
    // SAFETY: sched_setscheduler on our own process with a valid parameter.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The next tracker report, if there are trackers.
async fn next_tracker_event(
    events: &mut Option<tokio::sync::mpsc::Receiver<crate::trackers::TrackerEvent>>,
) -> Option<crate::trackers::TrackerEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next metrics scrape, if metrics are served.
async fn next_scrape(
    scrapes: &mut Option<tokio::sync::mpsc::Receiver<control::Pending>>,
) -> Option<control::Pending> {
    match scrapes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Tells systemd `state` (`Type=notify`) without stalling the event loop: a watchdog ping
/// is never waited for (when the service manager is slow to read, one is lost and the next
/// follows), READY and STOPPING wait at most 50 ms for room in its queue. An advertisement
/// is never delayed by a slow PID 1. `NOTIFY_SOCKET` may name an abstract socket (`@name`).
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
