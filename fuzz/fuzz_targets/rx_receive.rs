//! The receive pass of one group, fed a sequence of packets per input: arbitrary bytes and
//! authentic advertisements (fresh, replayed, carrying one of our own counters, from our
//! own address, with a byte changed), with the clock and our sent counters moving in
//! between, and enough of them at once to overflow the replay memory.
//!
//! `Receiver::receive` must never panic, every packet must be counted exactly once, and
//! each verdict must be the one the rules give: decode errors as decoded, then our own
//! address, then our own counters, then a counter among the last `REMEMBERED_COUNTERS`
//! accepted is a replay.
#![no_main]

use std::collections::{HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vipd::protocol::carp::{self, Advert, Coverage};
use vipd::protocol::rx::{REMEMBERED_COUNTERS, Receiver, Rejection, RxStats, SentCounters};
use vipd_fuzz::{GROUP, KEY, VHID, VIPS, lookup_covering};

const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Steps after this many packets are left out, so that one input stays fast (each packet
/// costs an HMAC): enough to fill the replay memory once and go on past it.
const PACKETS_PER_INPUT: u64 = REMEMBERED_COUNTERS as u64 + 1024;

/// The input is one byte choosing what the group's HMAC covers (even: as ucarp; odd: also
/// the timing, the demote count and the source), then records `[kind] [length] [length
/// bytes]` (a last record shorter than its length takes what is left; a field past the end
/// reads as zero), each one step by `kind % 6`:
///
/// - 0: the bytes, as a packet off the wire;
/// - 1: one authentic advertisement: source, counter kind, 8 counter bytes, advbase,
///   advskew, demote, then a byte offset and a value to xor there (0: none). The source is
///   the peer (`source % 4 == 0`), this node (1) or 10.0.0.`source`; the counter is fresh
///   (`kind % 3 == 0`: the 8 bytes), that of the n-th most recently accepted advertisement
///   (1) or this node's n-th sent counter (2), n in the first two of the 8 bytes;
/// - 2: a run from the peer: start counter (8 bytes), stride, count;
/// - 3: as many advertisements from the peer as the replay memory holds, plus some: start
///   counter (8 bytes), how many more;
/// - 4: this node advertised: its sent counters are now (start, start + n], start (8
///   bytes), n (2 bytes);
/// - 5: time passes: milliseconds (2 bytes); rejections are logged once per interval.
#[derive(Debug)]
enum Step {
    Raw(Vec<u8>),
    Signed {
        from: Ipv4Addr,
        counter: Counter,
        advbase: u8,
        advskew: u8,
        demote: u8,
        flip: (u8, u8),
    },
    Run {
        start: u64,
        stride: u8,
        count: u8,
    },
    Fill {
        start: u64,
        extra: u8,
    },
    Sent {
        start: u64,
        len: u16,
    },
    Wait {
        ms: u16,
    },
}

#[derive(Debug)]
enum Counter {
    Fresh(u64),
    Accepted(u16),
    Sent(u16),
}

/// Big-endian fields of one record, zero past its end.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |n, _| n << 8 | u64::from(self.u8()))
    }
}

/// The records of an input, in order.
fn steps(mut input: &[u8]) -> Vec<Step> {
    let mut steps = Vec::new();
    while let [kind, len, rest @ ..] = input {
        let (body, next) = rest.split_at(usize::from(*len).min(rest.len()));
        input = next;
        let mut f = Fields(body);
        steps.push(match kind % 6 {
            0 => Step::Raw(body.to_vec()),
            1 => {
                let from = match f.u8() {
                    b if b % 4 == 0 => PEER,
                    b if b % 4 == 1 => ME,
                    b => Ipv4Addr::new(10, 0, 0, b),
                };
                let kind = f.u8();
                let bytes = f.u64();
                let counter = match kind % 3 {
                    0 => Counter::Fresh(bytes),
                    1 => Counter::Accepted((bytes >> 48) as u16),
                    _ => Counter::Sent((bytes >> 48) as u16),
                };
                Step::Signed {
                    from,
                    counter,
                    advbase: f.u8(),
                    advskew: f.u8(),
                    demote: f.u8(),
                    flip: (f.u8(), f.u8()),
                }
            }
            2 => Step::Run {
                start: f.u64(),
                stride: f.u8(),
                count: f.u8(),
            },
            3 => Step::Fill {
                start: f.u64(),
                extra: f.u8(),
            },
            4 => Step::Sent {
                start: f.u64(),
                len: f.u16(),
            },
            _ => Step::Wait { ms: f.u16() },
        });
    }
    steps
}

/// The rules, written plainly: the counters accepted most recently, in order and as a set.
struct Model {
    coverage: Coverage,
    accepted: VecDeque<u64>,
    remembered: HashSet<u64>,
    sent: SentCounters,
    stats: RxStats,
    fed: u64,
}

impl Model {
    fn is_sent(&self, c: u64) -> bool {
        let span = self.sent.last.wrapping_sub(self.sent.start);
        let at = c.wrapping_sub(self.sent.start);
        at >= 1 && at <= span
    }

    /// The verdict on `packet`; `authentic`: what it decodes to, when known without
    /// decoding it (an advertisement built here and left as it is).
    fn verdict(
        &mut self,
        packet: &[u8],
        authentic: Option<(Ipv4Addr, Advert)>,
    ) -> Result<(Ipv4Addr, Advert), Rejection> {
        let (src, advert) = match authentic {
            Some(known) => known,
            None => carp::decode_covering(packet, GROUP, lookup_covering(self.coverage))
                .map_err(Rejection::Carp)?,
        };
        if src == ME {
            return Err(Rejection::OwnAddress);
        }
        if self.is_sent(advert.counter) {
            return Err(Rejection::OwnCounter);
        }
        if self.remembered.contains(&advert.counter) {
            return Err(Rejection::Replayed);
        }
        self.accepted.push_back(advert.counter);
        self.remembered.insert(advert.counter);
        if self.accepted.len() > REMEMBERED_COUNTERS {
            let forgotten = self.accepted.pop_front();
            self.remembered
                .remove(&forgotten.expect("the list is not empty"));
        }
        assert_eq!(self.accepted.len(), self.remembered.len());
        Ok((src, advert))
    }

    fn counter(&self, c: &Counter) -> u64 {
        match *c {
            Counter::Fresh(c) => c,
            Counter::Accepted(n) => {
                let len = self.accepted.len();
                if len == 0 {
                    0
                } else {
                    self.accepted[len - 1 - usize::from(n) % len]
                }
            }
            Counter::Sent(n) => self.sent.start.wrapping_add(u64::from(n)),
        }
    }
}

/// An authentic advertisement from `src`, its HMAC covering `coverage`.
fn advert(
    coverage: Coverage,
    src: Ipv4Addr,
    counter: u64,
    (advbase, advskew, demote): (u8, u8, u8),
) -> (Vec<u8>, Advert) {
    let unsigned = Advert {
        vhid: VHID,
        advskew,
        advbase,
        demote,
        counter,
        hmac: [0; 20],
    };
    let adv = unsigned.sealed(coverage, &VIPS, &KEY, src);
    (
        carp::build_ipv4(src, GROUP, counter as u16, &adv).to_vec(),
        adv,
    )
}

struct Harness {
    rx: Receiver,
    model: Model,
    now: Instant,
}

impl Harness {
    fn peer_advert(&mut self, counter: u64) {
        let (packet, adv) = advert(self.model.coverage, PEER, counter, (1, 0, 0));
        self.feed(&packet, Some((PEER, adv)));
    }

    fn feed(&mut self, packet: &[u8], authentic: Option<(Ipv4Addr, Advert)>) {
        let want = self.model.verdict(packet, authentic);
        let got = self.rx.receive(packet, self.model.sent, self.now);
        assert_eq!(got, want, "packet {packet:02x?}");
        self.model.fed += 1;
        match got {
            Ok(_) => self.model.stats.accepted += 1,
            Err(r) => self.model.stats.count(r),
        }
    }

    fn check_counts(&self) {
        let stats = self.rx.stats();
        assert_eq!(stats, &self.model.stats);
        let rejected: u64 = stats.rejections().iter().map(|(_, n)| n).sum();
        assert_eq!(stats.accepted + rejected, self.model.fed);
    }
}

/// The multicast group the receiver serves: [`VHID`], [`VIPS`], [`KEY`]'s password, to
/// [`GROUP`].
fn group(coverage: Coverage) -> vipd::config::GroupConfig {
    let raw = vipd::config::RawGroup {
        interface: Some("eth0".into()),
        vhid: Some(u32::from(VHID)),
        vips: VIPS.iter().map(|v| format!("{v}/24")).collect(),
        password: Some("secret".into()),
        authenticate: Some(coverage),
        ..Default::default()
    };
    let g = raw.validate("").expect("a valid group");
    assert_eq!((g.destination, &g.key), (GROUP, &*KEY));
    g
}

fuzz_target!(|input: &[u8]| {
    let Some((choice, input)) = input.split_first() else {
        return;
    };
    let coverage = if choice % 2 == 0 {
        Coverage::Carp
    } else {
        Coverage::All
    };
    let mut h = Harness {
        rx: Receiver::new("fuzz/vhid1".into(), &group(coverage), ME),
        model: Model {
            coverage,
            accepted: VecDeque::new(),
            remembered: HashSet::new(),
            sent: SentCounters::default(),
            stats: RxStats::default(),
            fed: 0,
        },
        now: Instant::now(),
    };
    for step in steps(input) {
        if h.model.fed >= PACKETS_PER_INPUT {
            break;
        }
        match step {
            Step::Raw(bytes) => h.feed(&bytes, None),
            Step::Signed {
                from,
                counter,
                advbase,
                advskew,
                demote,
                flip: (at, xor),
            } => {
                let counter = h.model.counter(&counter);
                let (mut packet, adv) = advert(coverage, from, counter, (advbase, advskew, demote));
                let at = usize::from(at) % packet.len();
                packet[at] ^= xor;
                h.feed(&packet, (xor == 0).then_some((from, adv)));
            }
            Step::Run {
                start,
                stride,
                count,
            } => {
                for i in 0..u64::from(count) {
                    h.peer_advert(start.wrapping_add(i.wrapping_mul(u64::from(stride))));
                }
            }
            Step::Fill { start, extra } => {
                for i in 0..(REMEMBERED_COUNTERS as u64 + u64::from(extra)) {
                    h.peer_advert(start.wrapping_add(i));
                }
            }
            Step::Sent { start, len } => {
                h.model.sent = SentCounters {
                    start,
                    last: start.wrapping_add(u64::from(len)),
                };
            }
            Step::Wait { ms } => h.now += Duration::from_millis(u64::from(ms)),
        }
        h.check_counts();
    }
});
