//! Link-layer transmit: CARP advertisements and gratuitous ARP, sent as whole Ethernet
//! frames on a send-only AF_PACKET socket bound to the interface (protocol 0: it receives
//! nothing, so no receive queue can fill). The gratuitous ARP is what ucarp sends on becoming
//! MASTER: an ARP request "who-has VIP tell VIP" from the node's own MAC, to broadcast.
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;

/// Destination MAC of an IPv4 destination: the multicast mapping, or broadcast.
pub fn dst_mac(dst: Ipv4Addr) -> [u8; 6] {
    if dst.is_multicast() {
        let o = dst.octets();
        [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
    } else {
        [0xff; 6]
    }
}

fn eth_header(frame: &mut Vec<u8>, dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
}

/// The gratuitous ARP frame for `vip` from `mac`.
pub fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    eth_header(&mut f, [0xff; 6], mac, ETH_P_ARP);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&vip.octets());
    f
}

/// An IPv4 packet wrapped in Ethernet, to the MAC its destination maps to.
pub fn ipv4_frame(mac: [u8; 6], dst: Ipv4Addr, packet: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + packet.len());
    eth_header(&mut f, dst_mac(dst), mac, ETH_P_IP);
    f.extend_from_slice(packet);
    f
}

/// A send-only packet socket bound to one interface.
pub struct LinkSender {
    fd: OwnedFd,
    ifindex: u32,
}

impl LinkSender {
    pub fn new(ifindex: u32) -> io::Result<LinkSender> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a socket we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Advertisements go ahead of bulk traffic in the qdisc (TC_PRIO_CONTROL).
        let prio: libc::c_int = 7;
        // SAFETY: setsockopt with a c_int we own.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PRIORITY,
                &prio as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        Ok(LinkSender { fd, ifindex })
    }

    /// Sends one Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: frame and sll are valid for the call.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_is_a_request_for_the_vip_from_the_vip() {
        let mac = [2, 0, 0, 0, 0, 1];
        let f = garp_frame(mac, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "opcode request");
        assert_eq!(&f[28..32], &[10, 0, 0, 100], "sender is the VIP");
        assert_eq!(&f[38..42], &[10, 0, 0, 100], "target is the VIP");
    }

    #[test]
    fn multicast_mac_mapping() {
        assert_eq!(
            dst_mac(Ipv4Addr::new(224, 0, 0, 18)),
            [1, 0, 0x5e, 0, 0, 18]
        );
        assert_eq!(
            dst_mac(Ipv4Addr::new(239, 129, 1, 2)),
            [1, 0, 0x5e, 1, 1, 2]
        );
        assert_eq!(dst_mac(Ipv4Addr::BROADCAST), [0xff; 6]);
    }
}
