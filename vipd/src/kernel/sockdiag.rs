//! Counts this network namespace's TCP connections by local address with NETLINK_SOCK_DIAG
//! (inet_diag): how a draining node knows when the connections to its VIPs have closed.
//! The kernel offers no event for this; a draining group asks every 100 ms.
use std::collections::HashMap;
use std::net::Ipv4Addr;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
/// The TCP states of a connection that still carries data or waits for its peer to close:
/// ESTABLISHED (1), SYN_RECV (3), FIN_WAIT1 (4), FIN_WAIT2 (5), CLOSE_WAIT (8), LAST_ACK (9),
/// CLOSING (11). TIME_WAIT and listeners are not connections to drain.
pub const OPEN_STATES: u32 =
    (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 9) | (1 << 11);

/// The `inet_diag_req_v2` dump request for every IPv4 TCP socket in `states`.
fn request(states: u32) -> Vec<u8> {
    let mut req = Vec::with_capacity(NLMSG_HDRLEN + 56);
    let len = (NLMSG_HDRLEN + 56) as u32;
    req.extend_from_slice(&len.to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    req.extend_from_slice(&0u32.to_ne_bytes()); // port id
    req.push(libc::AF_INET as u8); // sdiag_family
    req.push(libc::IPPROTO_TCP as u8); // sdiag_protocol
    req.push(0); // idiag_ext
    req.push(0); // pad
    req.extend_from_slice(&states.to_ne_bytes());
    req.extend_from_slice(&[0u8; 48]); // inet_diag_sockid: any
    req
}

/// Adds the local address of every `inet_diag_msg` in one reply buffer to `counts`;
/// `Ok(true)` once the dump is done.
pub fn parse(mut buf: &[u8], counts: &mut HashMap<Ipv4Addr, u32>) -> std::io::Result<bool> {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(std::io::Error::other("truncated sock_diag reply"));
        }
        let body = &buf[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = body
                    .get(0..4)
                    .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                    .unwrap_or(-libc::EIO);
                if code != 0 {
                    return Err(std::io::Error::from_raw_os_error(-code));
                }
                return Ok(true);
            }
            SOCK_DIAG_BY_FAMILY => {
                // inet_diag_msg: family, state, timer, retrans, then the socket id:
                // sport, dport, src[16], dst[16], ...
                if let Some(src) = body.get(8..12) {
                    let addr = Ipv4Addr::new(src[0], src[1], src[2], src[3]);
                    *counts.entry(addr).or_default() += 1;
                }
            }
            _ => {}
        }
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    Ok(false)
}

/// Open TCP connections (see [`OPEN_STATES`]) of this network namespace by local address.
pub fn open_connections() -> std::io::Result<HashMap<Ipv4Addr, u32>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.send(&request(OPEN_STATES), 0)?;
    let mut counts = HashMap::new();
    loop {
        let (data, _) = socket.recv_from_full()?;
        if data.is_empty() || parse(&data, &mut counts)? {
            return Ok(counts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn connections_are_counted_by_local_address_until_done() {
        let mut diag = vec![2u8, 1, 0, 0, 0x1f, 0x90, 0xc3, 0x50];
        diag.extend_from_slice(&[10, 0, 0, 100]);
        diag.resize(72, 0);
        let mut buf = message(SOCK_DIAG_BY_FAMILY, &diag);
        buf.extend(message(SOCK_DIAG_BY_FAMILY, &diag));
        let mut counts = HashMap::new();
        assert!(!parse(&buf, &mut counts).unwrap());
        assert_eq!(counts[&Ipv4Addr::new(10, 0, 0, 100)], 2);
        assert!(parse(&message(NLMSG_DONE, &[0; 4]), &mut counts).unwrap());
        assert!(parse(&[1, 2, 3], &mut counts).is_ok());
        let req = request(OPEN_STATES);
        assert_eq!(req.len(), 72);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 72);
    }

    #[test]
    fn a_real_dump_finds_a_connection_and_not_its_listener() {
        let l = std::net::TcpListener::bind("127.0.0.77:0").unwrap();
        let before = open_connections().unwrap();
        assert_eq!(
            before.get(&Ipv4Addr::new(127, 0, 0, 77)),
            None,
            "a listener is no connection"
        );
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, _) = l.accept().unwrap();
        let after = open_connections().unwrap();
        // The accepted side at least (the client may have taken 127.0.0.77 as its source too).
        assert!(
            after
                .get(&Ipv4Addr::new(127, 0, 0, 77))
                .copied()
                .unwrap_or(0)
                >= 1
        );
    }
}
