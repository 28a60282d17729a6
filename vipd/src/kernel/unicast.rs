//! Unicast transmit: a unicast group's advertisements, one IPv4 packet per peer, sent on a
//! raw IPv4 socket of protocol 112 bound to the group's interface, so that the kernel
//! routes them and resolves each peer's MAC. The packet carries vipd's own header
//! (`IP_HDRINCL`: TTL 255, ucarp's TOS and identification).
//!
//! The same socket keeps the kernel from answering peers' advertisements with ICMP
//! "protocol unreachable": a raw socket of protocol 112 exists, so they count as
//! delivered. It keeps none of them: a filter drops every packet before it is queued (the
//! daemon receives advertisements from the XDP program's ring buffer only).
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use vipd_common::IPPROTO_CARP;

/// A send-only raw IPv4 socket of protocol 112 bound to one interface.
pub struct IpSender {
    fd: OwnedFd,
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a T that lives for the call, and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl IpSender {
    /// Opens the socket on interface `name`.
    pub fn new(name: &str) -> io::Result<IpSender> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::c_int::from(IPPROTO_CARP),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a socket we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Nothing is ever queued: one instruction, "return 0" (keep no byte).
        let drop_all = [libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: drop_all.as_ptr() as *mut libc::sock_filter,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)?;
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_HDRINCL, &(1 as libc::c_int))?;
        // Advertisements go ahead of bulk traffic in the qdisc (TC_PRIO_CONTROL).
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_PRIORITY,
            &(7 as libc::c_int),
        )?;
        // Bound by index underneath: a rename of the interface changes nothing.
        let mut ifname = [0u8; libc::IFNAMSIZ];
        let n = name.len().min(libc::IFNAMSIZ - 1);
        ifname[..n].copy_from_slice(&name.as_bytes()[..n]);
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, &ifname)?;
        Ok(IpSender { fd })
    }

    /// Sends one whole IPv4 packet to `dst`.
    pub fn send(&self, dst: Ipv4Addr, packet: &[u8]) -> io::Result<()> {
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(dst.octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: packet and sin are valid for the call.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr() as *const libc::c_void,
                packet.len(),
                0,
                &sin as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
