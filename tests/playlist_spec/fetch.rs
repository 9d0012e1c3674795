//! HTTP for the spec checks: a playlist's text, whether a URI it names can
//! be had (by its byte range, if it gives one), and relative URIs resolved.

use std::time::Duration;

pub enum Fetched {
    Ok,
    NotFound,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

pub fn text(url: &str) -> Result<String, String> {
    let mut resp = agent().get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))?;
    match status {
        200 => Ok(body),
        s => Err(format!("{url}: {s} {body}")),
    }
}

/// Gets `url`, the `(length, offset)` range of it if given, and insists on
/// the bytes asked for; a 404 is told apart from other failures.
pub fn fetch(url: &str, range: Option<(u64, u64)>) -> Result<Fetched, String> {
    let mut req = agent().get(url);
    if let Some((len, off)) = range {
        req = req.header("range", format!("bytes={off}-{}", off + len - 1));
    }
    let mut resp = req.call().map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))?;
    match (status, range) {
        (404, _) => Ok(Fetched::NotFound),
        (206, Some((len, _))) if body.len() as u64 == len => Ok(Fetched::Ok),
        (200, None) if !body.is_empty() => Ok(Fetched::Ok),
        (s, r) => Err(format!("{url} {r:?}: {s}, {} bytes", body.len())),
    }
}

/// `reference` resolved against `base` (RFC 3986, the cases playlists use:
/// absolute, host-relative, and relative to the base's directory).
pub fn resolve(base: &str, reference: &str) -> String {
    if reference.contains("://") {
        return reference.to_string();
    }
    let base = base.split(['?', '#']).next().unwrap_or(base);
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    if reference.starts_with('/') {
        return format!("{}{reference}", &base[..origin_end]);
    }
    let dir_end = base
        .rfind('/')
        .filter(|&i| i >= origin_end)
        .map_or(base.len(), |i| i + 1);
    let dir = &base[..dir_end];
    if dir.ends_with('/') {
        format!("{dir}{reference}")
    } else {
        format!("{dir}/{reference}")
    }
}
