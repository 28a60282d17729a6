//! The kernel side of the effects boundary: the eBPF programs and their maps
//! ([`dataplane`]), addresses and links over rtnetlink ([`netlink`]), frames on packet
//! sockets ([`garp`]), unicast advertisements on raw IP sockets ([`unicast`]), TCP connections through sock_diag ([`sockdiag`]), the monotonic clock
//! the programs share ([`clock`]), and [`Kernel`], the real [`crate::daemon::effects::Effects`].
//!
//! Mechanism only: nothing here decides ownership or knows an election rule; it does what
//! the daemon's executor asks and reports what it sees.
//!
//! Three netlink sockets, each for a reason: [`netlink`] is the async rtnetlink client of
//! the event loop (addresses, links, link events); [`dataplane`] asks rtnetlink
//! synchronously which XDP program or TC filter an interface holds, because it attaches
//! and adopts programs from synchronous code that also runs outside any runtime (the
//! BPF_PROG_TEST_RUN tests, a stop after the runtime's tasks ended); [`sockdiag`] speaks
//! another netlink family (NETLINK_SOCK_DIAG), which rtnetlink clients do not.
pub mod clock;
pub mod dataplane;
mod effects;
pub(crate) mod garp;
pub(crate) mod netlink;
mod rings;
pub(crate) mod sockdiag;
mod unicast;

pub use effects::Kernel;
pub use rings::Rings;
