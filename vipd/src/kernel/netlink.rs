//! VIP addresses and interface facts through rtnetlink. Every call is awaited and returns a
//! `Result`; "already exists" on add and "not found" on delete count as success, and add
//! reports whether vipd created the address (so clean exit removes only what it added).
use std::net::{IpAddr, Ipv4Addr};

use futures::StreamExt;
use futures::TryStreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlag, LinkMessage};
use netlink_packet_utils::nla::{DefaultNla, Nla};
use netlink_sys::{AsyncSocket, SocketAddr};
use rtnetlink::Handle;

use crate::config::Vip;

#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    #[error("cannot open a netlink socket: {0}")]
    Connect(std::io::Error),
    #[error("no interface named {0}")]
    NoInterface(String),
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        source: Box<rtnetlink::Error>,
    },
}

/// What vipd needs to know of an interface.
#[derive(Clone, Debug)]
pub struct LinkInfo {
    pub index: u32,
    pub mac: [u8; 6],
    /// Up with carrier (IFF_UP and IFF_RUNNING).
    pub running: bool,
}

impl LinkInfo {
    fn from_message(msg: &LinkMessage) -> LinkInfo {
        let mut mac = [0u8; 6];
        for a in &msg.attributes {
            if let LinkAttribute::Address(b) = a
                && b.len() == 6
            {
                mac.copy_from_slice(b);
            }
        }
        let flags = &msg.header.flags;
        LinkInfo {
            index: msg.header.index,
            mac,
            running: flags.contains(&LinkFlag::Up) && flags.contains(&LinkFlag::Running),
        }
    }
}

/// A change the kernel reported about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    Changed { index: u32, running: bool },
    Removed { index: u32 },
}

/// Link notifications from the kernel (rtnetlink's link group), as they happen.
pub struct LinkWatch {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
}

/// rtnetlink's multicast group mask for link changes (`RTMGRP_LINK`).
const RTMGRP_LINK: u32 = 1;

impl LinkWatch {
    pub fn start() -> Result<LinkWatch, AddrError> {
        let (mut conn, _, messages) = rtnetlink::new_connection().map_err(AddrError::Connect)?;
        conn.socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, RTMGRP_LINK))
            .map_err(AddrError::Connect)?;
        tokio::spawn(conn);
        Ok(LinkWatch { messages })
    }

    /// The next link change; `None` when the netlink connection is gone.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        loop {
            let (msg, _) = self.messages.next().await?;
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                    let info = LinkInfo::from_message(&m);
                    return Some(LinkEvent::Changed {
                        index: info.index,
                        running: info.running,
                    });
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
                    return Some(LinkEvent::Removed {
                        index: m.header.index,
                    });
                }
                _ => {}
            }
        }
    }
}

/// A netlink handle whose connection runs on the current tokio runtime.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

impl Netlink {
    pub fn new() -> Result<Netlink, AddrError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(AddrError::Connect)?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Index and MAC address of interface `name`.
    pub async fn link(&self, name: &str) -> Result<LinkInfo, AddrError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        let msg = match links.try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(AddrError::NoInterface(name.to_owned())),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                return Err(AddrError::NoInterface(name.to_owned()));
            }
            Err(source) => {
                return Err(AddrError::Netlink {
                    what: format!("reading interface {name}"),
                    source: Box::new(source),
                });
            }
        };
        Ok(LinkInfo::from_message(&msg))
    }

    async fn addresses(&self, index: u32) -> Result<Vec<(AddressMessage, Ipv4Addr)>, AddrError> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|source| AddrError::Netlink {
                what: format!("listing addresses of ifindex {index}"),
                source: Box::new(source),
            })?;
        Ok(msgs
            .into_iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                let a = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(IpAddr::V4(v4)) => Some(*v4),
                    _ => None,
                })?;
                Some((m, a))
            })
            .collect())
    }

    /// The IPv4 addresses configured on interface `index`.
    pub async fn configured(&self, index: u32) -> Result<Vec<Ipv4Addr>, AddrError> {
        Ok(self
            .addresses(index)
            .await?
            .into_iter()
            .map(|(_, a)| a)
            .collect())
    }

    /// Adds `vip`, marked with [`ADDRESS_PROTOCOL`]. Returns `true` when vipd created it,
    /// now or in an earlier life (a vipd killed before it could remove it), `false` when
    /// someone else configured it.
    pub async fn add(&self, index: u32, vip: Vip) -> Result<bool, AddrError> {
        let mut request = self
            .handle
            .address()
            .add(index, IpAddr::V4(vip.addr), vip.prefix);
        request
            .message_mut()
            .attributes
            .push(AddressAttribute::Other(DefaultNla::new(
                IFA_PROTO,
                vec![ADDRESS_PROTOCOL],
            )));
        match request.execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(self
                .addresses(index)
                .await?
                .iter()
                .any(|(m, a)| *a == vip.addr && protocol(m) == Some(ADDRESS_PROTOCOL))),
            Err(source) => Err(AddrError::Netlink {
                what: format!("adding {vip}"),
                source: Box::new(source),
            }),
        }
    }

    /// Removes `vip`; an address that is not there counts as removed.
    pub async fn del(&self, index: u32, vip: Vip) -> Result<(), AddrError> {
        let Some((msg, _)) = self
            .addresses(index)
            .await?
            .into_iter()
            .find(|(_, a)| *a == vip.addr)
        else {
            return Ok(());
        };
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT)) => Ok(()),
            Err(source) => Err(AddrError::Netlink {
                what: format!("removing {vip}"),
                source: Box::new(source),
            }),
        }
    }
}

/// The address protocol (`IFA_PROTO`, Linux 5.18+) vipd marks the VIPs it adds with, so
/// that a restarted vipd knows them as its own: CARP's IP protocol number. `ip -4 addr show
/// proto 112` lists them.
pub const ADDRESS_PROTOCOL: u8 = 112;
const IFA_PROTO: u16 = 11;

/// The address protocol of `msg`, if the kernel reported one.
fn protocol(msg: &AddressMessage) -> Option<u8> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Other(nla) if nla.kind() == IFA_PROTO && nla.value_len() == 1 => {
            let mut v = [0u8; 1];
            nla.emit_value(&mut v);
            Some(v[0])
        }
        _ => None,
    })
}

/// Sysctls so the kernel never answers or announces a VIP on its own: arp_ignore=1
/// (answer only for addresses of the receiving interface) and arp_announce=2 (never use a
/// VIP as the source of ARP requests it sends), on `ifname` and for every interface
/// (`all`, which the kernel combines with each interface's value by taking the larger):
/// otherwise another link of the node on the same LAN answers ARP for the VIP with its
/// own MAC, where no kernel program of vipd looks. A stricter value already set is kept.
pub fn harden_arp(ifname: &str) -> std::io::Result<()> {
    for conf in [ifname, "all"] {
        for (name, value) in [("arp_ignore", 1), ("arp_announce", 2)] {
            let path = format!("/proc/sys/net/ipv4/conf/{conf}/{name}");
            let current: u8 = std::fs::read_to_string(&path)?.trim().parse().unwrap_or(0);
            if current < value {
                std::fs::write(&path, value.to_string())?;
            }
        }
    }
    Ok(())
}
