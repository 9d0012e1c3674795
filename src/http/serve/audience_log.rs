//! What the server knows of its audience, from the requests it serves: who
//! is downloading now, from which region, and how fast each client's
//! downloads went, now and before. The policy's `advise` reads it.

use std::collections::{HashMap, VecDeque};

/// Throughput samples kept per client.
const HISTORY: usize = 32;
/// Smaller transfers measure latency more than throughput.
pub const MIN_MEASURED_BYTES: u64 = 64 * 1024;

#[derive(Debug, Default)]
struct Client {
    region: String,
    last_seen_us: u64,
    throughput_bps: VecDeque<f64>,
}

#[derive(Debug)]
pub struct AudienceLog {
    clients: HashMap<String, Client>,
    /// A client is downloading the transmission if seen within this, µs.
    active_us: u64,
}

/// The facts `advise` needs about one client and the audience around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub clients: u64,
    pub same_region_share: f64,
    pub current_bps: Option<f64>,
    pub history_bps: Vec<f64>,
}

impl AudienceLog {
    pub fn new(active_us: u64) -> Self {
        AudienceLog {
            clients: HashMap::new(),
            active_us: active_us.max(1),
        }
    }

    pub fn seen(&mut self, client: &str, region: &str, now_us: u64) {
        let c = self.clients.entry(client.to_string()).or_default();
        c.region = region.to_string();
        c.last_seen_us = c.last_seen_us.max(now_us);
        // Forget clients long gone, so the log stays the audience's size.
        if self.clients.len() > 1024 {
            let horizon = now_us.saturating_sub(self.active_us * 30);
            self.clients.retain(|_, c| c.last_seen_us >= horizon);
        }
    }

    /// A transfer of `bytes` to `client` took `secs`.
    pub fn measured(&mut self, client: &str, bytes: u64, secs: f64) {
        if bytes < MIN_MEASURED_BYTES || secs <= 0.0 {
            return;
        }
        if let Some(c) = self.clients.get_mut(client) {
            if c.throughput_bps.len() == HISTORY {
                c.throughput_bps.pop_front();
            }
            c.throughput_bps.push_back(bytes as f64 * 8.0 / secs);
        }
    }

    pub fn facts(&self, client: &str, now_us: u64) -> Facts {
        let horizon = now_us.saturating_sub(self.active_us);
        let active: Vec<&Client> = self
            .clients
            .values()
            .filter(|c| c.last_seen_us >= horizon)
            .collect();
        let me = self.clients.get(client);
        let region = me.map(|c| c.region.as_str()).unwrap_or("");
        let same = active.iter().filter(|c| c.region == region).count();
        let (current_bps, history_bps) = match me {
            Some(c) => (
                c.throughput_bps.back().copied(),
                c.throughput_bps.iter().rev().skip(1).copied().collect(),
            ),
            None => (None, Vec::new()),
        };
        Facts {
            clients: active.len() as u64,
            same_region_share: if active.is_empty() {
                0.0
            } else {
                same as f64 / active.len() as f64
            },
            current_bps,
            history_bps,
        }
    }
}

/// The region of a client: what a CDN says (a header), else its network:
/// the /24 of an IPv4 address, the /48 of an IPv6 one.
pub fn region_of(header: Option<&str>, ip: std::net::IpAddr) -> String {
    if let Some(h) = header.filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_count_active_clients_and_their_regions() {
        let mut log = AudienceLog::new(10_000_000);
        log.seen("a", "eu", 1_000_000);
        log.seen("b", "eu", 2_000_000);
        log.seen("c", "us", 3_000_000);
        log.seen("old", "eu", 0);
        log.measured("a", 1_000_000, 1.0);
        log.measured("a", 2_000_000, 1.0);
        log.measured("a", 10, 1.0);
        let f = log.facts("a", 10_500_000);
        assert_eq!(f.clients, 3, "the one not seen for 10 s is not downloading");
        assert!((f.same_region_share - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(f.current_bps, Some(16e6));
        assert_eq!(f.history_bps, vec![8e6]);
        assert_eq!(log.facts("nobody", 10_500_000).current_bps, None);
    }

    #[test]
    fn regions_come_from_a_header_or_the_network() {
        let ip: std::net::IpAddr = "192.0.2.77".parse().unwrap();
        assert_eq!(region_of(Some("fra"), ip), "fra");
        assert_eq!(region_of(None, ip), "192.0.2.0/24");
        assert_eq!(
            region_of(None, "2001:db8:1:2::9".parse().unwrap()),
            "2001:db8:1::/48"
        );
    }
}
