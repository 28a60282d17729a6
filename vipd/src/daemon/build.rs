//! Building the daemon and its groups, through the effects boundary only: the same code
//! starts the real daemon and the recorded one of the unit tests.
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::effects::Effects;
use super::executor::{GroupCounters, Link, Member, Tx};
use super::{Daemon, Options, TrackerReport};
use crate::config::{AddressMode, Config, DemoteMode, GroupConfig};
use crate::kernel::Kernel;
use crate::kernel::dataplane::Reception;
use crate::kernel::netlink::LinkInfo;
use crate::protocol::election::{DemoteBy, Params};
use crate::protocol::group::{GroupCore, Settings};
use crate::protocol::rx::Receiver;

/// Builds the real daemon (see [`start`]).
pub async fn build(config: Config, opts: &Options) -> Result<Daemon<Kernel>> {
    start(config, Kernel::new(&opts.bpffs_dir)?, opts).await
}

/// Builds the daemon on `fx`: interfaces, the data plane in its safe start-up order (every
/// VIP "not owned" and the programs attached before any address is added), then the groups.
pub async fn start<E: Effects>(config: Config, mut fx: E, opts: &Options) -> Result<Daemon<E>> {
    let trackers: Vec<String> = config.trackers.iter().map(|t| t.name.clone()).collect();
    let links = links_of(&mut fx, &config.groups).await?;
    // Every group's source address, checked before the data plane is touched.
    let mut sources = HashMap::new();
    for g in &config.groups {
        let src = source_of(&mut fx, g, &links[&g.interface]).await?;
        sources.insert((g.interface.clone(), g.vhid), src);
    }
    let indexes: Vec<u32> = links.values().map(|l| l.index).collect();
    fx.open_dataplane(&indexes)
        .context("loading the XDP program")?;
    let index = |name: &str| links[name].index;
    fx.retain(
        &|i, a| {
            config
                .groups
                .iter()
                .any(|g| index(&g.interface) == i && g.vips.iter().any(|v| v.addr == a))
        },
        &|i, v| {
            config
                .groups
                .iter()
                .any(|g| index(&g.interface) == i && g.vhid == v)
        },
    )?;
    for g in &config.groups {
        let src = sources[&(g.interface.clone(), g.vhid)];
        register(&mut fx, index(&g.interface), g, src)?;
    }
    let mut interfaces = Vec::new();
    for (name, link) in &links {
        interfaces.push(attach(&mut fx, name, link, opts)?);
    }
    let now = Instant::now();
    let mut members = Vec::new();
    for g in config.groups {
        let src = sources[&(g.interface.clone(), g.vhid)];
        members.push(member(&mut fx, g, &links, src, now).await?);
    }
    let running = links.values().map(|l| (l.index, l.running)).collect();
    let mut d = Daemon::new(members, running, fx, now);
    d.interfaces = interfaces;
    d.trackers = trackers
        .into_iter()
        .map(|name| (name, TrackerReport::default()))
        .collect();
    Ok(d)
}

/// The links of `groups`, by name.
pub(super) async fn links_of<E: Effects>(
    fx: &mut E,
    groups: &[GroupConfig],
) -> Result<HashMap<String, LinkInfo>> {
    let mut links = HashMap::new();
    for g in groups {
        if !links.contains_key(&g.interface) {
            let link = fx
                .link(&g.interface)
                .await
                .with_context(|| format!("interface {}", g.interface))?;
            links.insert(g.interface.clone(), link);
        }
    }
    Ok(links)
}

/// The address group `g` advertises from: its `srcip`, which must be an address of its
/// link, or the link's first IPv4 address that is not a VIP.
pub(super) async fn source_of<E: Effects>(
    fx: &mut E,
    g: &GroupConfig,
    link: &LinkInfo,
) -> Result<Ipv4Addr> {
    let configured = fx.addresses(link.index).await?;
    Ok(match g.srcip {
        Some(s) => {
            // Advertisements must come from the node's own address on that link: peers
            // tell the master by it, and replies to it must reach this node.
            if !configured.contains(&s) {
                bail!(
                    "srcip (-s) {s} is not an address of {}: give one of its own addresses",
                    g.interface
                );
            }
            s
        }
        None => configured
            .iter()
            .copied()
            .find(|a| !g.vips.iter().any(|v| v.addr == *a))
            .with_context(|| {
                format!(
                    "{} has no IPv4 address to advertise from; give srcip (-s)",
                    g.interface
                )
            })?,
    })
    .and_then(|src| {
        // A peer that is this node would be advertised to and accepted from itself.
        match g.peers.iter().find(|p| configured.contains(p)) {
            Some(p) => bail!(
                "peer {p} is an address of this node on {}: list the other nodes' addresses",
                g.interface
            ),
            None => Ok(src),
        }
    })
}

/// Registers group `g` (advertising from `src`) in the data plane with every VIP "not
/// owned": its advertisements reach the daemon, and no node answers for its VIPs before
/// the election says so.
pub(super) fn register<E: Effects>(
    fx: &mut E,
    ifindex: u32,
    g: &GroupConfig,
    src: Ipv4Addr,
) -> Result<()> {
    let vips: Vec<Ipv4Addr> = g.vips.iter().map(|v| v.addr).collect();
    fx.register_group(ifindex, g.vhid, &reception_of(g, src), &vips)?;
    Ok(())
}

/// The advertisements group `g`, advertising from `src`, accepts.
pub(super) fn reception_of(g: &GroupConfig, src: Ipv4Addr) -> Reception {
    Reception {
        destination: g.receive_destination(src),
        peers: g.peers.clone(),
        ttl_check: g.peer_ttl_check || !g.unicast(),
    }
}

/// Attaches the programs to `name` and opens its packet socket.
pub(super) fn attach<E: Effects>(
    fx: &mut E,
    name: &str,
    link: &LinkInfo,
    opts: &Options,
) -> Result<crate::ops::control::InterfaceStatus> {
    fx.attach(name, link, opts.xdp_mode)
        .with_context(|| format!("attaching to {name}"))
}

/// Group `g`'s parameters with its source address.
pub(super) fn params_of(g: &GroupConfig, src: Ipv4Addr) -> Params {
    Params {
        vhid: g.vhid,
        advbase: g.advbase,
        advskew: g.advskew,
        preempt: g.preempt,
        neutral: g.neutral,
        dead_ratio: g.dead_ratio,
        local_addr: src,
        demote_by: match g.demote_mode {
            DemoteMode::Advskew => DemoteBy::Advskew,
            DemoteMode::Demote => DemoteBy::DemoteCount,
        },
    }
}

/// A new member for group `g` (its addresses added in "always" mode), not started yet.
pub(super) async fn member<E: Effects>(
    fx: &mut E,
    g: GroupConfig,
    links: &HashMap<String, LinkInfo>,
    src: Ipv4Addr,
    now: Instant,
) -> Result<Member> {
    let link = &links[&g.interface];
    let params = params_of(&g, src);
    params
        .validate()
        .with_context(|| format!("{}/vhid{}", g.interface, g.vhid))?;
    let settings = Settings::of(&g);
    // The advertisement counter starts at a number a forger cannot guess.
    let counter = random_u64().context("no randomness for the advertisement counter")?;
    let tx = Tx::new(src, counter, random_u64()? as u16);
    let mut added = Vec::new();
    if g.address_mode == AddressMode::Always {
        for v in &g.vips {
            if fx.add_address(link.index, *v).await? {
                added.push(*v);
            }
        }
    }
    let label = format!("{}/vhid{}", g.interface, g.vhid);
    Ok(Member {
        link: Link {
            name: g.interface.clone(),
            index: link.index,
            mac: link.mac,
        },
        core: GroupCore::new(params, settings),
        rx: Receiver::new(label, &g, src),
        tx,
        counters: GroupCounters::new(now),
        added,
        peer_macs: Default::default(),
        cfg: g,
    })
}

/// A random u64 from the kernel's generator; an error when it has none to give (never a
/// predictable stand-in: the advertisement counter must not be guessable).
fn random_u64() -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into the buffer we own.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == b.len() as isize {
        Ok(u64::from_ne_bytes(b))
    } else {
        Err(std::io::Error::last_os_error())
    }
}
