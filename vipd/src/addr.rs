//! VIP addresses and interface facts through rtnetlink. Every call is awaited and returns a
//! `Result`; "already exists" on add and "not found" on delete count as success, and add
//! reports whether vipd created the address (so clean exit removes only what it added).
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::LinkAttribute;
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
        let mut mac = [0u8; 6];
        for a in &msg.attributes {
            if let LinkAttribute::Address(b) = a
                && b.len() == 6
            {
                mac.copy_from_slice(b);
            }
        }
        Ok(LinkInfo {
            index: msg.header.index,
            mac,
        })
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

    /// The interface's first IPv4 address that is not one of `exclude` (the VIPs).
    pub async fn primary_v4(
        &self,
        index: u32,
        exclude: &[Ipv4Addr],
    ) -> Result<Option<Ipv4Addr>, AddrError> {
        Ok(self
            .addresses(index)
            .await?
            .into_iter()
            .map(|(_, a)| a)
            .find(|a| !exclude.contains(a)))
    }

    /// Whether `vip` is configured on interface `index`.
    pub async fn has(&self, index: u32, vip: Ipv4Addr) -> Result<bool, AddrError> {
        Ok(self.addresses(index).await?.iter().any(|(_, a)| *a == vip))
    }

    /// Adds `vip`. Returns `true` when vipd created it, `false` when it was already there.
    pub async fn add(&self, index: u32, vip: Vip) -> Result<bool, AddrError> {
        match self
            .handle
            .address()
            .add(index, IpAddr::V4(vip.addr), vip.prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
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

/// Whether interface `name` is up with carrier (IFF_UP and IFF_RUNNING), via SIOCGIFFLAGS.
pub fn link_running(name: &str) -> bool {
    // SAFETY: a plain datagram socket used only for the ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads into the ifreq we own.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) };
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return false;
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags } as i32;
    flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0
}

/// Per-interface sysctls so the kernel never answers or announces a VIP on its own:
/// arp_ignore=1 (answer only for addresses of the receiving interface) and
/// arp_announce=2 (never use a VIP as the source of ARP requests it sends).
pub fn harden_arp(ifname: &str) -> std::io::Result<()> {
    for (name, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
        std::fs::write(format!("/proc/sys/net/ipv4/conf/{ifname}/{name}"), value)?;
    }
    Ok(())
}
