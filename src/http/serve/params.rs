//! What a client asks before it plays: its backset parameters (from the
//! policy's `advise`, fed the audience log) and `locate` over HTTP.

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::viewer::ViewerQuery;
use super::{json, not_found, now_us, unavailable, AppState, Peer, Shared};
use crate::http::api::{AudienceFacts, Located, Params, ViewerFacts};
use crate::http::serve::audience_log::Facts;
use crate::policy::advise::{advise, Audience};
use crate::stream::index::Span;
use crate::stream::locate::Target;
use crate::stream::reader::Stream;
use crate::units::{parse_duration_us, parse_size};
use crate::Error;

pub(super) async fn advice_for(stream: &Stream, state: &Shared, client: &str) -> Option<Params> {
    let records: Vec<_> = stream.retained().collect();
    let newest = *records.last()?;
    let span = Span::of(&records, stream.index.timescale);
    let (total_s, bitrate, asset_s) = (span.seconds, span.bitrate_bps, span.asset_seconds);
    let facts = state.audience.facts(client, now_us()).await;
    let advice = advise(&Audience {
        clients: facts.clients.max(1),
        same_region_share: facts.same_region_share,
        // A client not measured yet is planned for at the stream's bitrate.
        throughput_bps: facts.current_bps,
        history_bps: facts.history_bps.clone(),
        bitrate_bps: bitrate.max(1.0),
        asset_duration_s: asset_s,
        window_s: total_s,
        dip_horizon_s: 20.0,
    });
    Some(Params {
        client: client.to_string(),
        coeffs: advice.coefficients.to_arg(),
        advice,
        live_edge_s: stream.seconds(newest.end()),
        live_edge_sequence: newest.sequence,
        first_sequence: records[0].sequence,
        asset_duration_s: asset_s,
        bitrate_bps: bitrate as u64,
        prefix: stream.naming.prefix.clone(),
        pattern: stream.naming.pattern(),
        ended: stream.descriptor.ended,
        audience: AudienceFacts {
            clients: facts.clients,
            same_region_share: facts.same_region_share,
        },
        viewer: viewer_facts(facts),
        distribution: Some(crate::policy::DISTRIBUTION.into()),
    })
}

fn viewer_facts(facts: Facts) -> ViewerFacts {
    ViewerFacts {
        throughput_bps: facts.current_bps,
        throughput_source: facts.throughput_source.to_string(),
        history_bps: facts.history_bps,
        buffer_s: facts.player.buffer_ms.map(|ms| ms as f64 / 1000.0),
        starved: facts.player.starved,
        starting: facts.player.starting,
        starvations: facts.starvations,
    }
}

pub async fn params(
    State(state): State<AppState>,
    ConnectInfo(Peer { addr, .. }): ConnectInfo<Peer>,
    Query(q): Query<ViewerQuery>,
    headers: HeaderMap,
) -> Response {
    let stream = match state.stream() {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let mut asker = super::viewer::asker(&state.ids, &headers, &q, addr);
    if !asker.issued {
        // A fresh record under a new id: facts sent under an id this server
        // did not issue never reach another viewer's.
        asker.key = state.issue();
    }
    state.record(&asker).await;
    match advice_for(&stream, &state, &asker.key).await {
        Some(p) => json(&p),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no asset published yet\n").into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct LocateQuery {
    backset: Option<String>,
    at: Option<String>,
    datastamp: Option<String>,
    clamp: Option<String>,
    /// What `backset=` is measured from: `live` (the default) or `wall`.
    clock: Option<String>,
}

impl LocateQuery {
    /// The target asked for. On the wall clock a backset is measured from
    /// the time the request is read, on the key frames' receive times.
    fn target(&self, now_us: u64) -> crate::Result<Target> {
        let wall = match self.clock.as_deref() {
            None | Some("live") => false,
            Some("wall") if self.backset.is_some() => true,
            Some("wall") => return Err(Error::Usage("clock=wall goes with backset=".into())),
            Some(other) => {
                return Err(Error::Usage(format!(
                    "clock={other}: give clock=live or clock=wall"
                )))
            }
        };
        match (&self.backset, &self.at, &self.datastamp) {
            (Some(d), None, None) => parse_duration_us(d).map(|us| {
                if wall {
                    Target::WallBackset { us, now_us }
                } else {
                    Target::Backset { us }
                }
            }),
            (None, Some(t), None) => parse_duration_us(t).map(|us| Target::At { us }),
            (None, None, Some(b)) => parse_size(b).map(|bytes| Target::Datastamp { bytes }),
            _ => Err(Error::Usage("give one of backset=, at=, datastamp=".into())),
        }
    }
}

pub async fn locate(State(state): State<AppState>, Query(q): Query<LocateQuery>) -> Response {
    let stream = match state.stream() {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let target = match q.target(now_us()) {
        Ok(t) => t,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let clamp = q.clamp.as_deref().is_some_and(|c| c != "0" && c != "false");
    match stream.locate(target, clamp) {
        Ok(answer) => json(&Located {
            asset: stream.naming.name(answer.sequence),
            answer,
        }),
        Err(e) => not_found(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(backset: Option<&str>, at: Option<&str>, clock: Option<&str>) -> LocateQuery {
        LocateQuery {
            backset: backset.map(Into::into),
            at: at.map(Into::into),
            datastamp: None,
            clamp: None,
            clock: clock.map(Into::into),
        }
    }

    #[test]
    fn a_backset_on_the_wall_clock_is_measured_from_the_request() {
        let t = |q: LocateQuery| q.target(7_000_000);
        assert_eq!(
            t(query(Some("2s"), None, Some("wall"))).unwrap(),
            Target::WallBackset {
                us: 2_000_000,
                now_us: 7_000_000
            }
        );
        for clock in [None, Some("live")] {
            assert_eq!(
                t(query(Some("2s"), None, clock)).unwrap(),
                Target::Backset { us: 2_000_000 }
            );
        }
        assert!(t(query(None, Some("3s"), Some("wall"))).is_err());
        assert!(t(query(Some("2s"), None, Some("sundial"))).is_err());
        assert!(t(query(Some("2s"), Some("3s"), None)).is_err());
    }
}
