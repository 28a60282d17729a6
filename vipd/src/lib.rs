//! vipd: virtual-IP failover with CARP, VIP ownership decided in XDP.
pub mod carp;
pub mod dataplane;
pub mod election;
