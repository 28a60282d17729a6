//! The kernel side of the effects boundary: the eBPF programs and their maps
//! ([`dataplane`]), addresses and links over rtnetlink ([`netlink`]), frames on packet
//! sockets ([`garp`]), TCP connections through sock_diag ([`sockdiag`]), the monotonic clock
//! the programs share ([`clock`]), and [`Kernel`], the real [`crate::daemon::effects::Effects`].
//!
//! Mechanism only: nothing here decides ownership or knows an election rule; it does what
//! the daemon's executor asks and reports what it sees.
pub mod clock;
pub mod dataplane;
mod effects;
pub mod garp;
pub mod netlink;
mod rings;
pub mod sockdiag;

pub use effects::Kernel;
pub use rings::Rings;
