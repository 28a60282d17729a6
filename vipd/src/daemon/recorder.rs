//! The recording effects of the unit tests: every side effect written down in order, none
//! carried out, and the data plane's entries kept as the kernel would keep them.
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::Instant;

use super::effects::{EffectError, Effects, ForwardTarget};
use crate::config::Vip;
use crate::kernel::dataplane::{Reception, XdpPreference};
use crate::kernel::netlink::{AddrError, LinkInfo};
use crate::ops::control::InterfaceStatus;
use crate::ops::scripts::ScriptRun;
use crate::protocol::group::Lease;

/// One recorded side effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Lease {
        ifindex: u32,
        vhid: u8,
        vip: Ipv4Addr,
        lease: Option<Lease>,
    },
    Frame {
        ifindex: u32,
        frame: Vec<u8>,
    },
    /// An IPv4 packet to a unicast address.
    Packet {
        ifindex: u32,
        dst: Ipv4Addr,
        packet: Vec<u8>,
    },
    AddAddress {
        ifindex: u32,
        vip: Vip,
    },
    RemoveAddress {
        ifindex: u32,
        vip: Vip,
    },
    Script {
        script: std::path::PathBuf,
        args: Vec<String>,
    },
    Peer {
        ifindex: u32,
        addr: Ipv4Addr,
    },
    Forward {
        ifindex: u32,
        vip: Ipv4Addr,
        target: Option<ForwardTarget>,
    },
    PeerMac {
        ifindex: u32,
        mac: [u8; 6],
    },
    OpenDataplane {
        interfaces: Vec<u32>,
    },
    Attach {
        ifindex: u32,
    },
    RegisterGroup {
        ifindex: u32,
        vhid: u8,
        rx: Reception,
    },
    /// A VIP entry `retain` removed.
    DropVip {
        ifindex: u32,
        vip: Ipv4Addr,
    },
    /// A group entry `retain` removed.
    DropGroup {
        ifindex: u32,
        vhid: u8,
    },
}

/// Records every side effect in order and carries none out. Addresses already present
/// (`present`) make `add_address` report that vipd did not create them; `links` are the
/// interfaces there are. It keeps the data plane's entries (`vips`, `groups`) as the
/// kernel would, so that what a reload leaves behind can be checked.
#[derive(Debug, Default)]
pub struct Recorder {
    pub log: Vec<Effect>,
    pub present: Vec<(u32, Ipv4Addr)>,
    pub links: HashMap<String, LinkInfo>,
    /// VIP entries of the data plane: (ifindex, VIP).
    pub vips: BTreeSet<(u32, Ipv4Addr)>,
    /// Group entries of the data plane: (ifindex, vhid).
    pub groups: BTreeSet<(u32, u8)>,
    /// Interfaces with the programs attached.
    pub attached_to: BTreeSet<u32>,
    /// Makes `send_frame` fail, as a link without carrier does.
    pub fail_sends: bool,
    /// What `open_connections` reports.
    pub connections: HashMap<Ipv4Addr, u32>,
}

impl Recorder {
    /// The recorded effects, emptying the log.
    pub fn take(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.log)
    }
}

impl Effects for Recorder {
    async fn link(&mut self, name: &str) -> Result<LinkInfo, EffectError> {
        self.links
            .get(name)
            .cloned()
            .ok_or_else(|| EffectError::Address(AddrError::NoInterface(name.to_owned())))
    }

    async fn addresses(&mut self, ifindex: u32) -> Result<Vec<Ipv4Addr>, EffectError> {
        Ok(self
            .present
            .iter()
            .filter(|(i, _)| *i == ifindex)
            .map(|(_, a)| *a)
            .collect())
    }

    fn open_dataplane(&mut self, interfaces: &[u32]) -> Result<(), EffectError> {
        self.log.push(Effect::OpenDataplane {
            interfaces: interfaces.to_vec(),
        });
        Ok(())
    }

    fn attach(
        &mut self,
        name: &str,
        link: &LinkInfo,
        _mode: XdpPreference,
    ) -> Result<InterfaceStatus, EffectError> {
        self.log.push(Effect::Attach {
            ifindex: link.index,
        });
        self.attached_to.insert(link.index);
        Ok(InterfaceStatus {
            name: name.to_owned(),
            ifindex: link.index,
            mode: "recorded".into(),
            adopted: false,
        })
    }

    fn attached(&self, ifindex: u32) -> bool {
        self.attached_to.contains(&ifindex)
    }

    fn register_group(
        &mut self,
        ifindex: u32,
        vhid: u8,
        rx: &Reception,
        vips: &[Ipv4Addr],
    ) -> Result<(), EffectError> {
        for &vip in vips {
            self.write_lease(ifindex, vhid, vip, None)?;
        }
        self.log.push(Effect::RegisterGroup {
            ifindex,
            vhid,
            rx: rx.clone(),
        });
        self.groups.insert((ifindex, vhid));
        Ok(())
    }

    fn retain(
        &mut self,
        keep_vip: &dyn Fn(u32, Ipv4Addr) -> bool,
        keep_group: &dyn Fn(u32, u8) -> bool,
    ) -> Result<(), EffectError> {
        for &(ifindex, vip) in &self.vips {
            if !keep_vip(ifindex, vip) {
                self.log.push(Effect::DropVip { ifindex, vip });
            }
        }
        for &(ifindex, vhid) in &self.groups {
            if !keep_group(ifindex, vhid) {
                self.log.push(Effect::DropGroup { ifindex, vhid });
            }
        }
        self.vips.retain(|&(i, v)| keep_vip(i, v));
        self.groups.retain(|&(i, v)| keep_group(i, v));
        Ok(())
    }

    fn write_lease(
        &mut self,
        ifindex: u32,
        vhid: u8,
        vip: Ipv4Addr,
        lease: Option<Lease>,
    ) -> Result<(), EffectError> {
        self.log.push(Effect::Lease {
            ifindex,
            vhid,
            vip,
            lease,
        });
        self.vips.insert((ifindex, vip));
        Ok(())
    }

    fn send_frame(&mut self, ifindex: u32, frame: &[u8]) -> Result<(), EffectError> {
        if self.fail_sends {
            return Err(EffectError::Send {
                ifindex,
                source: std::io::Error::from_raw_os_error(libc::ENETDOWN),
            });
        }
        self.log.push(Effect::Frame {
            ifindex,
            frame: frame.to_vec(),
        });
        Ok(())
    }

    fn send_packet(
        &mut self,
        ifindex: u32,
        dst: Ipv4Addr,
        packet: &[u8],
    ) -> Result<(), EffectError> {
        if self.fail_sends {
            return Err(EffectError::Send {
                ifindex,
                source: std::io::Error::from_raw_os_error(libc::ENETDOWN),
            });
        }
        self.log.push(Effect::Packet {
            ifindex,
            dst,
            packet: packet.to_vec(),
        });
        Ok(())
    }

    async fn add_address(&mut self, ifindex: u32, vip: Vip) -> Result<bool, EffectError> {
        self.log.push(Effect::AddAddress { ifindex, vip });
        let created = !self.present.contains(&(ifindex, vip.addr));
        if created {
            self.present.push((ifindex, vip.addr));
        }
        Ok(created)
    }

    async fn remove_address(&mut self, ifindex: u32, vip: Vip) -> Result<(), EffectError> {
        self.log.push(Effect::RemoveAddress { ifindex, vip });
        self.present.retain(|p| *p != (ifindex, vip.addr));
        Ok(())
    }

    fn run_script(&mut self, run: ScriptRun) {
        self.log.push(Effect::Script {
            script: run.script,
            args: run.args,
        });
    }

    fn learn_peer(&mut self, ifindex: u32, addr: Ipv4Addr) -> Result<(), EffectError> {
        self.log.push(Effect::Peer { ifindex, addr });
        Ok(())
    }

    fn last_seen(&self, _ifindex: u32, _vhid: u8) -> Option<(Instant, Ipv4Addr)> {
        None
    }

    fn set_forward(
        &mut self,
        ifindex: u32,
        vip: Ipv4Addr,
        target: Option<ForwardTarget>,
    ) -> Result<(), EffectError> {
        self.log.push(Effect::Forward {
            ifindex,
            vip,
            target,
        });
        Ok(())
    }

    fn open_connections(&mut self) -> Result<HashMap<Ipv4Addr, u32>, EffectError> {
        Ok(self.connections.clone())
    }

    fn learn_peer_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), EffectError> {
        self.log.push(Effect::PeerMac { ifindex, mac });
        Ok(())
    }
}
