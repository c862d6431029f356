//! Which trace format the writer sends, from what the agent says: the
//! endpoints its `GET /info` lists, the `Datadog-Agent-State` header of its
//! answers, its refusals. Pure: the writer asks `/info` when
//! [`Formats::wants_info`] says so, on its own thread, and reports answers.
//!
//! How Datadog's tracers decide, and what is taken from each:
//! - libdatadog's trace exporter reads `/info` at start and again when an
//!   answer's `Datadog-Agent-State` (a hash of `/info`) differs from the one
//!   it holds (and every few minutes); it sends v0.5 only when asked to.
//! - ddtrace (Python) sends v0.5 unless `DD_TRACE_API_VERSION` says
//!   otherwise, without asking, and downgrades to v0.4 for good on a 404 or
//!   415 to it.
//!
//! ddspan sends v0.5 only to an agent whose `/info` lists `/v0.5/traces`;
//! asks again when the agent's state changes, when it answers after it
//! could not be reached (it may have restarted as another version), and
//! while no `/info` ever answered (an agent down at start); and after a 404
//! or 415 to v0.5 sends v0.4 until the agent's state changes or it
//! restarts, so that an agent listing v0.5 but refusing it is not asked in
//! a loop.
//!
//! The same `/info` says whether the agent takes client-side stats (it
//! lists `/v0.6/stats`), whether it lets the tracer leave sampled-out (P0)
//! traces unsent (`client_drop_p0s`), and which peer tags it aggregates
//! stats on (`peer_tags`), as dd-trace-go and libdatadog read them.

use std::sync::Arc;

use crate::export::payload::Format;

/// The path client-side stats are sent to.
pub(crate) const STATS_PATH: &str = "/v0.6/stats";

/// What the writer knows of the agent's formats.
#[derive(Debug)]
pub(crate) struct Formats {
    /// Whether the agent's last `/info` listed `/v0.5/traces`; `None` until
    /// one answered.
    v05_listed: Option<bool>,
    /// The latest `Datadog-Agent-State` seen.
    state: Option<String>,
    /// The agent refused v0.5 (404, 415) since it last changed.
    refused: bool,
    /// What it takes of client-side stats.
    stats: StatsInfo,
    /// `/info` is to be asked before the next send.
    stale: bool,
    /// The agent's last `/info` says `"span_events": true`: it takes the
    /// native `span_events` field (dd-trace-go and ddtrace read the same).
    span_events: bool,
}

/// What the agent's last `/info` says of client-side stats; nothing until
/// one answered (an agent that does not answer `/info` takes none).
#[derive(Debug, Default, Clone)]
pub(crate) struct StatsInfo {
    /// `/v0.6/stats` is listed.
    pub(crate) listed: bool,
    /// `client_drop_p0s` is `true`.
    pub(crate) drop_p0s: bool,
    /// The span tags the agent aggregates client, producer and consumer
    /// spans on (`peer_tags`).
    pub(crate) peer_tags: Arc<[String]>,
}

impl Default for Formats {
    fn default() -> Formats {
        Formats::new()
    }
}

impl Formats {
    /// Nothing known: v0.4, and `/info` to be asked.
    pub(crate) fn new() -> Formats {
        Formats {
            v05_listed: None,
            state: None,
            refused: false,
            stats: StatsInfo::default(),
            stale: true,
            span_events: false,
        }
    }

    /// What the agent takes of client-side stats.
    pub(crate) fn stats(&self) -> &StatsInfo {
        &self.stats
    }

    /// The format to send in.
    pub(crate) fn format(&self) -> Format {
        if self.v05_listed == Some(true) && !self.refused {
            Format::V05
        } else {
            Format::V04
        }
    }

    /// Whether `/info` is to be asked now.
    pub(crate) fn wants_info(&self) -> bool {
        self.stale
    }

    /// The answer to `GET /info`: its status, body and state header, or
    /// `None` when none came (the agent down, a timeout). Without an answer
    /// nothing changes but that it is not asked again until the agent
    /// answers something.
    pub(crate) fn info(&mut self, answer: Option<(u16, &str, Option<&str>)>) {
        self.stale = false;
        let Some((status, body, state)) = answer else {
            return;
        };
        if let Some(state) = state {
            self.state = Some(state.to_owned());
        }
        let info = (status == 200)
            .then(|| serde_json::from_str::<serde_json::Value>(body).ok())
            .flatten();
        self.v05_listed = Some(info.as_ref().is_some_and(|i| lists(i, Format::V05.path())));
        self.stats = info.as_ref().map(stats_info).unwrap_or_default();
        self.span_events = info.as_ref().is_some_and(takes_span_events);
    }

    /// Whether the agent takes span events natively (`span_events` in v0.4).
    pub(crate) fn span_events(&self) -> bool {
        self.span_events
    }

    /// The agent answered a trace request (any status) with this state
    /// header; `after_outage` when it could not be reached before.
    pub(crate) fn answered(&mut self, state: Option<&str>, after_outage: bool) {
        if self.v05_listed.is_none() || after_outage {
            self.stale = true;
        }
        if after_outage {
            self.refused = false;
        }
        if let Some(state) = state {
            if self.state.as_deref() != Some(state) {
                self.state = Some(state.to_owned());
                self.stale = true;
                self.refused = false;
            }
        }
    }

    /// The agent answered 404 or 415 to a v0.5 payload: v0.4 until it
    /// changes.
    pub(crate) fn refused_v05(&mut self) {
        self.refused = true;
    }
}

/// Whether an `/info` body lists `path` in its `endpoints`.
fn lists(info: &serde_json::Value, path: &str) -> bool {
    info.get("endpoints")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|endpoints| endpoints.iter().any(|e| e.as_str() == Some(path)))
}

fn stats_info(info: &serde_json::Value) -> StatsInfo {
    let peer_tags: Vec<String> = info
        .get("peer_tags")
        .and_then(serde_json::Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    StatsInfo {
        listed: lists(info, STATS_PATH),
        drop_p0s: info
            .get("client_drop_p0s")
            .and_then(serde_json::Value::as_bool)
            == Some(true),
        peer_tags: peer_tags.into(),
    }
}

/// Whether an `/info` body says `"span_events": true`.
fn takes_span_events(info: &serde_json::Value) -> bool {
    info.get("span_events")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_V05: &str =
        r#"{"version":"7.60.0","endpoints":["/v0.4/traces","/v0.5/traces","/info"]}"#;
    const WITHOUT: &str = r#"{"endpoints":["/v0.4/traces","/v0.3/traces"]}"#;

    #[test]
    fn v05_only_when_info_lists_it() {
        for (answer, expected) in [
            (Some((200, WITH_V05, None)), Format::V05),
            (Some((200, WITHOUT, None)), Format::V04),
            (Some((404, "404 page not found", None)), Format::V04),
            (Some((200, "not json", None)), Format::V04),
            (
                Some((200, r#"{"endpoints":"/v0.5/traces"}"#, None)),
                Format::V04,
            ),
            (Some((500, WITH_V05, None)), Format::V04),
            (None, Format::V04),
        ] {
            let mut formats = Formats::new();
            assert_eq!(formats.format(), Format::V04, "before /info");
            assert!(formats.wants_info());
            formats.info(answer);
            assert_eq!(formats.format(), expected, "{answer:?}");
            assert!(!formats.wants_info());
        }
    }

    #[test]
    fn stats_and_p0_dropping_only_as_info_says() {
        for (body, listed, drop_p0s, peer_tags) in [
            (
                r#"{"endpoints":["/v0.4/traces","/v0.6/stats"],"client_drop_p0s":true,"peer_tags":["db.name","peer.service"]}"#,
                true,
                true,
                &["db.name", "peer.service"][..],
            ),
            (
                r#"{"endpoints":["/v0.6/stats"],"client_drop_p0s":false}"#,
                true,
                false,
                &[],
            ),
            (
                r#"{"endpoints":["/v0.4/traces"],"client_drop_p0s":true}"#,
                false,
                true,
                &[],
            ),
            (
                r#"{"endpoints":["/v0.6/stats"],"client_drop_p0s":"yes"}"#,
                true,
                false,
                &[],
            ),
            ("not json", false, false, &[]),
        ] {
            let mut formats = Formats::new();
            formats.info(Some((200, body, None)));
            let stats = formats.stats();
            assert_eq!((stats.listed, stats.drop_p0s), (listed, drop_p0s), "{body}");
            assert_eq!(&*stats.peer_tags, peer_tags, "{body}");
        }
        let mut formats = Formats::new();
        formats.info(Some((
            200,
            r#"{"endpoints":["/v0.6/stats"],"client_drop_p0s":true}"#,
            None,
        )));
        formats.info(Some((404, "404 page not found", None)));
        assert!(!formats.stats().listed, "an agent that no longer lists it");
    }

    #[test]
    fn native_span_events_only_when_info_says_so() {
        for (body, expected) in [
            (r#"{"endpoints":[],"span_events":true}"#, true),
            (r#"{"endpoints":[],"span_events":false}"#, false),
            (r#"{"endpoints":[],"span_events":"true"}"#, false),
            (WITH_V05, false),
            ("not json", false),
        ] {
            let mut formats = Formats::new();
            assert!(!formats.span_events(), "before /info");
            formats.info(Some((200, body, None)));
            assert_eq!(formats.span_events(), expected, "{body}");
        }
        let mut formats = Formats::new();
        formats.info(Some((500, r#"{"span_events":true}"#, None)));
        assert!(!formats.span_events());
    }

    #[test]
    fn an_agent_down_at_start_is_asked_once_it_answers() {
        let mut formats = Formats::new();
        formats.info(None);
        assert!(!formats.wants_info(), "not asked on every send while down");
        formats.answered(None, false);
        assert!(formats.wants_info());
        formats.info(Some((200, WITH_V05, None)));
        assert_eq!(formats.format(), Format::V05);
        formats.answered(None, false);
        assert!(!formats.wants_info(), "known: not asked again");
    }

    #[test]
    fn a_new_agent_state_or_a_restart_asks_again() {
        let mut formats = Formats::new();
        formats.info(Some((200, WITH_V05, Some("a"))));
        formats.answered(Some("a"), false);
        assert!(!formats.wants_info());
        formats.answered(Some("b"), false);
        assert!(formats.wants_info(), "the agent's configuration changed");
        formats.info(Some((200, WITHOUT, None)));
        assert_eq!(formats.format(), Format::V04);
        formats.answered(Some("b"), false);
        assert!(!formats.wants_info(), "asked once per change");
        formats.answered(None, true);
        assert!(formats.wants_info(), "back after an outage: maybe upgraded");
        formats.info(Some((200, WITH_V05, None)));
        assert_eq!(formats.format(), Format::V05);
    }

    #[test]
    fn a_refusal_holds_until_the_agent_changes() {
        let mut formats = Formats::new();
        formats.info(Some((200, WITH_V05, Some("a"))));
        formats.refused_v05();
        assert_eq!(formats.format(), Format::V04);
        formats.answered(Some("a"), false);
        formats.info(Some((200, WITH_V05, Some("a"))));
        assert_eq!(formats.format(), Format::V04, "the same agent: no loop");
        formats.answered(Some("c"), false);
        formats.info(Some((200, WITH_V05, Some("c"))));
        assert_eq!(formats.format(), Format::V05);
        formats.refused_v05();
        formats.answered(None, true);
        formats.info(Some((200, WITH_V05, None)));
        assert_eq!(formats.format(), Format::V05, "restarted: tried again");
    }
}
