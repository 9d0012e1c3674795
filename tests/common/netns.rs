//! Real shaped links for tests: each [`Link`] is a network namespace joined
//! to the host by a veth pair, with a `tc` token bucket (`tbf`) on the host
//! end, so traffic from the host to the namespace (a server's answers to a
//! viewer) goes no faster than the link's rate; the other direction (the
//! viewer's requests and acknowledgements) is not shaped. `netem` is often
//! missing from kernels; `tbf` is everywhere, and dips are made by changing
//! its rate on a [`Schedule`].
//!
//! Making links needs root (or CAP_NET_ADMIN) and the `ip` and `tc` tools.
//! [`links_or_skip`] makes the links a test needs or says why it cannot:
//! under CI (env `CI` set) it panics with the reason, elsewhere it prints it
//! and the test returns, so a machine without namespaces never passes such a
//! test silently.
//!
//! Names carry this process's id and a counter (namespace `bsh-PID-N`, host
//! end `bhPIDHEX-NHEX`, under the 15 bytes an interface name may have), so
//! parallel tests and parallel runs do not clash; each link has its own
//! /30 in 10.200.0.0/16, one no interface here uses yet. Dropping a link
//! deletes the host end (which deletes its peer at once; a namespace's own
//! teardown is asynchronous) and the namespace, during a panic too.
//! [`present`] tells which of a set of names are still there;
//! [`sweep_leftovers`] removes links left by processes that no longer run.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NS_PREFIX: &str = "bsh-";

static COUNTER: AtomicU32 = AtomicU32::new(0);
/// Held while a link picks its subnet, so this process's links never pick
/// the same one.
static ADDRESSES: Mutex<()> = Mutex::new(());

/// One shaped link: a namespace whose only way out is a veth pair whose host
/// end sends at most `rate` bit/s.
#[derive(Debug)]
pub struct Link {
    /// The namespace (`ip netns exec NAME …`).
    pub ns: String,
    /// The veth end on the host, where the `tbf` sits.
    pub host_if: String,
    /// The host's address on this link: what a viewer inside connects to.
    pub host_ip: Ipv4Addr,
    /// The namespace's address.
    pub ns_ip: Ipv4Addr,
    rate_bps: AtomicU64,
}

/// Runs `program args…`, its failure as a message naming the command.
fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let o = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e} (install iproute2)"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// The token bucket for `bps`: a burst of 2.5 ms at the rate, at least
/// 4 KiB (a bucket under a few packets cannot reach the rate; a larger one
/// lets a short transfer, one asset, through faster than the rate). The
/// queue holds 256 KiB (or 100 ms at the rate, if more), like a home
/// router's: a shallow one (tens of ms) drops the tail of nearly every
/// asset that follows an idle gap, as TCP restarts its window, and the
/// recovery halves what the link delivers, which is not the rate the test
/// means to set.
fn tbf_args(bps: u64) -> Vec<String> {
    let burst = (bps / 8 / 400).max(4 * 1024);
    let limit = (bps / 8 / 10).max(256 * 1024);
    [
        "root".to_string(),
        "tbf".into(),
        "rate".into(),
        format!("{bps}bit"),
        "burst".into(),
        format!("{burst}b"),
        "limit".into(),
        format!("{limit}b"),
    ]
    .into()
}

/// A /30 in 10.200.0.0/16 no interface here has an address in: (host,
/// namespace).
fn free_subnet(salt: u32) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let used = sh("ip", &["-4", "-o", "addr", "show"])?;
    for attempt in 0..16384u32 {
        let k = (salt.wrapping_mul(2654435761).wrapping_add(attempt)) % 16384;
        let base = [10, 200, (k >> 6) as u8, ((k & 63) << 2) as u8];
        let net = format!("{}.{}.{}.", base[0], base[1], base[2]);
        let clash = (0..4).any(|i| used.contains(&format!("{net}{} ", base[3] + i)))
            || (0..4).any(|i| used.contains(&format!("{net}{}/", base[3] + i)));
        if !clash {
            let host = Ipv4Addr::new(base[0], base[1], base[2], base[3] + 1);
            let ns = Ipv4Addr::new(base[0], base[1], base[2], base[3] + 2);
            return Ok((host, ns));
        }
    }
    Err("no free /30 left in 10.200.0.0/16".into())
}

impl Link {
    /// Makes a namespace joined to the host by a veth pair shaped to
    /// `rate_bps` from the host into the namespace.
    pub fn new(rate_bps: u64) -> Result<Link, String> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let ns = format!("{NS_PREFIX}{pid}-{n}");
        let host_if = format!("bh{pid:x}-{n:x}");
        let guard = ADDRESSES.lock().unwrap_or_else(|e| e.into_inner());
        let (host_ip, ns_ip) = free_subnet(pid.wrapping_mul(64).wrapping_add(n))?;
        sh("ip", &["netns", "add", &ns])?;
        // From here on Drop cleans up whatever was made.
        let link = Link {
            ns,
            host_if,
            host_ip,
            ns_ip,
            rate_bps: AtomicU64::new(rate_bps),
        };
        link.wire()?;
        drop(guard);
        let tbf = tbf_args(rate_bps);
        let mut args = vec!["qdisc", "add", "dev", &link.host_if];
        args.extend(tbf.iter().map(String::as_str));
        sh("tc", &args)?;
        Ok(link)
    }

    /// The veth pair, its addresses, both ends up.
    fn wire(&self) -> Result<(), String> {
        let (ns, host_if) = (self.ns.as_str(), self.host_if.as_str());
        sh(
            "ip",
            &[
                "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
        )?;
        sh(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", self.host_ip),
                "dev",
                host_if,
            ],
        )?;
        sh("ip", &["link", "set", host_if, "up"])?;
        let inside = format!("{}/30", self.ns_ip);
        sh("ip", &["-n", ns, "addr", "add", &inside, "dev", "eth0"])?;
        sh("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
        sh("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Changes the link's rate now (`tc qdisc change`): packets already
    /// queued leave at the new rate.
    pub fn set_rate(&self, bps: u64) -> Result<(), String> {
        let tbf = tbf_args(bps);
        let mut args = vec!["qdisc", "change", "dev", &self.host_if];
        args.extend(tbf.iter().map(String::as_str));
        sh("tc", &args)?;
        self.rate_bps.store(bps, Ordering::Relaxed);
        Ok(())
    }

    /// The namespace's and the host link's names, to check after a drop
    /// that they are gone ([`present`]).
    pub fn names(&self) -> [String; 2] {
        [self.ns.clone(), self.host_if.clone()]
    }

    /// The rate the link is shaped to now, bit/s.
    pub fn rate(&self) -> u64 {
        self.rate_bps.load(Ordering::Relaxed)
    }

    /// `program` to run inside the namespace (`ip netns exec NS program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).arg(program);
        c
    }

    /// Runs `f` on a thread that has joined the namespace: sockets it opens
    /// are the namespace's (a network namespace is per thread).
    pub fn inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, String> {
        let path = format!("/var/run/netns/{}", self.ns);
        let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on a namespace file we hold open; it changes
                // only this thread's network namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
                }
                Ok(f())
            })
            .join()
            .map_err(|_| "the thread inside the namespace panicked".to_string())?
        })
    }

    /// The throughput from the host into the namespace, bit/s: `bytes` sent
    /// by a host listener on this link, read inside, over the time from
    /// the connection to the last byte read.
    pub fn measure(&self, bytes: usize) -> Result<f64, String> {
        let listener = TcpListener::bind((self.host_ip, 0))
            .map_err(|e| format!("bind {}: {e}", self.host_ip))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let sender = std::thread::spawn(move || -> std::io::Result<()> {
            let (mut s, _) = listener.accept()?;
            let chunk = vec![0x5au8; 64 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                s.write_all(&chunk[..n])?;
                left -= n;
            }
            Ok(())
        });
        let read = self.inside(move || read_all(addr))?;
        let _ = sender.join();
        let (got, took) = read.map_err(|e| format!("reading from {addr}: {e}"))?;
        if got != bytes {
            return Err(format!("read {got} of {bytes} bytes"));
        }
        Ok(got as f64 * 8.0 / took.as_secs_f64())
    }
}

/// Reads a connection to `addr` to its end: the bytes and the time from
/// connecting to the last byte.
fn read_all(addr: SocketAddr) -> std::io::Result<(usize, Duration)> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    let (mut got, mut buf) = (0usize, vec![0u8; 64 * 1024]);
    loop {
        match s.read(&mut buf)? {
            0 => return Ok((got, start.elapsed())),
            n => got += n,
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = sh("ip", &["link", "del", &self.host_if]);
        let _ = sh("ip", &["netns", "del", &self.ns]);
    }
}

/// True when the environment says this is CI (`CI` set, not "false"/"0").
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Links at these rates (bit/s); or, where this machine cannot make them,
/// None after printing why (to the real standard error, which the test
/// harness does not capture), and under CI a panic saying why.
pub fn links_or_skip(test: &str, rates: &[u64]) -> Option<Vec<Link>> {
    sweep_leftovers();
    let made: Result<Vec<Link>, String> = rates.iter().map(|&r| Link::new(r)).collect();
    match made {
        Ok(links) => Some(links),
        Err(why) => {
            let why = format!(
                "{test}: cannot make shaped links (network namespaces, veth, tc tbf; needs root \
                 and iproute2): {why}"
            );
            assert!(!in_ci(), "{why}");
            // Past the test harness's capture, so a run shows it.
            let _ = writeln!(std::io::stderr(), "SKIPPED {why}");
            None
        }
    }
}

/// Of these namespaces and host links (from [`Link::names`]), those still
/// present.
pub fn present(names: &[String]) -> Vec<String> {
    let mut here = namespaces();
    let links = sh("ip", &["-o", "link", "show"]).unwrap_or_default();
    for line in links.lines() {
        if let Some(name) = line.split(": ").nth(1) {
            here.push(name.split('@').next().unwrap_or(name).to_string());
        }
    }
    names.iter().filter(|n| here.contains(n)).cloned().collect()
}

fn namespaces() -> Vec<String> {
    sh("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Deletes the links of test processes that are gone (killed before their
/// links' Drop ran).
pub fn sweep_leftovers() {
    for ns in namespaces() {
        let Some(rest) = ns.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let mut parts = rest.split('-');
        let (Some(Ok(pid)), Some(Ok(n))) = (
            parts.next().map(str::parse::<u32>),
            parts.next().map(str::parse::<u32>),
        ) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = sh("ip", &["link", "del", &format!("bh{pid:x}-{n:x}")]);
        let _ = sh("ip", &["netns", "del", &ns]);
    }
}

/// A rate schedule played on links by a thread: at each offset from the
/// start, every link gets that rate. Stops (and is joined) when dropped.
pub struct Schedule {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Schedule {
    /// Plays `steps` (offset from now, rate bit/s), in order, on `links`.
    pub fn start(links: Vec<Arc<Link>>, steps: Vec<(Duration, u64)>) -> Schedule {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            let mut errors = Vec::new();
            for (at, bps) in steps {
                while start.elapsed() < at {
                    if flag.load(Ordering::Relaxed) {
                        return errors;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                for link in &links {
                    if let Err(e) = link.set_rate(bps) {
                        errors.push(e);
                    }
                }
            }
            errors
        });
        Schedule {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the schedule; the rate changes that failed.
    pub fn finish(mut self) -> Vec<String> {
        self.halt()
    }

    fn halt(&mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Schedule {
    fn drop(&mut self) {
        self.halt();
    }
}
