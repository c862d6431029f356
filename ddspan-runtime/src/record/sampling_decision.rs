//! A trace's sampling decision as data: the priority and the mechanism and
//! rates that explain it. The sampler makes it; chunks carry it.

/// `USER_REJECT`: dropped by a user rule.
pub(crate) const USER_REJECT: i8 = -1;
/// `AUTO_REJECT`: dropped by the agent's rate.
pub(crate) const AUTO_REJECT: i8 = 0;
/// `AUTO_KEEP`: kept by the agent's rate.
pub(crate) const AUTO_KEEP: i8 = 1;
/// `USER_KEEP`: kept by a user rule.
pub(crate) const USER_KEEP: i8 = 2;

/// Sampling mechanisms, as carried in `_dd.p.dm` (`-N`).
pub(crate) const MECHANISM_DEFAULT: u8 = 0;
pub(crate) const MECHANISM_AGENT_RATE: u8 = 1;
pub(crate) const MECHANISM_RULE: u8 = 3;
/// `manual.keep` / `manual.drop`, `keep_trace` / `drop_trace`.
pub(crate) const MECHANISM_MANUAL: u8 = 4;
/// A rule whose provenance is `customer` (set in Datadog's UI).
pub(crate) const MECHANISM_REMOTE_USER_RULE: u8 = 11;
/// A rule whose provenance is `dynamic` (Datadog's adaptive sampling).
pub(crate) const MECHANISM_REMOTE_DYNAMIC_RULE: u8 = 12;

/// What the root decided, and the rates that explain it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SamplingDecision {
    pub(crate) priority: i8,
    /// `None` when the decision came from upstream (no local mechanism).
    pub(crate) mechanism: Option<u8>,
    pub(crate) agent_rate: Option<f64>,
    pub(crate) rule_rate: Option<f64>,
    pub(crate) limit_rate: Option<f64>,
    /// Not decided yet: sampling rules look at the root's resource and
    /// tags, which may change until the decision is needed (see
    /// `Sampler::begin`). Until then `priority` says "kept" (1).
    pub(crate) deferred: bool,
}

impl SamplingDecision {
    /// A decision inherited from an upstream service.
    pub(crate) fn inherited(priority: i8) -> SamplingDecision {
        SamplingDecision {
            priority,
            mechanism: None,
            agent_rate: None,
            rule_rate: None,
            limit_rate: None,
            deferred: false,
        }
    }

    /// A decision to be made later, by the rules (see `deferred`).
    pub(crate) fn deferred() -> SamplingDecision {
        SamplingDecision {
            deferred: true,
            ..SamplingDecision::inherited(1)
        }
    }

    /// A user's explicit keep (priority 2) or drop (-1).
    pub(crate) fn manual(keep: bool) -> SamplingDecision {
        SamplingDecision {
            mechanism: Some(MECHANISM_MANUAL),
            ..SamplingDecision::inherited(if keep { USER_KEEP } else { USER_REJECT })
        }
    }

    pub(crate) fn keep(&self) -> bool {
        self.priority > 0
    }
}
