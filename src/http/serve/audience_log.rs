//! What the server knows of its audience, from the requests it serves: who
//! is downloading now, from which region, how fast each viewer's downloads
//! were delivered, and what each player says of itself (CMCD). The policy's
//! `advise` reads it.
//!
//! Bounded and O(1) per request whatever the clients send: ids and regions
//! are cut to a length, the table holds at most `capacity` viewers (least
//! recently seen out), and the audience counts are counters per region,
//! kept by a second recency list of the viewers seen within the active
//! window, expired from its old end as time passes.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;

use lru::LruCache;

use crate::http::cmcd::Cmcd;

/// Throughput samples kept per viewer and per source.
pub(super) const HISTORY: usize = 32;
/// Smaller transfers measure latency more than throughput.
pub const MIN_MEASURED_BYTES: u64 = 64 * 1024;
/// Longest id and region kept; longer ones are cut (on a char boundary).
pub const MAX_ID: usize = 128;
pub const MAX_REGION: usize = 64;

/// What one viewer's player said of itself on its latest request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Player {
    pub buffer_ms: Option<u64>,
    pub starved: bool,
    pub starting: bool,
}

#[derive(Debug, Default)]
struct Viewer {
    region: Box<str>,
    /// Delivery rates the server measured, bit/s, oldest first.
    delivered_bps: VecDeque<f64>,
    /// Throughput the player measured (CMCD `mtp`), bit/s, oldest first.
    player_bps: VecDeque<f64>,
    player: Player,
    /// Buffer starvations the player reported.
    starvations: u32,
}

#[derive(Debug)]
pub struct AudienceLog {
    viewers: LruCache<Box<str>, Viewer>,
    /// The viewers seen within `active_us`, by when they were last seen.
    active: LruCache<Box<str>, (u64, Box<str>)>,
    /// Active viewers per region.
    regions: HashMap<Box<str>, u64>,
    active_us: u64,
}

/// The facts `advise` needs about one viewer and the audience around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub clients: u64,
    pub same_region_share: f64,
    pub current_bps: Option<f64>,
    pub history_bps: Vec<f64>,
    /// Where `current_bps` and `history_bps` come from: "player" (CMCD
    /// `mtp`, preferred), "server" (delivery measured), or "none".
    pub throughput_source: &'static str,
    pub player: Player,
    pub starvations: u32,
}

impl Facts {
    /// What is known of a viewer when nothing is.
    pub fn unknown() -> Facts {
        Facts {
            clients: 0,
            same_region_share: 0.0,
            current_bps: None,
            history_bps: Vec::new(),
            throughput_source: "none",
            player: Player::default(),
            starvations: 0,
        }
    }
}

impl AudienceLog {
    pub fn new(active_us: u64, capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        AudienceLog {
            viewers: LruCache::new(cap),
            active: LruCache::new(cap),
            regions: HashMap::new(),
            active_us: active_us.max(1),
        }
    }

    /// The viewer `id` made a request at `now_us` from `region`, saying
    /// `cmcd` of itself.
    pub fn seen(&mut self, id: &str, region: &str, cmcd: &Cmcd, now_us: u64) {
        let (id, region) = (cut(id, MAX_ID), cut(region, MAX_REGION));
        self.expire(now_us);
        self.mark_active(id, region, now_us);
        // A viewer already known costs no allocation.
        if self.viewers.get(id).is_none() {
            self.viewers.push(id.into(), Viewer::default());
        }
        if let Some(v) = self.viewers.get_mut(id) {
            if *v.region != *region {
                v.region = region.into();
            }
            if let Some(bps) = cmcd.mtp_bps() {
                push(&mut v.player_bps, bps);
            }
            if !cmcd.is_empty() {
                v.player = Player {
                    // Players send `bl` with media requests only (CTA-5004);
                    // a playlist reload in between does not empty the buffer.
                    buffer_ms: cmcd.bl_ms.or(v.player.buffer_ms),
                    starved: cmcd.bs,
                    starting: cmcd.su,
                };
                v.starvations += u32::from(cmcd.bs);
            }
        }
    }

    fn mark_active(&mut self, id: &str, region: &str, now_us: u64) {
        let moved = match self.active.get_mut(id) {
            Some((seen, counted_in)) => {
                *seen = (*seen).max(now_us);
                if **counted_in == *region {
                    return;
                }
                Some(std::mem::replace(counted_in, region.into()))
            }
            None => None,
        };
        match moved {
            // The same viewer from another region: counted there now.
            Some(old_region) => self.uncount(&old_region),
            None => {
                // The table was full: the least recently seen is no longer counted.
                if let Some((_, (_, old_region))) =
                    self.active.push(id.into(), (now_us, region.into()))
                {
                    self.uncount(&old_region);
                }
            }
        }
        match self.regions.get_mut(region) {
            Some(n) => *n += 1,
            None => {
                self.regions.insert(region.into(), 1);
            }
        }
    }

    fn uncount(&mut self, region: &str) {
        if let Some(n) = self.regions.get_mut(region) {
            *n -= 1;
            if *n == 0 {
                self.regions.remove(region);
            }
        }
    }

    /// Viewers not seen within the active window stop being counted.
    fn expire(&mut self, now_us: u64) {
        let horizon = now_us.saturating_sub(self.active_us);
        while let Some((_, (seen, _))) = self.active.peek_lru() {
            if *seen >= horizon {
                break;
            }
            if let Some((_, (_, region))) = self.active.pop_lru() {
                self.uncount(&region);
            }
        }
    }

    /// A transfer of `bytes` to viewer `id` was delivered in `secs`.
    pub fn measured(&mut self, id: &str, bytes: u64, secs: f64) {
        if bytes < MIN_MEASURED_BYTES || secs.is_nan() || secs <= 0.0 {
            return;
        }
        if let Some(v) = self.viewers.peek_mut(cut(id, MAX_ID)) {
            push(&mut v.delivered_bps, bytes as f64 * 8.0 / secs);
        }
    }

    pub fn facts(&mut self, id: &str, now_us: u64) -> Facts {
        self.expire(now_us);
        let clients = self.active.len() as u64;
        let me = self.viewers.peek(cut(id, MAX_ID));
        let same = me.map_or(0, |v| self.regions.get(&v.region).copied().unwrap_or(0));
        let (source, samples) = match me {
            Some(v) if !v.player_bps.is_empty() => ("player", Some(&v.player_bps)),
            Some(v) if !v.delivered_bps.is_empty() => ("server", Some(&v.delivered_bps)),
            _ => ("none", None),
        };
        Facts {
            clients,
            same_region_share: if clients == 0 {
                0.0
            } else {
                same as f64 / clients as f64
            },
            current_bps: samples.and_then(|s| s.back().copied()),
            history_bps: samples.map_or(Vec::new(), |s| s.iter().rev().skip(1).copied().collect()),
            throughput_source: source,
            player: me.map(|v| v.player.clone()).unwrap_or_default(),
            starvations: me.map_or(0, |v| v.starvations),
        }
    }
}

fn push(samples: &mut VecDeque<f64>, value: f64) {
    if samples.len() == HISTORY {
        samples.pop_front();
    }
    samples.push_back(value);
}

/// `text` cut to at most `max` bytes, on a char boundary.
pub(super) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The region of a client: what a CDN says (a header), else its network:
/// the /24 of an IPv4 address, the /48 of an IPv6 one.
pub fn region_of(header: Option<&str>, ip: std::net::IpAddr) -> String {
    if let Some(h) = header.filter(|h| !h.is_empty()) {
        return cut(h, MAX_REGION).to_string();
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

    fn none() -> Cmcd {
        Cmcd::default()
    }

    #[test]
    fn facts_count_active_clients_and_their_regions() {
        let mut log = AudienceLog::new(10_000_000, 100);
        log.seen("old", "eu", &none(), 0);
        log.seen("a", "eu", &none(), 1_000_000);
        log.seen("b", "eu", &none(), 2_000_000);
        log.seen("c", "us", &none(), 3_000_000);
        log.measured("a", 1_000_000, 1.0);
        log.measured("a", 2_000_000, 1.0);
        log.measured("a", 10, 1.0);
        let f = log.facts("a", 10_500_000);
        assert_eq!(f.clients, 3, "the one not seen for 10 s is not downloading");
        assert!((f.same_region_share - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(f.current_bps, Some(16e6));
        assert_eq!(f.history_bps, vec![8e6]);
        assert_eq!(f.throughput_source, "server");
        assert_eq!(log.facts("nobody", 10_500_000).current_bps, None);
        assert_eq!(log.facts("a", 60_000_000).clients, 0, "all gone quiet");
    }

    #[test]
    fn a_viewer_moving_region_is_counted_once() {
        let mut log = AudienceLog::new(10_000_000, 100);
        log.seen("a", "eu", &none(), 1);
        log.seen("a", "us", &none(), 2);
        log.seen("b", "us", &none(), 3);
        let f = log.facts("b", 4);
        assert_eq!(f.clients, 2);
        assert_eq!(f.same_region_share, 1.0);
    }

    #[test]
    fn the_players_own_measurement_is_preferred() {
        let mut log = AudienceLog::new(10_000_000, 100);
        let cmcd = Cmcd::parse(["sid=\"p\",mtp=2500,bl=4000,bs"]);
        log.seen("p", "eu", &none(), 1);
        log.measured("p", 1_000_000, 0.1);
        log.seen("p", "eu", &cmcd, 2);
        let f = log.facts("p", 3);
        assert_eq!(
            (f.current_bps, f.throughput_source),
            (Some(2.5e6), "player")
        );
        assert_eq!(f.player.buffer_ms, Some(4000));
        assert!(f.player.starved);
        assert_eq!(f.starvations, 1);
    }

    #[test]
    fn a_playlist_request_without_bl_keeps_the_buffer_the_last_media_request_said() {
        let mut log = AudienceLog::new(10_000_000, 100);
        log.seen("p", "eu", &Cmcd::parse(["mtp=2500,bl=4000,ot=av"]), 1);
        log.seen("p", "eu", &Cmcd::parse(["mtp=2600,ot=m"]), 2);
        let f = log.facts("p", 3);
        assert_eq!(
            (f.current_bps, f.player.buffer_ms),
            (Some(2.6e6), Some(4000))
        );
    }

    #[test]
    fn the_table_is_capped_least_recently_seen_out_and_counts_stay_right() {
        let mut log = AudienceLog::new(10_000_000, 1000);
        for i in 0..5000u64 {
            log.seen(&format!("id-{i}"), &format!("r{}", i % 7), &none(), i);
        }
        assert_eq!(log.viewers.len(), 1000);
        let f = log.facts("id-4999", 5000);
        assert_eq!(f.clients, 1000);
        let total: u64 = log.regions.values().sum();
        assert_eq!(total, 1000);
        assert_eq!(log.facts("id-0", 5000).current_bps, None, "evicted");
    }

    #[test]
    fn long_ids_and_regions_are_cut() {
        let mut log = AudienceLog::new(10_000_000, 10);
        let long = "é".repeat(10_000);
        log.seen(&long, &long, &none(), 1);
        let held: usize = log
            .viewers
            .iter()
            .map(|(k, v)| k.len() + v.region.len())
            .sum();
        assert!(held <= MAX_ID + MAX_REGION);
        assert_eq!(log.facts(&long, 2).clients, 1);
        assert!(region_of(Some(&long), "192.0.2.1".parse().unwrap()).len() <= MAX_REGION);
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
