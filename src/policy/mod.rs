//! The backset policy: what the server recommends per viewer ([`advise`]),
//! what each client draws from it ([`draw`]), and a simulation of many
//! viewers that compares it with the usual alternatives (`simulate`).

pub mod advise;
pub mod draw;
#[cfg(feature = "simulate")]
pub mod plot;
#[cfg(feature = "simulate")]
pub mod simulate;

use serde::{Deserialize, Serialize};

/// The weights and spreads of the distribution a client draws from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    /// Share of draws below the recommended backset.
    pub less: f64,
    /// Share of draws above it (and below the maximum).
    pub more: f64,
    /// Mean distance below the recommended backset, seconds (exponential,
    /// truncated at zero backset).
    pub down_s: f64,
    /// Mean distance above it, seconds (exponential, truncated at the maximum).
    pub up_s: f64,
}

impl Coefficients {
    /// The form `draw --coeffs` reads: `less=0.1,more=0.2,down=2s,up=4s`.
    pub fn to_arg(&self) -> String {
        format!(
            "less={},more={},down={}s,up={}s",
            round3(self.less),
            round3(self.more),
            round3(self.down_s),
            round3(self.up_s)
        )
    }

    pub fn parse(text: &str) -> Result<Coefficients, String> {
        let mut c = Coefficients {
            less: f64::NAN,
            more: f64::NAN,
            down_s: f64::NAN,
            up_s: f64::NAN,
        };
        for part in text.split(',') {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("bad coefficient {part:?}: write less=0.1,more=0.2,down=2s,up=4s")
            })?;
            let number = |v: &str| -> Result<f64, String> {
                v.parse::<f64>()
                    .map_err(|_| format!("bad number {v:?} in {part:?}"))
            };
            let seconds = |v: &str| -> Result<f64, String> {
                crate::units::parse_duration_us(v)
                    .map(|us| us as f64 / 1e6)
                    .map_err(|e| e.to_string())
            };
            match key.trim() {
                "less" => c.less = number(value)?,
                "more" => c.more = number(value)?,
                "down" => c.down_s = seconds(value)?,
                "up" => c.up_s = seconds(value)?,
                other => {
                    return Err(format!(
                        "unknown coefficient {other:?} (less, more, down, up)"
                    ))
                }
            }
        }
        c.validate()?;
        Ok(c)
    }

    /// The claims need a majority at the recommended backset: `less + more`
    /// stays below one half.
    pub fn validate(&self) -> Result<(), String> {
        let all = [self.less, self.more, self.down_s, self.up_s];
        if all.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(
                "coefficients less, more, down and up must all be given, finite and >= 0".into(),
            );
        }
        if self.less + self.more >= 0.5 {
            return Err(format!(
                "less + more = {} must stay below 0.5 so most draws equal the recommended backset",
                self.less + self.more
            ));
        }
        Ok(())
    }
}

/// The distribution an [`Advice`] parameterises, as `name/version`: a point
/// mass at the recommended backset, a share `less` on an exponential tail
/// below it truncated at zero and a share `more` on an exponential tail
/// above it truncated at the maximum ([`draw::Drawer::draw`]). Drawing any
/// other way gets a new name or version, so a client can refuse advice it
/// would misread ([`draw::known_distribution`]).
pub const DISTRIBUTION: &str = "backset-point-mass-exp-tails/1";

/// What the server hands a client: the parameters of [`DISTRIBUTION`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    pub recommended_s: f64,
    pub maximum_s: f64,
    pub coefficients: Coefficients,
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_read_back_what_advise_prints() {
        let c = Coefficients {
            less: 0.1,
            more: 0.2,
            down_s: 2.5,
            up_s: 4.0,
        };
        assert_eq!(Coefficients::parse(&c.to_arg()).unwrap(), c);
        assert!(Coefficients::parse("less=0.3,more=0.3,down=1s,up=1s")
            .unwrap_err()
            .contains("below 0.5"));
        assert!(Coefficients::parse("less=0.1,more=0.1,down=1s").is_err());
        assert!(Coefficients::parse("less=x").is_err());
    }
}
