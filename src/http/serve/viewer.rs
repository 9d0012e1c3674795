//! Who is asking, and what they say of themselves. A viewer names itself by
//! the id the server issued it (`X-Backset-Client`, `?client=` or CMCD
//! `sid`); its player may add CMCD data (`?CMCD=` or the `CMCD-*` headers).
//! An id the server can verify is the viewer's key. An id it did not issue
//! is kept apart (its own record, never an issued viewer's), and a request
//! that names nobody is known by its address. `/backset.json` issues a new
//! id to anyone without a valid one.

use std::net::SocketAddr;

use axum::http::HeaderMap;
use serde::Deserialize;

use super::audience_log::region_of;
use super::client_id::Issuer;
use crate::http::cmcd::Cmcd;

/// The query arguments that name a viewer.
#[derive(Debug, Default, Deserialize)]
pub struct ViewerQuery {
    pub client: Option<String>,
    #[serde(rename = "CMCD")]
    pub cmcd: Option<String>,
}

/// The viewer behind one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Asker {
    /// The key of its record in the audience log.
    pub key: String,
    /// Whether `key` is an id this server issued.
    pub issued: bool,
    pub region: String,
    pub cmcd: Cmcd,
}

const CMCD_HEADERS: [&str; 4] = ["cmcd-request", "cmcd-object", "cmcd-status", "cmcd-session"];

/// Reads the viewer of a request from its headers, query and address.
pub fn asker(ids: &Issuer, headers: &HeaderMap, query: &ViewerQuery, addr: SocketAddr) -> Asker {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cmcd = Cmcd::parse(
        query
            .cmcd
            .as_deref()
            .into_iter()
            .chain(CMCD_HEADERS.iter().filter_map(|h| header(h))),
    );
    let claimed = header("x-backset-client")
        .or(query.client.as_deref())
        .or(cmcd.sid.as_deref())
        .filter(|c| !c.is_empty());
    let (key, issued) = match claimed {
        Some(id) if ids.verify(id) => (id.to_string(), true),
        // Issued ids start with a letter, so these never meet one.
        Some(id) => (format!("?{id}"), false),
        None => (format!("@{}", addr.ip()), false),
    };
    Asker {
        key,
        issued,
        region: region_of(header("x-region"), addr.ip()),
        cmcd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "192.0.2.7:5000".parse().unwrap()
    }

    #[test]
    fn an_issued_id_is_the_key_and_anything_else_is_kept_apart() {
        let ids = Issuer::new([3; 32]);
        let id = ids.issue([9; 12]);
        let mut headers = HeaderMap::new();
        headers.insert("x-backset-client", id.parse().unwrap());
        let a = asker(&ids, &headers, &ViewerQuery::default(), addr());
        assert_eq!((a.key.as_str(), a.issued), (id.as_str(), true));

        let forged = ViewerQuery {
            client: Some(id.replace('v', "w")),
            cmcd: None,
        };
        let a = asker(&ids, &HeaderMap::new(), &forged, addr());
        assert!(!a.issued && a.key.starts_with('?'));

        let a = asker(&ids, &HeaderMap::new(), &ViewerQuery::default(), addr());
        assert_eq!((a.key.as_str(), a.issued), ("@192.0.2.7", false));
        assert_eq!(a.region, "192.0.2.0/24");
    }

    #[test]
    fn a_players_cmcd_session_id_names_it_and_its_data_is_read() {
        let ids = Issuer::new([3; 32]);
        let id = ids.issue([1; 12]);
        let query = ViewerQuery {
            client: None,
            cmcd: Some(format!("bl=3000,mtp=1200,sid=\"{id}\",su")),
        };
        let mut headers = HeaderMap::new();
        headers.insert("cmcd-status", "bs".parse().unwrap());
        let a = asker(&ids, &headers, &query, addr());
        assert_eq!((a.key.as_str(), a.issued), (id.as_str(), true));
        assert_eq!(a.cmcd.mtp_kbps, Some(1200));
        assert!(a.cmcd.bs && a.cmcd.su);
    }
}
