//! The protocol: everything that decides who owns a VIP, and nothing that touches the
//! system. The CARP wire codec ([`carp`]), the one receive pass with a counter per
//! rejection ([`rx`]), the election ([`election`]), a group's timers and VIP ownership
//! ([`group`]) and what a reload changes ([`reload`]).
//!
//! Pure: no I/O, no clock of its own (times come in with the events), no import from
//! `daemon`, `kernel` or `ops`. Every rule here has a virtual-clock unit test.
pub mod carp;
pub(crate) mod election;
pub(crate) mod group;
pub(crate) mod reload;
pub mod rx;
