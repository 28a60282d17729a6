//! vipd: virtual-IP failover with CARP, VIP ownership decided in XDP.
//!
//! Folders by concern, in the order data flows: [`config`] (flags, TOML, validation) ->
//! [`protocol`] (the pure core: codec, receive pass, election, group, reload plan) ->
//! [`daemon`] (event loop, executor, the one [`daemon::effects::Effects`] boundary) ->
//! [`kernel`] (the boundary's real side: eBPF maps and programs, netlink, frames). [`ops`]
//! serves operators (control socket, metrics, scripts, systemd); [`trackers`] watch
//! services and links and report events to the daemon.
pub mod config;
pub mod daemon;
pub mod kernel;
pub mod ops;
pub mod protocol;
#[cfg(test)]
mod testing;
pub(crate) mod trackers;
