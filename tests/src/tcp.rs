//! A TCP echo service on the lab's nodes and clients that hold connections to it through
//! the VIP: what connection draining is measured with. Every socket is made inside its
//! namespace (a thread that entered it) and then used from ordinary threads.
//!
//! The service answers each line `L` with `NAME L`, NAME being the node's: a client knows
//! which node holds its connection, and that the node never changed.
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::{Host, in_netns};

/// The service's port.
pub const PORT: u16 = 7000;

/// The echo service on one node, bound to 0.0.0.0:[`PORT`]; stopped (every connection
/// closed) when dropped.
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Starts the service in `host`'s namespace, answering as `name`.
    pub fn start(host: &Host, name: &str) -> Result<EchoServer> {
        let listener = in_netns(&host.ns, || TcpListener::bind(("0.0.0.0", PORT)))
            .with_context(|| format!("binding the echo service in {}", host.ns))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, c, name) = (stop.clone(), conns.clone(), name.to_owned());
        let accept = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        if let Ok(clone) = stream.try_clone() {
                            c.lock().unwrap().push(clone);
                        }
                        let name = name.clone();
                        std::thread::spawn(move || echo(stream, &name));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(EchoServer {
            stop,
            conns,
            accept: Some(accept),
        })
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// Answers every line with `name line`; bulk data (a line that never ends) is read and
/// dropped, never kept.
fn echo(mut stream: TcpStream, name: &str) {
    /// Longer lines are bulk data, not answered.
    const MAX_LINE: usize = 1024;
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut line = Vec::with_capacity(MAX_LINE);
    let mut bulk = false;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                // Closed as a service closes it (the server keeps a handle for its stop).
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            Ok(n) => n,
        };
        for chunk in buf[..n].split_inclusive(|b| *b == b'\n') {
            if line.len() + chunk.len() > MAX_LINE {
                bulk = true;
                line.clear();
            } else if !bulk {
                line.extend_from_slice(chunk);
            }
            if chunk.last() != Some(&b'\n') {
                continue;
            }
            if !bulk {
                let mut reply = Vec::with_capacity(line.len() + name.len() + 1);
                reply.extend_from_slice(name.as_bytes());
                reply.push(b' ');
                reply.extend_from_slice(&line);
                if out.write_all(&reply).is_err() {
                    return;
                }
            }
            line.clear();
            bulk = false;
        }
    }
}

/// Opens one connection to `addr`:[`PORT`] from `host`'s namespace.
pub fn connect(host: &Host, addr: Ipv4Addr, timeout: Duration) -> std::io::Result<TcpStream> {
    in_netns(&host.ns, move || {
        TcpStream::connect_timeout(&SocketAddrV4::new(addr, PORT).into(), timeout)
    })
}

/// Opens a connection, sends one line and returns the name of the node that answered.
pub fn who_answers(host: &Host, addr: Ipv4Addr) -> Result<String> {
    let s = connect(host, addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    (&s).write_all(b"hello\n")?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line)?;
    line.split_whitespace()
        .next()
        .map(str::to_owned)
        .context("an empty answer")
}

/// What one connection saw.
#[derive(Clone, Debug, Default)]
pub struct ConnReport {
    pub sent: u64,
    pub answered: u64,
    /// The first error (reset, timeout, wrong answer), if any.
    pub error: Option<String>,
    /// Every node that answered, in order of first answer.
    pub nodes: Vec<String>,
    /// The longest time between two answers (or from the start to the first).
    pub longest_stall: Duration,
}

impl ConnReport {
    pub fn reset(&self) -> bool {
        self.error.is_some()
    }
}

/// Connections that each send a numbered line every `interval` and wait for its answer.
pub struct Chatter {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<ConnReport>>,
    /// Answers received by every connection together.
    pub answered: Arc<AtomicU64>,
}

impl Chatter {
    /// Opens `n` connections from `host` to `addr` and starts talking on each.
    pub fn start(host: &Host, addr: Ipv4Addr, n: usize, interval: Duration) -> Result<Chatter> {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for _ in 0..n {
            let s = connect(host, addr, Duration::from_secs(2)).context("connecting")?;
            let (stop, answered) = (stop.clone(), answered.clone());
            threads.push(std::thread::spawn(move || {
                talk(s, interval, &stop, &answered)
            }));
        }
        Ok(Chatter {
            stop,
            threads,
            answered,
        })
    }

    /// Stops talking, closes every connection and reports each.
    pub fn finish(self) -> Vec<ConnReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

fn talk(s: TcpStream, interval: Duration, stop: &AtomicBool, answered: &AtomicU64) -> ConnReport {
    let mut rep = ConnReport::default();
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_nodelay(true);
    let mut reader = BufReader::new(match s.try_clone() {
        Ok(c) => c,
        Err(e) => {
            rep.error = Some(e.to_string());
            return rep;
        }
    });
    let mut out = &s;
    let mut last = Instant::now();
    let mut line = String::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        if let Err(e) = out.write_all(format!("{seq}\n").as_bytes()) {
            rep.error = Some(format!("send {seq}: {e}"));
            break;
        }
        rep.sent += 1;
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => {
                rep.error = Some(format!("closed by the peer after {}", rep.answered));
                break;
            }
            Err(e) => {
                rep.error = Some(format!("answer {seq}: {e}"));
                break;
            }
            Ok(_) => {}
        }
        let mut words = line.split_whitespace();
        let (node, n) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if n != seq.to_string() {
            rep.error = Some(format!("answer {line:?} to {seq}"));
            break;
        }
        if !rep.nodes.iter().any(|x| x == node) {
            rep.nodes.push(node.to_owned());
        }
        rep.answered += 1;
        answered.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        rep.longest_stall = rep.longest_stall.max(now - last);
        last = now;
        std::thread::sleep(interval);
    }
    let _ = s.shutdown(Shutdown::Both);
    rep
}

/// One connection that sends as fast as it can; counts the bytes it got out per window.
pub struct Bulk {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(Vec<u64>, Option<String>)>>,
}

impl Bulk {
    /// Starts a bulk stream from `host` to `addr`, sampling the bytes sent every `window`.
    pub fn start(host: &Host, addr: Ipv4Addr, window: Duration) -> Result<Bulk> {
        let s = connect(host, addr, Duration::from_secs(2)).context("connecting")?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut out = &s;
            let chunk = vec![b'x'; 64 * 1024];
            let mut samples = Vec::new();
            let mut bytes = 0u64;
            let mut start = Instant::now();
            let mut error = None;
            let _ = s.set_write_timeout(Some(Duration::from_millis(20)));
            while !st.load(Ordering::Relaxed) {
                match out.write(&chunk) {
                    Ok(n) => bytes += n as u64,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
                if start.elapsed() >= window {
                    samples.push(bytes);
                    bytes = 0;
                    start += window;
                }
            }
            // Any byte the service sent back (none) is drained so that close is clean.
            let _ = s.set_nonblocking(true);
            let _ = (&s).read(&mut [0u8; 1024]);
            let _ = s.shutdown(Shutdown::Both);
            (samples, error)
        });
        Ok(Bulk {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops; returns the bytes sent in each window and the error that ended it, if any.
    pub fn finish(mut self) -> (Vec<u64>, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}
