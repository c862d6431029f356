//! How long the writer waits before it sends again: the pause while the
//! agent cannot be reached or is overloaded (doubling, capped), the waits
//! between retries of a failed request, and the count of sends in a row
//! that found no agent.

use std::time::Duration;

use crate::export::outcome::Answer;

/// The longest wait between two attempts to reach an agent that is down:
/// short, so that traces flow again soon after it is back.
pub(crate) const MAX_UNREACHABLE_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause a 429's `Retry-After` may impose.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The writer's back-off. Reading it ([`Backoff::pause`],
/// [`Backoff::overloaded`], [`Backoff::retry_wait`]) changes nothing;
/// [`Backoff::observe`] moves it on after each answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// The first wait (`retry_backoff`): every wait starts from it.
    first: Duration,
    /// The next pause when the agent cannot be reached or is overloaded.
    pause: Duration,
    /// Sends in a row that found no agent at all.
    unreachable_streak: u32,
}

impl Backoff {
    pub(crate) fn new(first: Duration) -> Backoff {
        Backoff {
            first,
            pause: first,
            unreachable_streak: 0,
        }
    }

    /// The wait before the next attempt to reach an agent that is down.
    pub(crate) fn pause(&self) -> Duration {
        self.pause
    }

    /// The wait after a 429: the answer's `Retry-After`, else the pause; at
    /// least the first wait (`Retry-After: 0` must not turn a flush into a
    /// loop of requests with no pause) and at most [`MAX_RETRY_AFTER`].
    pub(crate) fn overloaded(&self, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or(self.pause)
            .max(self.first)
            .min(MAX_RETRY_AFTER)
    }

    /// The wait before retry number `retry` (from 1) of a failed request:
    /// the first wait, doubling.
    pub(crate) fn retry_wait(&self, retry: u32) -> Duration {
        self.first
            .saturating_mul(1 << retry.saturating_sub(1).min(16))
    }

    /// Sends in a row that found no agent at all.
    pub(crate) fn unreachable_streak(&self) -> u32 {
        self.unreachable_streak
    }

    /// Starts counting misses afresh (a flush counts its own).
    pub(crate) fn forget_streak(&mut self) {
        self.unreachable_streak = 0;
    }

    /// Moves on after `answer`: a miss or a 429 doubles the pause (up to
    /// [`MAX_UNREACHABLE_PAUSE`]), any other answer of the agent resets it;
    /// any answer ends the streak of misses, and a miss adds to it.
    pub(crate) fn observe(&mut self, answer: Answer) {
        match answer {
            Answer::Unreachable => {
                self.unreachable_streak += 1;
                self.double();
            }
            Answer::Status { code: 429, .. } => {
                self.unreachable_streak = 0;
                self.double();
            }
            Answer::Status { .. } => {
                self.unreachable_streak = 0;
                self.pause = self.first;
            }
            // The agent was reached, or the request never left: neither
            // says whether it is up.
            Answer::Failed | Answer::MaybeTaken | Answer::BodyLost => {}
        }
    }

    fn double(&mut self) {
        self.pause = self.pause.saturating_mul(2).min(MAX_UNREACHABLE_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::outcome::test_answers::{ms, status, FIRST};

    #[test]
    fn misses_double_the_pause_up_to_a_second_and_count_a_streak() {
        let mut backoff = Backoff::new(FIRST);
        let mut pauses = Vec::new();
        for _ in 0..6 {
            pauses.push(backoff.pause());
            backoff.observe(Answer::Unreachable);
        }
        assert_eq!(
            pauses,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(backoff.unreachable_streak(), 6);
    }

    #[test]
    fn an_answer_resets_the_pause_and_ends_the_streak() {
        let mut backoff = Backoff::new(FIRST);
        backoff.observe(Answer::Unreachable);
        backoff.observe(Answer::Unreachable);
        backoff.observe(status(503));
        assert_eq!(backoff, Backoff::new(FIRST));
        backoff.observe(Answer::Unreachable);
        backoff.observe(status(200));
        assert_eq!(backoff, Backoff::new(FIRST));
    }

    #[test]
    fn a_429_ends_the_streak_but_doubles_the_pause() {
        let mut backoff = Backoff::new(FIRST);
        backoff.observe(Answer::Unreachable);
        backoff.observe(status(429));
        assert_eq!(backoff.unreachable_streak(), 0);
        assert_eq!(backoff.pause(), ms(400));
    }

    #[test]
    fn a_failed_request_or_a_lost_body_changes_nothing() {
        let mut backoff = Backoff::new(FIRST);
        backoff.observe(Answer::Unreachable);
        let before = backoff.clone();
        backoff.observe(Answer::Failed);
        backoff.observe(Answer::BodyLost);
        assert_eq!(backoff, before);
    }

    #[test]
    fn retry_after_is_taken_within_bounds() {
        let mut backoff = Backoff::new(FIRST);
        assert_eq!(backoff.overloaded(Some(ms(2500))), ms(2500));
        assert_eq!(
            backoff.overloaded(Some(ms(0))),
            FIRST,
            "at least the first wait"
        );
        assert_eq!(
            backoff.overloaded(Some(Duration::from_secs(3600))),
            MAX_RETRY_AFTER
        );
        assert_eq!(backoff.overloaded(None), FIRST, "without one, the pause");
        backoff.observe(status(429));
        assert_eq!(backoff.overloaded(None), ms(200));
        // A first wait above the cap: the cap wins.
        let slow = Backoff::new(Duration::from_secs(60));
        assert_eq!(slow.overloaded(None), MAX_RETRY_AFTER);
    }

    #[test]
    fn retries_wait_the_first_wait_doubling_without_overflow() {
        let backoff = Backoff::new(FIRST);
        let waits: Vec<Duration> = (1..=4).map(|n| backoff.retry_wait(n)).collect();
        assert_eq!(waits, [ms(100), ms(200), ms(400), ms(800)]);
        assert_eq!(backoff.retry_wait(0), FIRST);
        assert_eq!(backoff.retry_wait(u32::MAX), FIRST * (1 << 16));
        assert_eq!(
            Backoff::new(Duration::MAX).retry_wait(3),
            Duration::MAX,
            "saturates"
        );
    }
}
