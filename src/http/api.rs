//! The HTTP answers `serve` writes and `follow` reads, as serde types: one
//! definition for both ends, so the server and its client cannot drift
//! apart. Plain data, built without the `serve` or `follow` features.

use serde::{Deserialize, Serialize};

use crate::policy::Advice;
use crate::stream::locate::Answer;

/// `/backset.json`: a client's backset parameters and the stream's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub client: String,
    #[serde(flatten)]
    pub advice: Advice,
    /// The coefficients as `backset draw --coeffs` reads them.
    pub coeffs: String,
    /// End of the newest published asset, s of transmission time.
    pub live_edge_s: f64,
    pub live_edge_sequence: u64,
    pub first_sequence: u64,
    pub asset_duration_s: f64,
    pub bitrate_bps: u64,
    pub prefix: String,
    pub pattern: String,
    pub ended: bool,
    /// What the server knows of this viewer, which the advice came from.
    #[serde(default)]
    pub viewer: ViewerFacts,
    /// The audience the advice came from.
    #[serde(default)]
    pub audience: AudienceFacts,
    /// The distribution the advice parameterises, `name/version`
    /// ([`crate::policy::DISTRIBUTION`]); a client refuses one it does not
    /// know. Absent from servers that predate the names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
}

/// One viewer's facts as the server holds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewerFacts {
    /// The newest throughput sample, bit/s: the player's own (CMCD `mtp`)
    /// where it sent one, else the delivery the server measured.
    pub throughput_bps: Option<f64>,
    /// "player", "server" or "none".
    pub throughput_source: String,
    /// Earlier samples from the same source, newest first.
    pub history_bps: Vec<f64>,
    /// The player's buffer (CMCD `bl`), s.
    pub buffer_s: Option<f64>,
    /// The player said its buffer ran dry (CMCD `bs`) on its latest request.
    pub starved: bool,
    /// The player said it is starting up (CMCD `su`).
    pub starting: bool,
    /// How many requests said the buffer ran dry.
    pub starvations: u32,
}

/// The audience around one viewer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudienceFacts {
    /// Viewers seen within the last 30 s.
    pub clients: u64,
    /// The share of them in this viewer's region.
    pub same_region_share: f64,
}

/// `/locate`: locate's answer and the name of the asset it points into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Located {
    pub asset: String,
    #[serde(flatten)]
    pub answer: Answer,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Coefficients;
    use crate::stream::locate::Window;

    #[test]
    fn answers_read_back_what_the_server_writes() {
        let params = Params {
            client: "c".into(),
            advice: Advice {
                recommended_s: 3.0,
                maximum_s: 9.5,
                coefficients: Coefficients {
                    less: 0.1,
                    more: 0.2,
                    down_s: 1.0,
                    up_s: 2.0,
                },
            },
            coeffs: "less=0.1,more=0.2,down=1s,up=2s".into(),
            live_edge_s: 12.25,
            live_edge_sequence: 6,
            first_sequence: 2,
            asset_duration_s: 2.0,
            bitrate_bps: 800_000,
            prefix: "asset".into(),
            pattern: "asset-%08d.mp4".into(),
            ended: false,
            viewer: ViewerFacts::default(),
            audience: AudienceFacts::default(),
            distribution: Some(crate::policy::DISTRIBUTION.into()),
        };
        let text = serde_json::to_string(&params).unwrap();
        // Flattened: the advice's fields sit at the top, as clients expect.
        assert!(text.contains("\"recommended_s\":3.0"), "{text}");
        assert_eq!(serde_json::from_str::<Params>(&text).unwrap(), params);

        let located = Located {
            asset: "asset-00000004.mp4".into(),
            answer: Answer {
                sequence: 4,
                offset: 1843,
                entry: 1,
                timestamp: 9.0,
                timestamp_ticks: 810_000,
                datastamp: 123_456,
                wallclock_us: 1_700_000_000_000_000,
                backset: 3.25,
                header_len: 1200,
                window: Window {
                    oldest_sequence: 2,
                    newest_sequence: 6,
                    start: 4.0,
                    end: 12.25,
                },
            },
        };
        let text = serde_json::to_string(&located).unwrap();
        assert!(text.contains("\"offset\":1843"), "{text}");
        assert_eq!(serde_json::from_str::<Located>(&text).unwrap(), located);
    }
}
