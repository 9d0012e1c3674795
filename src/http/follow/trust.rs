//! What follow accepts from a server, which it does not trust: the limit
//! on every body it reads, and the checks on every value it acts on or
//! prints. A value out of range is a bad answer ([`crate::Error::BadAnswer`],
//! exit 2), named with the field it came in, never a panic, a wrapped
//! sequence or an absurd figure on the terminal.
//!
//! The limits are documented figures rather than sizes the server states
//! (on a static host, an index record is 64 bytes and an asset's maps
//! the size its record's entry count gives): a JSON answer is a few kilobytes, so
//! [`JSON_LIMIT`] leaves room to spare; an asset is seconds of media, so
//! [`ASSET_LIMIT`] is far above any real one yet bounds memory.

use crate::http::api::{Located, Params};
use crate::stream::naming::Naming;

/// The largest `/backset.json` or `/locate` answer read, bytes.
pub const JSON_LIMIT: u64 = 1 << 20;
/// The largest asset (or part of one) read, bytes.
pub const ASSET_LIMIT: u64 = 512 << 20;
/// The largest asset header (init and maps) `locate` may announce, bytes.
pub const HEADER_LIMIT: u64 = 64 << 20;
/// The longest asset duration accepted, s.
pub const LONGEST_ASSET_S: f64 = 3600.0;
/// The longest backset advised, s (115 days: any retained window).
pub const LONGEST_BACKSET_S: f64 = 1e7;
/// The longest prefix or viewer id accepted, bytes.
pub const LONGEST_NAME: usize = 255;

/// A duration in seconds: finite, not negative, at most `max`.
fn seconds(field: &str, v: f64, max: f64) -> Result<(), String> {
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{field} {v:?} is not a duration"));
    }
    if v > max {
        return Err(format!("{field} {v:?} s is over the limit of {max:?} s"));
    }
    Ok(())
}

/// A share: finite, between 0 and 1.
fn share(field: &str, v: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{field} {v:?} is not a share between 0 and 1"))
    }
}

/// `/backset.json`: the advice, the stream's shape, the viewer's id.
pub fn params(p: &Params) -> Result<(), String> {
    let a = &p.advice;
    seconds("recommended_s", a.recommended_s, LONGEST_BACKSET_S)?;
    seconds("maximum_s", a.maximum_s, LONGEST_BACKSET_S)?;
    if a.recommended_s > a.maximum_s {
        return Err(format!(
            "recommended_s {:?} is over maximum_s {:?}",
            a.recommended_s, a.maximum_s
        ));
    }
    let c = &a.coefficients;
    share("less", c.less)?;
    share("more", c.more)?;
    share("less + more", c.less + c.more)?;
    seconds("down_s", c.down_s, LONGEST_BACKSET_S)?;
    seconds("up_s", c.up_s, LONGEST_BACKSET_S)?;
    seconds("live_edge_s", p.live_edge_s, f64::MAX)?;
    seconds("asset_duration_s", p.asset_duration_s, LONGEST_ASSET_S)?;
    if p.asset_duration_s == 0.0 {
        return Err("asset_duration_s is 0".into());
    }
    if p.first_sequence > p.live_edge_sequence {
        return Err(format!(
            "first_sequence {} is past live_edge_sequence {}",
            p.first_sequence, p.live_edge_sequence
        ));
    }
    // The retained window, in assets of the advertised duration; advise
    // keeps its maximum inside it (rounded to the millisecond).
    let assets = (p.live_edge_sequence - p.first_sequence) as f64 + 1.0;
    let window_s = assets * p.asset_duration_s;
    if a.maximum_s > window_s + 0.01 {
        return Err(format!(
            "maximum_s {:?} is past the retained window of {window_s:.3} s",
            a.maximum_s
        ));
    }
    if let Some(bps) = p.viewer.throughput_bps {
        if !bps.is_finite() || bps < 0.0 {
            return Err(format!("viewer.throughput_bps {bps:?} is not a throughput"));
        }
    }
    prefix(&p.prefix)?;
    token("client", &p.client)
}

/// A prefix names files and URLs: nothing that leaves the server's root or
/// changes the URL's meaning.
fn prefix(prefix: &str) -> Result<(), String> {
    let bad = prefix.is_empty()
        || prefix.len() > LONGEST_NAME
        || prefix.contains("..")
        || prefix
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '?' | '#' | '%') || c.is_control());
    if bad {
        Err(format!("prefix {prefix:?} is not a file name prefix"))
    } else {
        Ok(())
    }
}

/// The viewer's id goes back in a header: visible ASCII, bounded.
fn token(field: &str, id: &str) -> Result<(), String> {
    if id.len() <= LONGEST_NAME && id.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!(
            "{field} {id:?} is not a token of at most {LONGEST_NAME} visible characters"
        ))
    }
}

/// `/locate`: the entry point must lie in the asset it names, inside the
/// window it names, after the header it announces.
pub fn located(l: &Located, naming: &Naming) -> Result<(), String> {
    let a = &l.answer;
    if l.asset != naming.name(a.sequence) {
        return Err(format!(
            "asset {:?} is not the name of sequence {}",
            l.asset, a.sequence
        ));
    }
    let w = &a.window;
    if !(w.oldest_sequence..=w.newest_sequence).contains(&a.sequence) {
        return Err(format!(
            "sequence {} is outside its window {}..={}",
            a.sequence, w.oldest_sequence, w.newest_sequence
        ));
    }
    seconds("backset", a.backset, f64::MAX)?;
    seconds("timestamp", a.timestamp, f64::MAX)?;
    let header = u64::from(a.header_len);
    if header == 0 || header > HEADER_LIMIT {
        return Err(format!(
            "header_len {header} is not between 1 and {HEADER_LIMIT}"
        ));
    }
    if a.offset < header || a.offset >= ASSET_LIMIT {
        return Err(format!(
            "offset {} is not between the header's end ({header}) and {ASSET_LIMIT}",
            a.offset
        ));
    }
    Ok(())
}
