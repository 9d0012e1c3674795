//! Durations and sizes as users write them: `30s`, `1m30s`, `2500ms`, `1.5s`,
//! `1h02m`; `512KiB`, `4MB`, `1000000`.

use crate::{Error, Result};

/// Parses a duration into microseconds.
pub fn parse_duration_us(text: &str) -> Result<u64> {
    let bad = || {
        Error::Usage(format!(
            "bad duration {text:?}: write it like 30s, 1m30s, 2500ms, 1.5s"
        ))
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3_600_000_000.0,
            "m" | "min" => 60_000_000.0,
            "s" | "" => 1_000_000.0,
            "ms" => 1_000.0,
            "us" | "µs" => 1.0,
            _ => return Err(bad()),
        };
        // A bare number is only allowed alone (seconds).
        if unit_len == 0 && total != 0.0 {
            return Err(bad());
        }
        total += value * scale;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || !(0.0..=1e18).contains(&total) {
        return Err(bad());
    }
    Ok(total.round() as u64)
}

/// Parses a byte size.
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = || {
        Error::Usage(format!(
            "bad size {text:?}: write it like 512KiB, 4MB, 1000000"
        ))
    };
    let s = text.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let value: f64 = s[..num_len].parse().map_err(|_| bad())?;
    let scale: f64 = match s[num_len..].trim() {
        "" | "B" => 1.0,
        "k" | "kB" | "KB" => 1e3,
        "KiB" | "K" => 1024.0,
        "MB" => 1e6,
        "MiB" | "M" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" | "G" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1e12,
        "TiB" | "T" => 1024f64.powi(4),
        _ => return Err(bad()),
    };
    let total = value * scale;
    if !total.is_finite() || total > 1.8e19 {
        return Err(bad());
    }
    Ok(total.round() as u64)
}

/// Parses a bit rate into bits per second: `3Mbps`, `500kbps`, `2.5M`,
/// `3000000`.
pub fn parse_rate(text: &str) -> Result<f64> {
    let bad = || {
        Error::Usage(format!(
            "bad rate {text:?}: write it like 3Mbps, 500kbps, 3000000"
        ))
    };
    let s = text.trim();
    let s = s
        .strip_suffix("bps")
        .or_else(|| s.strip_suffix("bit/s"))
        .unwrap_or(s);
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let value: f64 = s[..num_len].parse().map_err(|_| bad())?;
    let scale = match &s[num_len..] {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        _ => return Err(bad()),
    };
    let rate = value * scale;
    if rate.is_finite() {
        Ok(rate)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration_us("30s").unwrap(), 30_000_000);
        assert_eq!(parse_duration_us("1m30s").unwrap(), 90_000_000);
        assert_eq!(parse_duration_us("2500ms").unwrap(), 2_500_000);
        assert_eq!(parse_duration_us("1.5s").unwrap(), 1_500_000);
        assert_eq!(parse_duration_us("1h02m").unwrap(), 3_720_000_000);
        assert_eq!(parse_duration_us("2").unwrap(), 2_000_000);
        assert!(parse_duration_us("").is_err());
        assert!(parse_duration_us("s").is_err());
        assert!(parse_duration_us("3 parsecs").is_err());
        assert!(parse_duration_us("-1s").is_err());
    }

    #[test]
    fn rates_read_like_people_write_them() {
        assert_eq!(parse_rate("3Mbps").unwrap(), 3e6);
        assert_eq!(parse_rate("500kbps").unwrap(), 5e5);
        assert_eq!(parse_rate("2.5M").unwrap(), 2.5e6);
        assert_eq!(parse_rate("3000000").unwrap(), 3e6);
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(parse_size("512KiB").unwrap(), 524_288);
        assert_eq!(parse_size("4MB").unwrap(), 4_000_000);
        assert_eq!(parse_size("1000000").unwrap(), 1_000_000);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert!(parse_size("lots").is_err());
    }
}
