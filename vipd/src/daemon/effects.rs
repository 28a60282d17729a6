//! The one boundary between vipd's decisions and the kernel: interfaces and the programs
//! attached to them, groups and ownership leases in the maps, frames out, VIP addresses,
//! scripts. [`crate::kernel::Kernel`] is the real implementation; the tests' `Recorder`
//! (`daemon/recorder.rs`) writes down what would have happened, so that start-up, reload, the executor and the daemon's event
//! handling are tested without root.
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use crate::config::Vip;
use crate::kernel::dataplane::{DataplaneError, Reception, XdpPreference};
use crate::kernel::netlink::{AddrError, LinkInfo};
use crate::ops::control::InterfaceStatus;
use crate::ops::scripts::ScriptRun;
use crate::protocol::group::Lease;

#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    #[error(transparent)]
    Address(#[from] AddrError),
    #[error("sending on ifindex {ifindex}: {source}")]
    Send {
        ifindex: u32,
        source: std::io::Error,
    },
    #[error("counting connections (sock_diag): {0}")]
    SockDiag(std::io::Error),
    #[error("{0}")]
    Setup(String),
}

/// What the daemon does to the outside world. Each call is one side effect.
// The daemon runs on one thread: the futures need not be Send.
#[allow(async_fn_in_trait)]
pub trait Effects {
    /// What vipd needs to know of interface `name`.
    async fn link(&mut self, name: &str) -> Result<LinkInfo, EffectError>;
    /// The IPv4 addresses configured on `ifindex`, in the kernel's order.
    async fn addresses(&mut self, ifindex: u32) -> Result<Vec<Ipv4Addr>, EffectError>;
    /// Readies the data plane for `interfaces` (adopting what an earlier vipd left attached
    /// to one of them); called once, before anything below touches it.
    fn open_dataplane(&mut self, interfaces: &[u32]) -> Result<(), EffectError>;
    /// Attaches the programs to `link` (named `name`) and opens its packet socket.
    fn attach(
        &mut self,
        name: &str,
        link: &LinkInfo,
        mode: XdpPreference,
    ) -> Result<InterfaceStatus, EffectError>;
    /// Whether the programs are attached to `ifindex` (by this daemon).
    fn attached(&self, ifindex: u32) -> bool;
    /// Registers group `vhid` on `ifindex`, accepting the advertisements `rx` describes,
    /// each of `vips` "not owned": its advertisements reach the daemon, and no node answers
    /// for its VIPs before the election says so.
    fn register_group(
        &mut self,
        ifindex: u32,
        vhid: u8,
        rx: &Reception,
        vips: &[Ipv4Addr],
    ) -> Result<(), EffectError>;
    /// Removes every VIP entry (ownership and forwarding) and group entry of the data plane
    /// for which `keep_vip` or `keep_group` is false.
    fn retain(
        &mut self,
        keep_vip: &dyn Fn(u32, Ipv4Addr) -> bool,
        keep_group: &dyn Fn(u32, u8) -> bool,
    ) -> Result<(), EffectError>;
    /// Writes the ownership lease of `vip` (of group `vhid`) on `ifindex`; `None`: not owned.
    fn write_lease(
        &mut self,
        ifindex: u32,
        vhid: u8,
        vip: Ipv4Addr,
        lease: Option<Lease>,
    ) -> Result<(), EffectError>;
    /// Sends one Ethernet frame on `ifindex`.
    fn send_frame(&mut self, ifindex: u32, frame: &[u8]) -> Result<(), EffectError>;
    /// Sends one IPv4 packet (its header included) to the unicast address `dst` out of
    /// `ifindex`, through the kernel's routing and neighbour resolution.
    fn send_packet(
        &mut self,
        ifindex: u32,
        dst: Ipv4Addr,
        packet: &[u8],
    ) -> Result<(), EffectError>;
    /// Adds `vip` to `ifindex`; `true` when vipd created it.
    async fn add_address(&mut self, ifindex: u32, vip: Vip) -> Result<bool, EffectError>;
    /// Removes `vip` from `ifindex` (absent counts as removed).
    async fn remove_address(&mut self, ifindex: u32, vip: Vip) -> Result<(), EffectError>;
    /// Queues a script run.
    fn run_script(&mut self, run: ScriptRun);
    /// Gives advertisements from `addr` on `ifindex` the known peers' ring from now on.
    fn learn_peer(&mut self, ifindex: u32, addr: Ipv4Addr) -> Result<(), EffectError>;
    /// When and from where the kernel program last saw an advertisement of group `vhid`
    /// (read only, for the log).
    fn last_seen(&self, ifindex: u32, vhid: u8) -> Option<(Instant, Ipv4Addr)>;
    /// Forwards the TCP segments for `vip` on `ifindex` that belong to no connection of
    /// this node to `target`; `None` stops it.
    fn set_forward(
        &mut self,
        ifindex: u32,
        vip: Ipv4Addr,
        target: Option<ForwardTarget>,
    ) -> Result<(), EffectError>;
    /// The open TCP connections of this node by local address (for a drain).
    fn open_connections(&mut self) -> Result<HashMap<Ipv4Addr, u32>, EffectError>;
    /// Segments from `mac` on `ifindex`, a CARP peer's MAC, are never forwarded.
    fn learn_peer_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), EffectError>;
}

/// Where a graceful take-over forwards the previous master's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardTarget {
    pub vhid: u8,
    /// The previous master.
    pub peer: Ipv4Addr,
    pub peer_mac: [u8; 6],
    /// The interface's own MAC, the forwarded frames' source.
    pub own_mac: [u8; 6],
    pub until: Instant,
    /// Forward without owning the VIP: this node just handed it over.
    pub tail: bool,
}
