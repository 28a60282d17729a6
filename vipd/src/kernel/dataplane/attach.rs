//! Which program an interface holds and how vipd's are attached: XDP through `IFLA_XDP`
//! and TC as a clsact filter of a fixed priority, asked and set over rtnetlink
//! synchronously, and the maps of a program found there adopted by pinning them.
use super::*;

/// Priority of vipd's TC egress filter: fixed, so that a restarted vipd finds it.
pub(super) const TC_PRIORITY: u16 = 0x7ca2;
/// Handle of vipd's TC egress filter.
pub(super) const TC_HANDLE: TcHandle = TcHandle::new(0, 0x7ca2);
/// `XDP_FLAGS_SKB_MODE` and `XDP_FLAGS_DRV_MODE` of `if_link.h`.
pub(super) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub(super) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// The attach flags of an XDP program attached as `attached`.
pub(super) fn xdp_flags(attached: XdpAttached) -> u32 {
    match attached {
        XdpAttached::SocketBuffer => XDP_FLAGS_SKB_MODE,
        _ => XDP_FLAGS_DRV_MODE,
    }
}

/// Removes vipd's TC filter in `direction` from `ifname`, if there is one.
pub(super) fn detach_tc(ifname: &str, direction: TcAttachType) {
    if let Ok(link) = SchedClassifierLink::attached(ifname, direction, TC_PRIORITY, TC_HANDLE, None)
    {
        let _ = link.detach();
    }
}

/// The u32 value of attribute `kind` in a run of netlink attributes.
pub(super) fn nested_u32(mut buf: &[u8], kind: u16) -> Option<u32> {
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return None;
        }
        if ty == kind && len == 8 {
            return Some(u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]));
        }
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    None
}

/// `TCA_BPF_ID`: the program id attribute of a `bpf` filter's options.
pub(super) const TCA_BPF_ID: u16 = 11;

/// The program of vipd's TC filter (its priority) on `ifindex` in `direction`, if any.
pub(super) fn tc_program(ifindex: u32, direction: TcAttachType) -> Result<Option<u32>> {
    let mut msg = TcMessage::default();
    msg.header.index = ifindex as i32;
    msg.header.parent = NlTcHandle {
        major: 0xffff,
        minor: match direction {
            TcAttachType::Ingress => 0xfff2,
            _ => 0xfff3,
        },
    };
    let replies = match rtnl(RouteNetlinkMessage::GetTrafficFilter(msg), NLM_F_DUMP) {
        Ok(r) => r,
        // No clsact qdisc: no filter.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
        Err(e) => {
            return Err(DataplaneError::Link {
                what: format!("listing the TC filters of ifindex {ifindex}"),
                detail: e.to_string(),
            });
        }
    };
    for reply in replies {
        let RouteNetlinkMessage::NewTrafficFilter(filter) = reply else {
            continue;
        };
        if filter.header.info >> 16 != u32::from(TC_PRIORITY) {
            continue;
        }
        for attr in &filter.attributes {
            let TcAttribute::Options(options) = attr else {
                continue;
            };
            for option in options {
                // A `bpf` filter's options arrive whole, as nested attributes.
                let TcOption::Other(nla) = option else {
                    continue;
                };
                let mut nested = vec![0u8; nla.value_len()];
                nla.emit_value(&mut nested);
                if let Some(id) = nested_u32(&nested, TCA_BPF_ID) {
                    return Ok(Some(id));
                }
            }
        }
    }
    Ok(None)
}

/// One rtnetlink request, answered synchronously: the messages of the reply, or the
/// kernel's error.
pub(super) fn rtnl(
    msg: RouteNetlinkMessage,
    flags: u16,
) -> std::io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = flags | NLM_F_REQUEST | NLM_F_ACK;
    req.header.sequence_number = 1;
    req.finalize();
    let mut buf = vec![0; req.buffer_len()];
    req.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut out = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < data.len() {
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                .map_err(std::io::Error::other)?;
            let len = reply.header.length as usize;
            match reply.payload {
                NetlinkPayload::Error(e) => {
                    return match e.code {
                        Some(code) => Err(std::io::Error::from_raw_os_error(-code.get())),
                        None => Ok(out),
                    };
                }
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::InnerMessage(m) => out.push(m),
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

/// The XDP program attached to `ifindex`, if any: its id and how it is attached.
pub(super) fn xdp_attached(ifindex: u32) -> Result<Option<(u32, XdpAttached)>> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let replies = rtnl(RouteNetlinkMessage::GetLink(msg), 0).map_err(link_err(format!(
        "reading the XDP state of ifindex {ifindex}"
    )))?;
    for reply in replies {
        let RouteNetlinkMessage::NewLink(link) = reply else {
            continue;
        };
        for attr in link.attributes {
            let LinkAttribute::Xdp(xdp) = attr else {
                continue;
            };
            let attached = xdp.iter().find_map(|x| match x {
                LinkXdp::Attached(a) => Some(*a),
                _ => None,
            });
            let id = xdp.iter().find_map(|x| match x {
                LinkXdp::ProgId(id) => Some(*id),
                _ => None,
            });
            if let (Some(a), Some(id)) = (attached, id)
                && a != XdpAttached::None
            {
                return Ok(Some((id, a)));
            }
        }
    }
    Ok(None)
}

/// Attaches program `fd` (or detaches with -1) to `ifindex` through netlink, replacing
/// what is attached in the same mode.
pub(super) fn set_xdp(ifindex: u32, fd: std::os::fd::RawFd, flags: u32) -> std::io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(vec![
        LinkXdp::Fd(fd),
        LinkXdp::Flags(flags),
    ]));
    rtnl(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
}

/// The program with id `id` attached to `ifindex`, which must be vipd's.
pub(super) fn vipd_program(ifindex: u32, id: u32) -> Result<aya::programs::ProgramInfo> {
    let info = aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .find(|p| p.id() == id)
        .ok_or_else(|| DataplaneError::Link {
            what: format!("ifindex {ifindex}"),
            detail: format!("its XDP program {id} vanished"),
        })?;
    let ours = [XDP_PROGRAM, TC_INGRESS_PROGRAM];
    if !info.name_as_str().is_some_and(|n| ours.contains(&n)) {
        return Err(DataplaneError::Link {
            what: format!("ifindex {ifindex}"),
            detail: format!(
                "another program is attached ({:?}, id {id}); vipd does not replace it: \
             detach it first (ip link set dev <interface> xdp off)",
                info.name_as_str().unwrap_or("?")
            ),
        });
    }
    Ok(info)
}

/// A map's shape: key size, value size, maximum entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    pub key: u32,
    pub value: u32,
    pub max_entries: u32,
}

/// Why an attached program's map `name` of shape `found` cannot serve the programs about to
/// be loaded, which declare it as `wanted` (`None`: they have no such map); `None` when it
/// can. A map of another shape (left by another version of vipd) would be read and
/// written with the wrong sizes or indexes.
pub(super) fn layout_change(name: &str, found: Layout, wanted: Option<Layout>) -> Option<String> {
    match wanted {
        None => Some(format!("{name}: the programs no longer declare it")),
        Some(w) if w != found => Some(format!(
            "{name}: key {}/value {}/entries {} where the programs declare {}/{}/{}",
            found.key, found.value, found.max_entries, w.key, w.value, w.max_entries
        )),
        Some(_) => None,
    }
}

/// The shape of every map the object declares, by name.
fn declared_layouts() -> Result<std::collections::HashMap<String, Layout>> {
    let obj = aya_obj::Object::parse(EBPF_OBJECT).map_err(|e| DataplaneError::Link {
        what: "reading the maps the programs declare".into(),
        detail: e.to_string(),
    })?;
    Ok(obj
        .maps
        .iter()
        .map(|(name, m)| {
            let layout = Layout {
                key: m.key_size(),
                value: m.value_size(),
                max_entries: m.max_entries(),
            };
            (name.clone(), layout)
        })
        .collect())
}

/// Pins the maps of vipd's attached `program` in `pin_dir`, for the loader to reuse. A map
/// whose shape differs from the one the programs declare (an upgrade that changed it) is
/// not adopted: the new programs start with a fresh one, and the log says which.
pub(super) fn adopt_maps(program: &aya::programs::ProgramInfo, pin_dir: &Path) -> Result<()> {
    let declared = declared_layouts()?;
    let ids = program
        .map_ids()
        .map_err(prog_err("reading the maps of the attached program"))?
        .unwrap_or_default();
    for id in ids {
        let map = MapData::from_id(id).map_err(map_err(format!("map {id}")))?;
        let info = map.info().map_err(map_err(format!("map {id}")))?;
        let Some(name) = info.name_as_str().filter(|n| OUR_MAPS.contains(n)) else {
            continue;
        };
        let found = Layout {
            key: info.key_size(),
            value: info.value_size(),
            max_entries: info.max_entries(),
        };
        if let Some(why) = layout_change(name, found, declared.get(name).copied()) {
            tracing::warn!(map = name, reason = %why, "not adopted: it starts empty");
            continue;
        }
        map.pin(pin_dir.join(name))
            .map_err(|e| DataplaneError::Link {
                what: format!("pinning the adopted map {name}"),
                detail: e.to_string(),
            })?;
    }
    tracing::info!(
        program = program.id(),
        "adopted the maps of the attached program"
    );
    Ok(())
}
