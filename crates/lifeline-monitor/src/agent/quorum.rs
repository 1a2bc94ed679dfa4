//! The quorum rule of a multi-region target (issue 14): one round of per-region results becomes one
//! [`RoundVerdict`]. Only each region's **final retry** counts (Datadog's rule: a retry that passed means
//! the region is up). `down` needs at least `min_failing` failing regions. `regional` is some failing, but
//! fewer, and is shown, not paged. `unknown` is fewer than `min_reporting` regions reporting: it is never a
//! target page; it means the probe fleet is degraded.

use std::collections::BTreeMap;

/// `quorum: { min_failing, min_reporting }` of a target with `regions: [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Failing regions (final retries) needed for `down`. 1 ≤ `min_failing` ≤ regions.
    pub min_failing: usize,
    /// Regions that must report in the round for any verdict but `unknown`.
    /// `min_failing` ≤ `min_reporting` ≤ regions.
    pub min_reporting: usize,
}

/// Why a [`Quorum`] does not fit its regions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// No regions configured.
    #[error("regions: at least one region is needed for a quorum")]
    NoRegions,
    /// `min_failing` is 0 or larger than the number of regions.
    #[error(
        "quorum.min_failing: must be between 1 and the number of regions ({regions}), not {value}"
    )]
    MinFailing {
        /// The configured value.
        value: usize,
        /// The number of regions.
        regions: usize,
    },
    /// `min_reporting` is below `min_failing` or larger than the number of regions.
    #[error(
        "quorum.min_reporting: must be between min_failing ({min_failing}) and the number of regions ({regions}), not {value}"
    )]
    MinReporting {
        /// The configured value.
        value: usize,
        /// `min_failing`.
        min_failing: usize,
        /// The number of regions.
        regions: usize,
    },
}

impl Quorum {
    /// The default for `regions` regions: a majority must fail (2 of 3, 3 of 5; 1 of 1 or 2), and as many
    /// must report.
    pub fn default_for(regions: usize) -> Quorum {
        let majority = if regions <= 2 { 1 } else { regions / 2 + 1 };
        Quorum {
            min_failing: majority,
            min_reporting: majority,
        }
    }

    /// Checks the rule against `regions` regions.
    ///
    /// Errors: [`QuorumError`], naming the field.
    pub fn validate(&self, regions: usize) -> Result<(), QuorumError> {
        if regions == 0 {
            return Err(QuorumError::NoRegions);
        }
        if self.min_failing == 0 || self.min_failing > regions {
            return Err(QuorumError::MinFailing {
                value: self.min_failing,
                regions,
            });
        }
        if self.min_reporting < self.min_failing || self.min_reporting > regions {
            return Err(QuorumError::MinReporting {
                value: self.min_reporting,
                min_failing: self.min_failing,
                regions,
            });
        }
        Ok(())
    }
}

/// One attempt of one region in a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionAttempt {
    /// The region's name.
    pub region: String,
    /// The attempt number within the round (0 first, retries after).
    pub attempt: u32,
    /// True when the attempt counted as up.
    pub up: bool,
}

/// The verdict of one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundVerdict {
    /// Enough regions reported and none failed.
    Up,
    /// At least `min_failing` regions failed: a target incident.
    Down {
        /// The failing regions, sorted.
        failing: Vec<String>,
    },
    /// Some regions failed, fewer than `min_failing`: shown, not paged.
    Regional {
        /// The failing regions, sorted.
        failing: Vec<String>,
    },
    /// Fewer than `min_reporting` regions reported: a probe-fleet problem, never a target page.
    Unknown {
        /// The regions that reported, sorted.
        reporting: Vec<String>,
    },
}

/// Decides one round: the final attempt of each configured region counts; attempts from regions not in
/// `regions` are ignored.
pub fn decide(regions: &[String], quorum: &Quorum, attempts: &[RegionAttempt]) -> RoundVerdict {
    let mut last: BTreeMap<&str, (u32, bool)> = BTreeMap::new();
    for a in attempts {
        if !regions.iter().any(|r| r == &a.region) {
            continue;
        }
        let e = last.entry(a.region.as_str()).or_insert((a.attempt, a.up));
        if a.attempt >= e.0 {
            *e = (a.attempt, a.up);
        }
    }
    if last.len() < quorum.min_reporting {
        return RoundVerdict::Unknown {
            reporting: last.keys().map(|r| (*r).to_owned()).collect(),
        };
    }
    let failing: Vec<String> = last
        .iter()
        .filter(|(_, (_, up))| !up)
        .map(|(r, _)| (*r).to_owned())
        .collect();
    if failing.len() >= quorum.min_failing {
        RoundVerdict::Down { failing }
    } else if !failing.is_empty() {
        RoundVerdict::Regional { failing }
    } else {
        RoundVerdict::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Vec<String> {
        ["eu-west", "us-east", "ap-south"]
            .map(String::from)
            .to_vec()
    }

    fn at(region: &str, attempt: u32, up: bool) -> RegionAttempt {
        RegionAttempt {
            region: region.into(),
            attempt,
            up,
        }
    }

    #[test]
    fn defaults_are_a_majority() {
        assert_eq!(
            Quorum::default_for(3),
            Quorum {
                min_failing: 2,
                min_reporting: 2
            }
        );
        assert_eq!(Quorum::default_for(5).min_failing, 3);
        assert_eq!(Quorum::default_for(1).min_failing, 1);
        for n in 1..8 {
            Quorum::default_for(n).validate(n).unwrap();
        }
    }

    #[test]
    fn bad_rules_name_their_field() {
        let q = |f, r| Quorum {
            min_failing: f,
            min_reporting: r,
        };
        assert_eq!(q(1, 1).validate(0), Err(QuorumError::NoRegions));
        assert!(q(0, 1)
            .validate(3)
            .unwrap_err()
            .to_string()
            .starts_with("quorum.min_failing"));
        assert!(q(4, 4)
            .validate(3)
            .unwrap_err()
            .to_string()
            .starts_with("quorum.min_failing"));
        assert!(q(2, 1)
            .validate(3)
            .unwrap_err()
            .to_string()
            .starts_with("quorum.min_reporting"));
        assert!(q(2, 4)
            .validate(3)
            .unwrap_err()
            .to_string()
            .starts_with("quorum.min_reporting"));
    }

    #[test]
    fn two_of_three_failing_is_down_one_is_regional() {
        let q = Quorum::default_for(3);
        let v = decide(
            &regions(),
            &q,
            &[
                at("eu-west", 0, false),
                at("us-east", 0, false),
                at("ap-south", 0, true),
            ],
        );
        assert_eq!(
            v,
            RoundVerdict::Down {
                failing: vec!["eu-west".into(), "us-east".into()]
            }
        );
        let v = decide(
            &regions(),
            &q,
            &[
                at("eu-west", 0, false),
                at("us-east", 0, true),
                at("ap-south", 0, true),
            ],
        );
        assert_eq!(
            v,
            RoundVerdict::Regional {
                failing: vec!["eu-west".into()]
            }
        );
        let v = decide(
            &regions(),
            &q,
            &[at("eu-west", 0, true), at("us-east", 0, true)],
        );
        assert_eq!(v, RoundVerdict::Up);
    }

    #[test]
    fn only_the_final_retry_counts() {
        let q = Quorum::default_for(3);
        let v = decide(
            &regions(),
            &q,
            &[
                at("eu-west", 1, true),
                at("eu-west", 0, false),
                at("us-east", 0, false),
                at("us-east", 1, true),
                at("ap-south", 0, false),
            ],
        );
        assert_eq!(
            v,
            RoundVerdict::Regional {
                failing: vec!["ap-south".into()]
            }
        );
    }

    #[test]
    fn too_few_reporting_is_unknown_never_down() {
        let q = Quorum::default_for(3);
        // Two of three cut off: the one left fails, but that is no quorum.
        let v = decide(
            &regions(),
            &q,
            &[at("ap-south", 0, false), at("elsewhere", 0, false)],
        );
        assert_eq!(
            v,
            RoundVerdict::Unknown {
                reporting: vec!["ap-south".into()]
            }
        );
    }
}
