//! The labels a configuration's summary carries: how a variance changes with depth
//! ([`Form`]) and the verdict read from both directions ([`Verdict`]). Leaf types, shared by
//! the rows that store them and the analysis that decides them; the rules themselves are
//! trend.rs's and verdict.rs's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a variance changes with depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// Within `FLAT_FACTOR` (trend.rs) over the depth.
    Flat,
    /// A line in ln(layer): critical behaviour.
    PowerLaw,
    /// A line in layer: a depth scale of 1/|rate| layers.
    Exponential,
    /// Too few finite, positive points to say.
    Unknown,
}

/// The verdict of a configuration, in rank order of its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Both directions flat.
    Stable,
    /// A power law in some direction, nothing exponential.
    Critical,
    /// Forward not exponential; backward grows exponentially toward the input.
    ExplodingGradients,
    /// Forward not exponential; backward decays exponentially toward the input.
    VanishingGradients,
    /// Forward variance grows exponentially.
    Exploding,
    /// Forward variance decays exponentially.
    Vanishing,
    /// Dead units, zero variance, or merged inputs at the last layer.
    Collapsed,
    /// A NaN or Inf in some seed.
    Diverged,
}

impl Verdict {
    /// The order of classes in the ranking (lower is better).
    pub fn class(self) -> u8 {
        match self {
            Verdict::Stable => 0,
            Verdict::Critical => 1,
            Verdict::ExplodingGradients | Verdict::VanishingGradients => 2,
            Verdict::Exploding | Verdict::Vanishing => 3,
            Verdict::Collapsed => 4,
            Verdict::Diverged => 5,
        }
    }

    /// The spec spelling (`exploding-gradients`).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Stable => "stable",
            Verdict::Critical => "critical",
            Verdict::ExplodingGradients => "exploding-gradients",
            Verdict::VanishingGradients => "vanishing-gradients",
            Verdict::Exploding => "exploding",
            Verdict::Vanishing => "vanishing",
            Verdict::Collapsed => "collapsed",
            Verdict::Diverged => "diverged",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
