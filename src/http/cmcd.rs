//! Common Media Client Data (CTA-5004): what a player says about itself on
//! each request, as the `CMCD` query argument or the `CMCD-Request`,
//! `CMCD-Object`, `CMCD-Status` and `CMCD-Session` headers. The server keeps
//! the keys that describe the viewer (`sid`, `mtp`, `bl`, `bs`, `su`); `follow`
//! sends the same keys about itself.
//!
//! The grammar: comma-separated `key=value` pairs, where a value is an integer,
//! a token or a double-quoted string (`\"` and `\\` escaped), and a key alone
//! is a boolean that is true. Unknown keys and malformed pairs are skipped:
//! a player's extra data must never cost it its request.

/// A session id longer than this is not kept (the spec allows 64 chars).
pub const MAX_SID: usize = 64;

/// The keys of one request that describe the viewer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cmcd {
    /// Session id (`sid`): the viewer's key.
    pub sid: Option<String>,
    /// Measured throughput (`mtp`), kbit/s, the player's own estimate.
    pub mtp_kbps: Option<u64>,
    /// Buffer length (`bl`), ms.
    pub bl_ms: Option<u64>,
    /// Buffer starved since the previous request (`bs`).
    pub bs: bool,
    /// Starting up or seeking (`su`).
    pub su: bool,
}

impl Cmcd {
    /// Reads every CMCD payload given (the query argument and the four
    /// headers, in any order); a later value of a key replaces an earlier.
    pub fn parse<'a>(payloads: impl IntoIterator<Item = &'a str>) -> Cmcd {
        let mut cmcd = Cmcd::default();
        for payload in payloads {
            for (key, value) in pairs(payload) {
                cmcd.take(key, value);
            }
        }
        cmcd
    }

    fn take(&mut self, key: &str, value: Option<Value>) {
        match (key, value) {
            ("sid", Some(Value::Text(s))) if !s.is_empty() && s.len() <= MAX_SID => {
                self.sid = Some(s)
            }
            ("mtp", Some(Value::Int(n))) => self.mtp_kbps = Some(n),
            ("bl", Some(Value::Int(n))) => self.bl_ms = Some(n),
            ("bs", None) => self.bs = true,
            ("su", None) => self.su = true,
            _ => {}
        }
    }

    /// Whether the request carried anything the server keeps.
    pub fn is_empty(&self) -> bool {
        *self == Cmcd::default()
    }

    /// The player's measured throughput, bit/s.
    pub fn mtp_bps(&self) -> Option<f64> {
        self.mtp_kbps.filter(|&k| k > 0).map(|k| k as f64 * 1000.0)
    }

    /// This data as CMCD headers (name, value), keys sorted as the spec
    /// asks; a header with no key is left out.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut request = Vec::new();
        if let Some(bl) = self.bl_ms {
            request.push(format!("bl={bl}"));
        }
        if let Some(mtp) = self.mtp_kbps {
            request.push(format!("mtp={mtp}"));
        }
        if self.su {
            request.push("su".to_string());
        }
        let status = if self.bs {
            vec!["bs".to_string()]
        } else {
            vec![]
        };
        let session: Vec<String> = self
            .sid
            .iter()
            .map(|s| format!("sid={}", quote(s)))
            .collect();
        [
            ("CMCD-Request", request),
            ("CMCD-Status", status),
            ("CMCD-Session", session),
        ]
        .into_iter()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(name, keys)| (name, keys.join(",")))
        .collect()
    }
}

#[derive(Debug, PartialEq)]
enum Value {
    Int(u64),
    Text(String),
    Token,
}

/// The pairs of one payload; a quoted string may hold commas.
fn pairs(payload: &str) -> Vec<(&str, Option<Value>)> {
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (key, after_key) = match rest.find(['=', ',']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let key = key.trim();
        if let Some(value_text) = after_key.strip_prefix('=') {
            let (value, after) = value(value_text);
            if !key.is_empty() {
                out.push((key, value));
            }
            rest = after;
        } else {
            if !key.is_empty() {
                out.push((key, None));
            }
            rest = after_key;
        }
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    out
}

/// One value and what follows it (from its separating comma on). An empty
/// or unreadable value is `Some(Token)`: present, but nothing kept reads it.
fn value(text: &str) -> (Option<Value>, &str) {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut s = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) => s.push(e),
                    None => break,
                },
                '"' => return (Some(Value::Text(s)), skip_to_comma(&quoted[i + 1..])),
                c => s.push(c),
            }
        }
        // An unterminated string swallows the payload; nothing is kept.
        return (Some(Value::Token), "");
    }
    let end = text.find(',').unwrap_or(text.len());
    let raw = text[..end].trim();
    let value = match raw.parse::<u64>() {
        Ok(n) => Value::Int(n),
        Err(_) => Value::Token,
    };
    (Some(value), &text[end..])
}

fn skip_to_comma(text: &str) -> &str {
    text.find(',').map_or("", |i| &text[i..])
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_payload_from_hls_js_is_read() {
        let c = Cmcd::parse([
            "bl=21300,br=3200,bs,cid=\"faec5fc2-ac30-11eabb37-0242ac130002\",d=4004,dl=18500,mtp=48100,nor=\"..%2F300kbps%2Ftrack.m4v\",ot=v,sf=h,sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",st=v,su,tb=6000",
        ]);
        assert_eq!(
            c.sid.as_deref(),
            Some("6e2fb550-c457-11e9-bb97-0800200c9a66")
        );
        assert_eq!(c.mtp_kbps, Some(48100));
        assert_eq!(c.mtp_bps(), Some(48.1e6));
        assert_eq!(c.bl_ms, Some(21300));
        assert!(c.bs && c.su);
    }

    #[test]
    fn headers_are_merged_and_a_comma_inside_a_string_is_kept() {
        let c = Cmcd::parse([
            "mtp=2500,bl=800",
            "br=3200,ot=v",
            "rtp=15000",
            "sid=\"a,b \\\"c\\\"\",sf=h",
        ]);
        assert_eq!(c.sid.as_deref(), Some("a,b \"c\""));
        assert_eq!(
            (c.mtp_kbps, c.bl_ms, c.bs, c.su),
            (Some(2500), Some(800), false, false)
        );
    }

    #[test]
    fn malformed_payloads_keep_what_they_can() {
        assert_eq!(
            Cmcd::parse(["mtp=abc,bl=-5,,=,sid=\"open"]),
            Cmcd::default()
        );
        assert_eq!(Cmcd::parse(["sid=unquoted"]).sid, None);
        let long = format!("sid=\"{}\"", "x".repeat(MAX_SID + 1));
        assert_eq!(Cmcd::parse([long.as_str()]).sid, None);
        assert_eq!(Cmcd::parse(["mtp=0"]).mtp_bps(), None);
    }

    #[test]
    fn what_follow_sends_reads_back_the_same() {
        let c = Cmcd {
            sid: Some("c-1\"x".into()),
            mtp_kbps: Some(5400),
            bl_ms: Some(12000),
            bs: true,
            su: false,
        };
        let headers = c.headers();
        assert_eq!(
            headers[0],
            ("CMCD-Request", "bl=12000,mtp=5400".to_string())
        );
        assert_eq!(Cmcd::parse(headers.iter().map(|(_, v)| v.as_str())), c);
    }
}
