//! The daemon: one event loop that feeds the election of every group with advertisements
//! (from the XDP ring buffer), timers, link changes, signals and control requests, and
//! carries out the actions it returns: send advertisements, flip VIP ownership in the BPF
//! maps, send gratuitous ARP, queue scripts. Data flows one way: event -> election -> effects.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aya::maps::{MapData, RingBuf};
use tokio::io::unix::{AsyncFd, AsyncFdReadyMutGuard};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info, warn};
use vipd_common::AdvertEvent;

use crate::addr::{self, Netlink};
use crate::carp::{self, Advert, CarpError};
use crate::config::{AddressMode, Config, GroupConfig, Vip};
use crate::control::{self, GroupStatus, Reply, Request, Status, Target};
use crate::dataplane::{Dataplane, XdpPreference, monotonic_ns};
use crate::election::{self, Action, Event, Hook, Params, State, Timer};
use crate::garp::{self, LinkSender};
use crate::scripts::{ScriptRun, ScriptRunner};

/// Process-wide options: the paths must differ between daemons (one per network namespace
/// by default).
#[derive(Clone, Debug)]
pub struct Options {
    pub control_socket: PathBuf,
    pub bpffs_dir: PathBuf,
    pub xdp_mode: XdpPreference,
    /// SCHED_FIFO priority of the daemon (1-99), so that a busy node still sends its
    /// advertisements on time; `None` leaves the scheduling policy alone.
    pub rt_priority: Option<u8>,
}

/// How often link state is polled.
const LINK_POLL: Duration = Duration::from_millis(50);

/// One CARP group at run time.
struct GroupRt {
    cfg: GroupConfig,
    ifindex: u32,
    mac: [u8; 6],
    src: Ipv4Addr,
    vip_addrs: Vec<Ipv4Addr>,
    election: election::Group,
    advert_at: Option<Instant>,
    master_down_at: Option<Instant>,
    counter: u64,
    ip_id: u16,
    since: Instant,
    transitions: u64,
    master: Option<Ipv4Addr>,
    last_advert: Option<Instant>,
    sent: u64,
    /// Longest an advertisement waited past its due time for the daemon to run: how close
    /// a busy node came to a false failover (the peer's margin is master-down − interval).
    worst_advert_delay: Duration,
    received: u64,
    rejected: BTreeMap<&'static str, u64>,
    warned: HashSet<(Ipv4Addr, &'static str)>,
    /// MASTER: the ownership leases are renewed with every advertisement.
    owned: bool,
    /// After a bow-out: keep answering ARP until a peer shows it took over, or until then.
    release_at: Option<Instant>,
    garp_left: u32,
    garp_at: Option<Instant>,
    /// VIPs vipd created (and removes on exit).
    added: Vec<Vip>,
}

impl GroupRt {
    fn label(&self) -> String {
        format!("{}/vhid{}", self.cfg.interface, self.cfg.vhid)
    }

    fn master_down(&self) -> Duration {
        self.election.params().master_down()
    }

    fn reject(&mut self, src: Ipv4Addr, why: &'static str) {
        *self.rejected.entry(why).or_default() += 1;
        if self.warned.insert((src, why)) {
            warn!(group = %self.label(), peer = %src, reason = why,
                "ignoring advertisements from this peer (warned once per peer and reason)");
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.advert_at,
            self.master_down_at,
            self.release_at,
            self.garp_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

struct Iface {
    name: String,
    index: u32,
    sender: LinkSender,
    running: bool,
}

struct Daemon {
    groups: Vec<GroupRt>,
    by_key: HashMap<(u32, u8), usize>,
    ifaces: Vec<Iface>,
    dp: Dataplane,
    nl: Netlink,
    scripts: ScriptRunner,
    unknown_group: u64,
    started: Instant,
}

fn carp_error_name(e: &CarpError) -> &'static str {
    match e {
        CarpError::TooShort(_) => "too_short",
        CarpError::BadVersion(_) => "bad_version",
        CarpError::BadType(_) => "bad_type",
        CarpError::Vrrp => "vrrp",
        CarpError::BadAuthLen(_) => "bad_authlen",
        CarpError::BadTtl(_) => "bad_ttl",
        CarpError::NotCarp(_) => "not_carp",
        CarpError::BadDestination(_) => "bad_destination",
        CarpError::BadChecksum => "bad_checksum",
        CarpError::UnknownVhid(_) => "unknown_vhid",
        CarpError::BadHmac => "bad_hmac",
        _ => "malformed",
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(config: Config, opts: Options) -> Result<()> {
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
    let nl = Netlink::new()?;
    let mut dp = Dataplane::load(&opts.bpffs_dir).context("loading the XDP program")?;

    // Interfaces and groups, then the safe start-up order: every VIP "not owned" in the map
    // and the programs attached before any address is added.
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut groups = Vec::new();
    let mut links = HashMap::new();
    for g in &config.groups {
        if !links.contains_key(&g.interface) {
            let link = nl
                .link(&g.interface)
                .await
                .with_context(|| format!("interface {}", g.interface))?;
            links.insert(g.interface.clone(), link);
        }
    }
    let keep_vips: HashSet<(u32, Ipv4Addr)> = config
        .groups
        .iter()
        .flat_map(|g| g.vips.iter().map(|v| (links[&g.interface].index, v.addr)))
        .collect();
    let keep_groups: HashSet<(u32, u8)> = config
        .groups
        .iter()
        .map(|g| (links[&g.interface].index, g.vhid))
        .collect();
    dp.retain(
        |i, a| keep_vips.contains(&(i, a)),
        |i, v| keep_groups.contains(&(i, v)),
    )?;
    for g in &config.groups {
        let idx = links[&g.interface].index;
        for v in &g.vips {
            dp.set_owner(idx, v.addr, 0)?;
        }
        dp.add_group(idx, g.vhid)?;
    }
    for (name, link) in &links {
        if let Err(e) = addr::harden_arp(name) {
            warn!(interface = %name, error = %e, "cannot set arp_ignore/arp_announce");
        }
        let (_, mode) = dp
            .attach(name, opts.xdp_mode)
            .with_context(|| format!("attaching to {name}"))?;
        info!(interface = %name, ?mode, "XDP and TC egress programs attached");
        ifaces.push(Iface {
            name: name.clone(),
            index: link.index,
            sender: LinkSender::new(link.index)
                .with_context(|| format!("opening a packet socket on {name}"))?,
            running: addr::link_running(name),
        });
    }
    let now = Instant::now();
    for g in config.groups {
        let link = &links[&g.interface];
        let vip_addrs: Vec<Ipv4Addr> = g.vips.iter().map(|v| v.addr).collect();
        let src = match g.srcip {
            Some(s) => s,
            None => nl
                .primary_v4(link.index, &vip_addrs)
                .await?
                .with_context(|| {
                    format!(
                        "{} has no IPv4 address to advertise from; give srcip (-s)",
                        g.interface
                    )
                })?,
        };
        let params = Params {
            vhid: g.vhid,
            advbase: g.advbase,
            advskew: g.advskew,
            preempt: g.preempt,
            neutral: g.neutral,
            dead_ratio: g.dead_ratio,
            local_addr: src,
        };
        let mut added = Vec::new();
        if g.address_mode == AddressMode::Always {
            for v in &g.vips {
                if nl.add(link.index, *v).await? {
                    added.push(*v);
                }
            }
        }
        groups.push(GroupRt {
            ifindex: link.index,
            mac: link.mac,
            src,
            vip_addrs,
            election: election::Group::new(params),
            advert_at: None,
            master_down_at: None,
            counter: u64::from(rand_u32()) << 32,
            ip_id: rand_u32() as u16,
            since: now,
            transitions: 0,
            master: None,
            last_advert: None,
            sent: 0,
            worst_advert_delay: Duration::ZERO,
            received: 0,
            rejected: BTreeMap::new(),
            warned: HashSet::new(),
            owned: false,
            release_at: None,
            garp_left: 0,
            garp_at: None,
            added,
            cfg: g,
        });
    }
    let by_key = groups
        .iter()
        .enumerate()
        .map(|(i, g)| ((g.ifindex, g.cfg.vhid), i))
        .collect();
    let (scripts, scripts_task) = ScriptRunner::start();
    let ring = dp.take_adverts().context("advertisement ring buffer")?;
    // SAFETY: the ring buffer owns its fd and outlives the registration (both live in `ring`).
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("polling the ring buffer: {e}"))?;
    let listener = control::listen(&opts.control_socket).await?;
    let mut d = Daemon {
        groups,
        by_key,
        ifaces,
        dp,
        nl,
        scripts,
        unknown_group: 0,
        started: Instant::now(),
    };
    info!(groups = d.groups.len(), socket = %opts.control_socket.display(), "vipd running");

    for i in 0..d.groups.len() {
        d.step(i, Event::Start, Instant::now()).await;
        let running = d.iface(d.groups[i].ifindex).running;
        if !running && !d.groups[i].cfg.ignore_ifstate {
            d.step(i, Event::LinkDown, Instant::now()).await;
        }
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut link_poll = tokio::time::interval(LINK_POLL);
    link_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = d.next_deadline();
        tokio::select! {
            biased;
            guard = ring.readable_mut() => d.on_adverts(drain_ready(guard?)).await,
            _ = sleep_until(deadline) => d.on_deadline(ring.get_mut()).await,
            _ = link_poll.tick() => d.poll_links().await,
            conn = listener.accept() => {
                if let Ok((mut stream, _)) = conn {
                    let reply = match control::read_request(&mut stream).await {
                        Ok(req) => d.on_request(req).await,
                        Err(message) => Reply::Error { message },
                    };
                    let _ = control::write_reply(&mut stream, &reply).await;
                }
            }
            _ = usr2.recv() => {
                // ucarp's SIGUSR2: demote; a second one promotes again.
                let req = if d.groups.iter().all(|g| g.election.is_demoted()) {
                    Request::Promote { target: Target::All }
                } else {
                    Request::Demote { target: Target::All }
                };
                d.on_request(req).await;
            }
            _ = usr1.recv() => {
                if let Ok(s) = serde_json::to_string(&d.status()) {
                    info!(status = %s, "status");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }

    d.shutdown(&mut ring).await;
    let _ = std::fs::remove_file(&opts.control_socket);
    let Daemon { scripts, dp, .. } = d;
    drop(scripts);
    let _ = tokio::time::timeout(Duration::from_secs(30), scripts_task).await;
    dp.detach_all()?;
    info!("vipd stopped");
    Ok(())
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

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom into a buffer we own.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 4, 0) };
    if n != 4 {
        return monotonic_ns() as u32;
    }
    u32::from_ne_bytes(b)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Takes what the ring buffer holds once epoll reports it readable, and re-arms the wait.
fn drain_ready(mut guard: AsyncFdReadyMutGuard<'_, RingBuf<MapData>>) -> Vec<AdvertEvent> {
    let events = drain(guard.get_inner_mut());
    guard.clear_ready();
    events
}

fn drain(ring: &mut RingBuf<MapData>) -> Vec<AdvertEvent> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        if item.len() >= std::mem::size_of::<AdvertEvent>() {
            // SAFETY: the XDP program writes whole AdvertEvent records.
            out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<AdvertEvent>()) });
        }
    }
    out
}

/// The Instant at which the kernel saw a frame, from its CLOCK_MONOTONIC stamp.
fn instant_of(rx_ns: u64) -> Instant {
    let now = Instant::now();
    let age = monotonic_ns().saturating_sub(rx_ns);
    now.checked_sub(Duration::from_nanos(age)).unwrap_or(now)
}

impl Daemon {
    fn iface(&self, index: u32) -> &Iface {
        self.ifaces
            .iter()
            .find(|i| i.index == index)
            .expect("every group's interface is attached")
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.groups.iter().filter_map(|g| g.next_deadline()).min()
    }

    /// Feeds one event to group `i`'s election and carries out the actions.
    async fn step(&mut self, i: usize, event: Event, now: Instant) {
        let actions = self.groups[i].election.step(event, now);
        for a in actions {
            self.apply(i, a, now, event).await;
        }
    }

    /// Carries out one action of group `i`'s election, taken on `event`.
    async fn apply(&mut self, i: usize, action: Action, now: Instant, event: Event) {
        match action {
            Action::SendAdvert {
                advbase,
                advskew,
                demote,
            } => self.send_advert(i, advbase, advskew, demote),
            Action::Arm { timer, after } => {
                let g = &mut self.groups[i];
                match timer {
                    Timer::Advert => g.advert_at = Some(now + after),
                    Timer::MasterDown => g.master_down_at = Some(now + after),
                }
            }
            Action::Cancel(timer) => {
                let g = &mut self.groups[i];
                match timer {
                    Timer::Advert => g.advert_at = None,
                    Timer::MasterDown => g.master_down_at = None,
                }
            }
            Action::Transition { from, to, reason } => {
                let g = &mut self.groups[i];
                g.transitions += 1;
                g.since = now;
                if to == State::Master {
                    g.master = Some(g.src);
                } else if g.master == Some(g.src) {
                    g.master = None;
                }
                info!(group = %g.label(), from = from.name(), to = to.name(), %reason, "transition");
            }
            Action::BecomeMaster => self.become_master(i, now).await,
            Action::BecomeBackup => {
                // Handing over on purpose: keep answering until the peer has taken over.
                let graceful = matches!(event, Event::Demote | Event::Shutdown);
                self.become_backup(i, now, graceful).await
            }
            Action::RunHook(hook) => {
                let g = &self.groups[i];
                let shutting_down = matches!(event, Event::Shutdown);
                let script = match hook {
                    Hook::Up => g.cfg.upscript.clone(),
                    Hook::Down if shutting_down && !g.cfg.shutdown_script => None,
                    Hook::Down => g.cfg.downscript.clone(),
                };
                if let Some(script) = script {
                    for v in &g.cfg.vips {
                        let mut args = vec![g.cfg.interface.clone(), v.addr.to_string()];
                        args.extend(g.cfg.xparam.clone());
                        self.scripts.queue(ScriptRun {
                            vhid: g.cfg.vhid,
                            script: script.clone(),
                            args,
                            timeout: g.cfg.script_timeout,
                        });
                    }
                }
            }
        }
    }

    fn send_advert(&mut self, i: usize, advbase: u8, advskew: u8, demote: u8) {
        let g = &mut self.groups[i];
        g.counter = g.counter.wrapping_add(1);
        g.ip_id = g.ip_id.wrapping_add(1);
        let adv = Advert::signed(
            g.cfg.vhid,
            advbase,
            advskew,
            demote,
            g.counter,
            &g.vip_addrs,
            &g.cfg.key,
        );
        let packet = carp::build_ipv4(g.src, g.cfg.destination, g.ip_id, &adv);
        let frame = garp::ipv4_frame(g.mac, g.cfg.destination, &packet);
        let bow_out = adv.is_bow_out();
        let (ifindex, vips, lease) = (g.ifindex, g.vip_addrs.clone(), g.master_down());
        let renew = g.owned && !bow_out;
        match self.iface(ifindex).sender.send(&frame) {
            Ok(()) => self.groups[i].sent += 1,
            Err(e) => debug!(group = %self.groups[i].label(), error = %e, "advertisement not sent"),
        }
        if renew {
            // The lease outlives one master-down interval: if vipd dies, the node stops
            // answering ARP about when a peer takes over.
            let until = monotonic_ns() + lease.as_nanos() as u64;
            for v in vips {
                if let Err(e) = self.dp.set_owner(ifindex, v, until) {
                    warn!(error = %e, "cannot renew VIP lease");
                }
            }
        }
    }

    async fn become_master(&mut self, i: usize, now: Instant) {
        let started = Instant::now();
        let g = &self.groups[i];
        let (ifindex, vips, lease) = (g.ifindex, g.vip_addrs.clone(), g.master_down());
        let until = monotonic_ns() + lease.as_nanos() as u64;
        for v in &vips {
            if let Err(e) = self.dp.set_owner(ifindex, *v, until) {
                warn!(error = %e, vip = %v, "cannot set VIP owned");
            }
        }
        let flip = started.elapsed();
        let g = &mut self.groups[i];
        g.owned = true;
        g.release_at = None;
        info!(group = %g.label(), flip_us = flip.as_secs_f64() * 1e6, "VIPs owned in the XDP map");
        if g.cfg.address_mode == AddressMode::Move {
            let to_add = g.cfg.vips.clone();
            for v in to_add {
                match self.nl.add(ifindex, v).await {
                    Ok(true) => self.groups[i].added.push(v),
                    Ok(false) => {}
                    Err(e) => warn!(error = %e, "cannot add VIP"),
                }
            }
        }
        let g = &mut self.groups[i];
        g.garp_left = g.cfg.garp_count;
        g.garp_at = Some(now);
        self.send_garps(i, now);
    }

    fn send_garps(&mut self, i: usize, now: Instant) {
        let g = &mut self.groups[i];
        if g.garp_left == 0 || !g.owned {
            g.garp_at = None;
            return;
        }
        g.garp_left -= 1;
        g.garp_at = (g.garp_left > 0).then(|| now + g.cfg.garp_interval);
        let frames: Vec<Vec<u8>> = g
            .vip_addrs
            .iter()
            .map(|v| garp::garp_frame(g.mac, *v))
            .collect();
        let ifindex = g.ifindex;
        for f in frames {
            if let Err(e) = self.iface(ifindex).sender.send(&f) {
                debug!(error = %e, "gratuitous ARP not sent");
            }
        }
    }

    async fn become_backup(&mut self, i: usize, now: Instant, graceful: bool) {
        let g = &mut self.groups[i];
        g.owned = false;
        g.garp_left = 0;
        g.garp_at = None;
        if graceful {
            // Keep answering until a peer's advertisement shows it took over.
            g.release_at = Some(now + g.master_down());
            let until = monotonic_ns() + g.master_down().as_nanos() as u64;
            let (ifindex, vips) = (g.ifindex, g.vip_addrs.clone());
            for v in vips {
                let _ = self.dp.set_owner(ifindex, v, until);
            }
        } else {
            self.release(i, "left MASTER").await;
        }
    }

    /// Stops answering ARP for the group's VIPs (and removes them in move mode).
    async fn release(&mut self, i: usize, why: &str) {
        let started = Instant::now();
        let g = &mut self.groups[i];
        g.release_at = None;
        let (ifindex, vips) = (g.ifindex, g.vip_addrs.clone());
        for v in &vips {
            if let Err(e) = self.dp.set_owner(ifindex, *v, 0) {
                warn!(error = %e, vip = %v, "cannot set VIP not owned");
            }
        }
        let flip = started.elapsed();
        info!(group = %self.groups[i].label(), reason = why,
            flip_us = flip.as_secs_f64() * 1e6, "VIPs released in the XDP map");
        if self.groups[i].cfg.address_mode == AddressMode::Move {
            let vips = self.groups[i].cfg.vips.clone();
            for v in vips {
                if let Err(e) = self.nl.del(ifindex, v).await {
                    warn!(error = %e, "cannot remove VIP");
                }
                self.groups[i].added.retain(|a| *a != v);
            }
        }
    }

    async fn on_adverts(&mut self, events: Vec<AdvertEvent>) {
        for ev in &events {
            self.on_advert(ev).await;
        }
    }

    /// A timer is due. Advertisements the kernel queued before it count first, so a late
    /// wake-up never turns into a master-down that the ring buffer already disproves.
    async fn on_deadline(&mut self, ring: &mut RingBuf<MapData>) {
        self.on_adverts(drain(ring)).await;
        self.on_timers(Instant::now()).await;
    }

    async fn on_advert(&mut self, ev: &AdvertEvent) {
        let vhid = ev.carp[1];
        let Some(&i) = self.by_key.get(&(ev.ifindex, vhid)) else {
            self.unknown_group += 1;
            return;
        };
        let src = Ipv4Addr::from(ev.src.to_ne_bytes());
        let dst = Ipv4Addr::from(ev.dst.to_ne_bytes());
        let g = &mut self.groups[i];
        if src == g.src {
            return;
        }
        if dst != g.cfg.destination {
            g.reject(src, "bad_destination");
            return;
        }
        let adv = match Advert::parse(&ev.carp) {
            Ok(a) => a,
            Err(e) => {
                g.reject(src, carp_error_name(&e));
                return;
            }
        };
        if let Err(e) = adv.verify(&g.vip_addrs, &g.cfg.key) {
            g.reject(src, carp_error_name(&e));
            return;
        }
        let at = instant_of(ev.rx_ns);
        g.received += 1;
        g.last_advert = Some(at);
        if !adv.is_bow_out() && g.election.state() != State::Master {
            g.master = Some(src);
        }
        let event = Event::Advert {
            src,
            advbase: adv.advbase,
            advskew: adv.advskew,
            demote: adv.demote,
        };
        self.step(i, event, at).await;
        let g = &self.groups[i];
        if g.release_at.is_some() && !adv.is_bow_out() && g.election.state() != State::Master {
            self.release(i, &format!("{src} took over")).await;
        }
    }

    async fn on_timers(&mut self, now: Instant) {
        for i in 0..self.groups.len() {
            let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
            if due(self.groups[i].master_down_at) {
                self.groups[i].master_down_at = None;
                self.log_master_down(i, now);
                self.step(i, Event::MasterDownTimer, now).await;
            }
            if let Some(at) = self.groups[i].advert_at.filter(|t| *t <= now) {
                let g = &mut self.groups[i];
                g.advert_at = None;
                g.worst_advert_delay = g.worst_advert_delay.max(now - at);
                self.step(i, Event::AdvertTimer, now).await;
            }
            if due(self.groups[i].garp_at) {
                self.send_garps(i, now);
            }
            if due(self.groups[i].release_at) {
                self.release(i, "no peer took over within master-down")
                    .await;
            }
        }
    }

    /// What was last heard of the master when master-down fires: the daemon's last
    /// accepted advertisement, and the XDP program's last sighting of the group.
    fn log_master_down(&self, i: usize, now: Instant) {
        let g = &self.groups[i];
        let ms = |t: Instant| now.saturating_duration_since(t).as_secs_f64() * 1e3;
        let kernel = self
            .dp
            .group_seen(g.ifindex, g.cfg.vhid)
            .filter(|s| s.count > 0);
        info!(
            group = %g.label(),
            last_accepted_ms = g.last_advert.map(ms),
            kernel_last_seen_ms = kernel.map(|s| ms(instant_of(s.last_seen_ns))),
            kernel_last_src = ?kernel.map(|s| Ipv4Addr::from(s.last_src.to_ne_bytes())),
            "master-down expired"
        );
    }

    async fn poll_links(&mut self) {
        for k in 0..self.ifaces.len() {
            let running = addr::link_running(&self.ifaces[k].name);
            if running == self.ifaces[k].running {
                continue;
            }
            self.ifaces[k].running = running;
            let index = self.ifaces[k].index;
            info!(interface = %self.ifaces[k].name, up = running, "link state changed");
            for i in 0..self.groups.len() {
                if self.groups[i].ifindex == index && !self.groups[i].cfg.ignore_ifstate {
                    let ev = if running {
                        Event::LinkUp
                    } else {
                        Event::LinkDown
                    };
                    self.step(i, ev, Instant::now()).await;
                }
            }
        }
    }

    fn targets(&self, target: Target) -> Result<Vec<usize>> {
        match target {
            Target::All => Ok((0..self.groups.len()).collect()),
            Target::Vhid(v) => {
                let found: Vec<usize> = (0..self.groups.len())
                    .filter(|i| self.groups[*i].cfg.vhid == v)
                    .collect();
                if found.is_empty() {
                    bail!("no group with vhid {v}");
                }
                Ok(found)
            }
        }
    }

    async fn on_request(&mut self, req: Request) -> Reply {
        let (target, event) = match req {
            Request::Status => return Reply::Status(self.status()),
            Request::Demote { target } => (target, Event::Demote),
            Request::Promote { target } => (target, Event::Promote),
        };
        let found = match self.targets(target) {
            Ok(f) => f,
            Err(e) => {
                return Reply::Error {
                    message: e.to_string(),
                };
            }
        };
        let mut changed = Vec::new();
        for i in found {
            info!(group = %self.groups[i].label(), ?event, "administrative request");
            self.step(i, event, Instant::now()).await;
            changed.push(self.groups[i].cfg.vhid);
        }
        Reply::Ok { changed }
    }

    fn status(&self) -> Status {
        let now = Instant::now();
        Status {
            pid: std::process::id(),
            groups: self
                .groups
                .iter()
                .map(|g| GroupStatus {
                    interface: g.cfg.interface.clone(),
                    vhid: g.cfg.vhid,
                    vips: g.cfg.vips.iter().map(|v| v.to_string()).collect(),
                    state: g.election.state().name().to_owned(),
                    since_secs: now.duration_since(g.since).as_secs_f64(),
                    master: g.master.map(|m| m.to_string()),
                    advbase: g.cfg.advbase,
                    advskew: g.cfg.advskew,
                    demoted: g.election.is_demoted(),
                    last_advert_ms: g
                        .last_advert
                        .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                    transitions: g.transitions,
                    adverts_sent: g.sent,
                    worst_advert_delay_us: g.worst_advert_delay.as_micros() as u64,
                    adverts_received: g.received,
                    rejected: g
                        .rejected
                        .iter()
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect(),
                })
                .collect(),
            xdp: self
                .dp
                .counters()
                .map(|c| c.iter().map(|(n, v)| (n.to_owned(), v)).collect())
                .unwrap_or_default(),
            unknown_group: self.unknown_group,
        }
    }

    /// Graceful exit: bow out of every group, wait (at most master-down) until peers show
    /// they took over, then remove the addresses vipd added.
    async fn shutdown(&mut self, ring: &mut AsyncFd<RingBuf<MapData>>) {
        info!(
            uptime_s = self.started.elapsed().as_secs(),
            "shutting down: handing over"
        );
        for i in 0..self.groups.len() {
            self.step(i, Event::Shutdown, Instant::now()).await;
        }
        while let Some(deadline) = self.groups.iter().filter_map(|g| g.release_at).max() {
            tokio::select! {
                guard = ring.readable_mut() => {
                    let Ok(guard) = guard else { break };
                    self.on_adverts(drain_ready(guard)).await;
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.on_deadline(ring.get_mut()).await;
                }
            }
        }
        for i in 0..self.groups.len() {
            let (ifindex, added) = (
                self.groups[i].ifindex,
                std::mem::take(&mut self.groups[i].added),
            );
            for v in added {
                if let Err(e) = self.nl.del(ifindex, v).await {
                    warn!(error = %e, vip = %v, "cannot remove VIP");
                }
            }
        }
    }
}
