//! What one send of a payload comes to, decided from the answer alone: the
//! table in `writer.rs`'s module comment, as a pure function.

use std::time::Duration;

use crate::export::backoff::Backoff;

/// What came back from one send, as far as the payload's fate goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The agent answered with this status (and maybe a `Retry-After`).
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// No connection was made: the agent never saw the payload.
    Unreachable,
    /// The request failed before it was written whole (a timeout or a
    /// connection lost while sending): the agent cannot have decoded it.
    Failed,
    /// The request was written whole, then no answer came (a timeout, the
    /// connection lost): the agent may have taken it.
    MaybeTaken,
    /// The body never came back from the sender thread: there is nothing
    /// left to send again.
    BodyLost,
}

/// What to do with the payload after one send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Taken: count it sent.
    Delivered,
    /// Not taken now; keep it and send it again after this wait (agent down,
    /// 429). Not a failed attempt: it may wait as long as the buffer holds.
    Later(Duration),
    /// May succeed if repeated (5xx, timeout, connection lost): retried up to
    /// `max_retries` times.
    Retry,
    /// Too large (413): split it in two between traces.
    Split,
    /// Never accepted: drop it and count it.
    Rejected,
    /// Perhaps taken, never confirmed: not sent again (it could arrive
    /// twice); counted apart from what was lost.
    Unconfirmed,
    /// A v0.5 payload the agent does not take as such (404, 415): rewritten
    /// as v0.4 and sent again at once, not a retry (the writer decides it,
    /// [`classify`] never does).
    Resend,
}

/// The outcome of `answer`; the waits are read from `backoff` as it stands
/// before the answer is [observed](Backoff::observe).
pub(crate) fn classify(answer: Answer, backoff: &Backoff) -> Outcome {
    match answer {
        Answer::Status {
            code: 200..=299, ..
        } => Outcome::Delivered,
        Answer::Status { code: 413, .. } => Outcome::Split,
        Answer::Status {
            code: 429,
            retry_after,
        } => Outcome::Later(backoff.overloaded(retry_after)),
        Answer::Status { code: 500.., .. } => Outcome::Retry,
        // Any other 4xx, and what a v0.4 endpoint never answers (1xx, 3xx).
        Answer::Status { .. } => Outcome::Rejected,
        // The agent never saw it, so it cannot arrive twice.
        Answer::Unreachable => Outcome::Later(backoff.pause()),
        Answer::Failed => Outcome::Retry,
        // dd-trace-go and ddtrace resend here, and a slow agent then holds
        // the same spans twice or more.
        Answer::MaybeTaken => Outcome::Unconfirmed,
        Answer::BodyLost => Outcome::Rejected,
    }
}

/// What the writer's pure parts' tests build answers and waits from.
#[cfg(test)]
pub(crate) mod test_answers {
    use super::*;

    /// The first back-off of these tests.
    pub(crate) const FIRST: Duration = Duration::from_millis(100);

    /// An answer with `code` and no `Retry-After`.
    pub(crate) fn status(code: u16) -> Answer {
        Answer::Status {
            code,
            retry_after: None,
        }
    }

    pub(crate) fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}

#[cfg(test)]
mod tests {
    use super::test_answers::{ms, status, FIRST};
    use super::*;

    /// One row per line of the table in `writer.rs`, in its order.
    #[test]
    fn every_row_of_the_table() {
        let fresh = Backoff::new(FIRST);
        let mut after_misses = Backoff::new(FIRST);
        after_misses.observe(Answer::Unreachable);
        after_misses.observe(Answer::Unreachable);
        let rows: &[(&str, Answer, &Backoff, Outcome)] = &[
            (
                "sent whole, then no answer: not sent again",
                Answer::MaybeTaken,
                &fresh,
                Outcome::Unconfirmed,
            ),
            ("2xx", status(200), &fresh, Outcome::Delivered),
            ("202", status(202), &fresh, Outcome::Delivered),
            ("299", status(299), &fresh, Outcome::Delivered),
            (
                "no connection: the pause",
                Answer::Unreachable,
                &fresh,
                Outcome::Later(FIRST),
            ),
            (
                "no connection again: the doubled pause",
                Answer::Unreachable,
                &after_misses,
                Outcome::Later(ms(400)),
            ),
            (
                "429 with Retry-After",
                Answer::Status {
                    code: 429,
                    retry_after: Some(ms(1500)),
                },
                &fresh,
                Outcome::Later(ms(1500)),
            ),
            (
                "429 with Retry-After: 0",
                Answer::Status {
                    code: 429,
                    retry_after: Some(Duration::ZERO),
                },
                &fresh,
                Outcome::Later(FIRST),
            ),
            (
                "429 with a Retry-After too long",
                Answer::Status {
                    code: 429,
                    retry_after: Some(Duration::from_secs(600)),
                },
                &fresh,
                Outcome::Later(Duration::from_secs(30)),
            ),
            (
                "429 without Retry-After",
                status(429),
                &after_misses,
                Outcome::Later(ms(400)),
            ),
            ("413", status(413), &fresh, Outcome::Split),
            ("500", status(500), &fresh, Outcome::Retry),
            ("503", status(503), &fresh, Outcome::Retry),
            ("599", status(599), &fresh, Outcome::Retry),
            (
                "timeout, connection lost",
                Answer::Failed,
                &fresh,
                Outcome::Retry,
            ),
            ("400", status(400), &fresh, Outcome::Rejected),
            ("404", status(404), &fresh, Outcome::Rejected),
            ("408", status(408), &fresh, Outcome::Rejected),
            ("499", status(499), &fresh, Outcome::Rejected),
            ("1xx", status(100), &fresh, Outcome::Rejected),
            ("3xx", status(307), &fresh, Outcome::Rejected),
            ("body lost", Answer::BodyLost, &fresh, Outcome::Rejected),
        ];
        for (row, answer, backoff, expected) in rows {
            assert_eq!(classify(*answer, backoff), *expected, "{row}");
        }
    }

    #[test]
    fn classifying_changes_nothing() {
        let backoff = Backoff::new(FIRST);
        for answer in [Answer::Unreachable, status(429), status(200)] {
            classify(answer, &backoff);
        }
        assert_eq!(backoff, Backoff::new(FIRST));
    }
}
