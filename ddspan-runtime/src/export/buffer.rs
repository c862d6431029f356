//! What the writer holds for the agent, within its byte budget: the payload
//! being filled and the sealed payloads waiting to be sent, oldest first,
//! with the bytes and spans they hold.

use std::collections::VecDeque;

use crate::export::encode::Encoder;
use crate::export::payload::{Format, Payload};
use crate::record::Chunk;

/// A sealed payload and how its sends went so far.
pub(crate) struct Waiting {
    pub(crate) payload: Payload,
    /// Sealing order: a pump or a flush is about the payloads sealed before
    /// it began, not those sealed while its requests are under way. The
    /// halves of a split stand where the whole stood.
    pub(crate) sequence: u64,
    /// Sends that failed in a way that may succeed if repeated (5xx,
    /// timeout): bounded by `max_retries`.
    pub(crate) failed_attempts: u32,
    /// Whether it was sent before (a resend counts as a retry).
    pub(crate) sent_before: bool,
    /// Its size when it joined the queue: what it counts for, also while its
    /// bytes are lent to a request.
    size: usize,
}

/// The open payload and the queue of sealed ones.
pub(crate) struct Buffer {
    /// The most bytes held before new chunks are refused (`buffer_bytes`).
    budget: usize,
    open: Payload,
    waiting: VecDeque<Waiting>,
    waiting_bytes: usize,
    waiting_spans: usize,
    /// The sequence number of the last payload sealed.
    sealed: u64,
    /// Room for the next open payload: the bytes of one already sent (see
    /// [`Payload::new_in`]). Empty room, not counted in the budget; at most
    /// [`MAX_SPARE_ROOM`], and let go when the writer is idle.
    spare: Vec<u8>,
}

/// The most room kept for the next payload (a payload grows to at most
/// twice its size cap as its buffer doubles).
const MAX_SPARE_ROOM: usize = 64 << 20;

/// The most bytes a sealed payload's buffer may hold per byte of the
/// payload. A buffer that doubles as it grows is at most twice what it
/// holds; four lets the kept room of a full payload (up to twice the
/// payload cap) take the smaller ones sealed by the clock between full
/// ones, as it must under steady load, and still bounds what waits.
const ROOM_PER_BYTE: usize = 4;

impl Buffer {
    pub(crate) fn new(budget: usize) -> Buffer {
        Buffer {
            budget,
            open: Payload::default(),
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            waiting_spans: 0,
            sealed: 0,
            spare: Vec::new(),
        }
    }

    /// Bytes held, sealed or not.
    pub(crate) fn bytes(&self) -> usize {
        self.waiting_bytes + self.open.len()
    }

    /// Spans held, sealed or not.
    pub(crate) fn spans(&self) -> usize {
        self.waiting_spans + self.open.spans()
    }

    /// Whether it holds its budget: new chunks are refused.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes() >= self.budget
    }

    /// The size of the payload being filled.
    pub(crate) fn open_bytes(&self) -> usize {
        self.open.len()
    }

    /// Encodes a chunk into the open payload (room or not: the caller
    /// checks [`Buffer::is_full`]); an empty one takes `format`, one begun
    /// keeps its own (it is rewritten when sent if need be).
    pub(crate) fn append(&mut self, encoder: &Encoder, chunk: &Chunk, format: Format) {
        if self.open.is_empty() && self.open.format() != format {
            let room = std::mem::take(&mut self.open).into_bytes();
            self.open = Payload::new_in(format, room);
        }
        self.open.append(encoder, chunk);
    }

    /// Rewrites the oldest payload as v0.4 if it is v0.5, its size counted
    /// anew (v0.4 is larger: what is held may then pass the budget, and new
    /// chunks wait until it is back under), and splits it between traces
    /// while it is larger than `max` (the payload size). It becomes a new
    /// payload, whose first send is not a retry: the agent refused the
    /// v0.5 one whole, or never saw it. Whether it is v0.4 now.
    pub(crate) fn front_to_v04(&mut self, max: usize) -> bool {
        let Some(front) = self.waiting.front_mut() else {
            return false;
        };
        if front.payload.format() == Format::V04 {
            return true;
        }
        if !front.payload.rewrite_as_v04() {
            return false;
        }
        self.waiting_bytes = self.waiting_bytes - front.size + front.payload.len();
        front.size = front.payload.len();
        front.sent_before = false;
        front.failed_attempts = 0;
        if front.payload.len() <= max {
            return true;
        }
        let Some(whole) = self.pop() else {
            return true;
        };
        // Halves, and halves of halves, until each fits or is one trace.
        let mut pieces = Vec::new();
        let mut todo = vec![whole.payload];
        while let Some(payload) = todo.pop() {
            if payload.len() <= max {
                pieces.push(payload);
                continue;
            }
            match payload.split() {
                Ok((first, second)) => todo.extend([second, first]),
                Err(single) => pieces.push(single),
            }
        }
        for piece in pieces.into_iter().rev() {
            self.push_front_or_back(piece, whole.sequence, true);
        }
        true
    }

    /// Moves the open payload to the end of the queue, sealed.
    pub(crate) fn seal(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let format = self.open.format();
        let mut payload = std::mem::take(&mut self.open);
        // The kept room takes a sealed v0.5 payload (written anew behind
        // its string table) unless it is far larger: what waits must be
        // about what the budget counts, or a failing agent lets the queue
        // hold kept rooms for small payloads, a budget's worth each round.
        let fits = self.spare.capacity() <= ROOM_PER_BYTE * payload.len();
        let room = if fits {
            std::mem::take(&mut self.spare)
        } else {
            Vec::new()
        };
        // v0.4: `room` back; v0.5: the traces' old buffer.
        let unused = payload.seal_into(room);
        self.reuse(unused);
        // A v0.4 payload is written in its open room, which may be a large
        // kept one.
        if let Some(large) = payload.fit(ROOM_PER_BYTE * payload.len()) {
            self.reuse(large);
        }
        self.open = Payload::new_in(format, std::mem::take(&mut self.spare));
        self.sealed += 1;
        self.push_front_or_back(payload, self.sealed, false);
    }

    /// Keeps `room` (a settled payload's bytes) for the next payload, if
    /// it is larger than the room kept and not too large.
    pub(crate) fn reuse(&mut self, room: Vec<u8>) {
        if room.capacity() > self.spare.capacity() && room.capacity() <= MAX_SPARE_ROOM {
            self.spare = room;
        }
    }

    /// Lets the kept room go (the writer is idle).
    pub(crate) fn release_spare(&mut self) {
        self.spare = Vec::new();
    }

    /// The sequence number of the last payload sealed.
    pub(crate) fn last_sealed(&self) -> u64 {
        self.sealed
    }

    /// The oldest payload.
    pub(crate) fn front(&mut self) -> Option<&mut Waiting> {
        self.waiting.front_mut()
    }

    /// Whether every payload sealed by `last` left the queue.
    pub(crate) fn done_through(&self, last: u64) -> bool {
        self.waiting.front().is_none_or(|w| w.sequence > last)
    }

    /// Takes the oldest payload out.
    pub(crate) fn pop(&mut self) -> Option<Waiting> {
        let waiting = self.waiting.pop_front()?;
        self.waiting_bytes -= waiting.size;
        self.waiting_spans -= waiting.payload.spans();
        Some(waiting)
    }

    /// Puts the halves of a split payload at the front, where it stood; each
    /// is a new payload, whose first send is not a retry.
    pub(crate) fn put_back_halves(&mut self, (first, second): (Payload, Payload), sequence: u64) {
        self.push_front_or_back(second, sequence, true);
        self.push_front_or_back(first, sequence, true);
    }

    fn push_front_or_back(&mut self, payload: Payload, sequence: u64, front: bool) {
        self.waiting_bytes += payload.len();
        self.waiting_spans += payload.spans();
        let waiting = Waiting {
            size: payload.len(),
            payload,
            sequence,
            failed_attempts: 0,
            sent_before: false,
        };
        if front {
            self.waiting.push_front(waiting);
        } else {
            self.waiting.push_back(waiting);
        }
    }

    /// Empties the queue of sealed payloads; the traces and spans it held.
    pub(crate) fn clear_waiting(&mut self) -> (usize, usize) {
        let (mut traces, mut spans) = (0, 0);
        while let Some(waiting) = self.pop() {
            traces += waiting.payload.traces();
            spans += waiting.payload.spans();
        }
        (traces, spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::payload::tests::payload_of;

    /// A buffer whose queue holds `payloads`, sealed in order.
    fn holding(budget: usize, payloads: Vec<Payload>) -> Buffer {
        let mut buffer = Buffer::new(budget);
        for payload in payloads {
            buffer.open = payload;
            buffer.seal();
        }
        buffer
    }

    /// A sent payload's bytes become the next payload's room: sealing and
    /// filling again allocates nothing new.
    #[test]
    fn a_settled_payloads_bytes_are_the_next_payloads_room() {
        let mut buffer = holding(1 << 20, vec![payload_of(&[1, 2, 3])]);
        let sent = buffer.pop().unwrap().payload.into_bytes();
        let (address, capacity) = (sent.as_ptr(), sent.capacity());
        buffer.reuse(sent);
        buffer.open = payload_of(&[4]);
        buffer.seal();
        let room = std::mem::take(&mut buffer.open).into_bytes();
        assert_eq!((room.as_ptr(), room.capacity()), (address, capacity));
        buffer.reuse(Vec::with_capacity(MAX_SPARE_ROOM + 1));
        assert!(
            buffer.spare.capacity() <= MAX_SPARE_ROOM,
            "too large to keep"
        );
        buffer.release_spare();
        assert_eq!(buffer.spare.capacity(), 0);
    }

    /// A v0.5 payload is written anew behind its string table when
    /// sealed: into the kept room, and its old buffer is the next room.
    #[test]
    fn a_v05_payload_is_sealed_into_the_kept_room() {
        use crate::export::payload::tests::{names, three_traces, three_traces_open};
        let mut buffer = Buffer::new(1 << 20);
        buffer.open = three_traces_open(Format::V05);
        let kept: Vec<u8> = Vec::with_capacity(buffer.open.len() + 16);
        let (address, capacity) = (kept.as_ptr(), kept.capacity());
        buffer.reuse(kept);
        buffer.seal();
        let next_room = std::mem::take(&mut buffer.open).into_bytes().capacity();
        assert!(next_room > 0, "the traces' old buffer is the next room");
        let sealed = buffer.pop().unwrap().payload;
        assert_eq!(names(&sealed), names(&three_traces(Format::V05)));
        let bytes = sealed.into_bytes();
        assert_eq!((bytes.as_ptr(), bytes.capacity()), (address, capacity));
    }

    /// One chunk of `spans` spans of one trace.
    fn chunk_of(spans: u64) -> Chunk {
        use crate::record::{SamplingDecision, SpanRecord, Upstream};
        let config = crate::Config::builder().service("svc").build();
        let (core, _) = crate::runtime::TracerCore::capturing(config);
        let decision = SamplingDecision::inherited(1);
        let trace = crate::trace::TraceShared::new(&core, 1, 1, decision, Upstream::none_ref());
        let records = (1..=spans)
            .map(|id| SpanRecord::named(id, 1, "op".into()))
            .collect();
        trace.chunk(records, decision)
    }

    fn encoder() -> Encoder {
        Encoder::new(&crate::Config::builder().service("svc").build())
    }

    /// A payload's room larger than what is kept (a trace of tens of MiB)
    /// is not kept once the payload is sealed, in either format.
    #[test]
    fn a_room_larger_than_is_kept_does_not_stay() {
        for format in [Format::V04, Format::V05] {
            let mut buffer = Buffer::new(usize::MAX);
            // Capacity only: no page of it is touched.
            let huge = Vec::with_capacity(MAX_SPARE_ROOM + 1);
            buffer.open = Payload::new_in(format, huge);
            buffer.append(&encoder(), &chunk_of(3), format);
            buffer.seal();
            let sent = buffer.pop().unwrap().payload.into_bytes();
            buffer.reuse(sent);
            buffer.release_spare();
            let room = std::mem::take(&mut buffer.open).into_bytes();
            assert!(room.capacity() <= MAX_SPARE_ROOM, "{format:?}");
        }
    }

    /// A small payload sealed while a large room is kept holds about its
    /// own size, which is what the budget counts; the room stays kept.
    #[test]
    fn a_sealed_payload_holds_about_what_it_counts() {
        for format in [Format::V04, Format::V05] {
            let mut buffer = Buffer::new(1 << 20);
            buffer.reuse(Vec::with_capacity(MAX_SPARE_ROOM));
            // A v0.4 payload is written in its open room: a large kept one.
            buffer.open = Payload::new_in(format, Vec::with_capacity(MAX_SPARE_ROOM));
            buffer.append(&encoder(), &chunk_of(3), format);
            buffer.seal();
            let sealed = buffer.pop().unwrap().payload;
            let len = sealed.len();
            let held = sealed.into_bytes().capacity();
            assert!(
                held <= ROOM_PER_BYTE * len,
                "{format:?}: {len} counted, {held} held"
            );
            let room = std::mem::take(&mut buffer.open).into_bytes().capacity();
            assert_eq!(
                room, MAX_SPARE_ROOM,
                "{format:?}: the large room is the next room"
            );
        }
    }

    /// The writer's rounds while every send fails: payloads fill the budget,
    /// then settle one at a time, each followed by a small payload sealed
    /// (a flush). What the queue's buffers hold stays near the budget.
    #[test]
    fn the_queue_holds_about_its_budget_while_sends_fail() {
        let (big, tiny) = (chunk_of(20_000), chunk_of(1));
        let budget = 4 << 20;
        for format in [Format::V04, Format::V05] {
            let mut buffer = Buffer::new(budget);
            for round in 0..6 {
                while !buffer.is_full() {
                    buffer.append(&encoder(), &big, format);
                    if buffer.open_bytes() >= 1 << 20 || buffer.is_full() {
                        buffer.seal();
                    }
                }
                for _ in 0..buffer.waiting.len() {
                    let settled = buffer.pop().unwrap();
                    buffer.reuse(settled.payload.into_bytes());
                    buffer.append(&encoder(), &tiny, format);
                    buffer.seal();
                }
                let held: usize = buffer
                    .waiting
                    .iter_mut()
                    .map(|waiting| {
                        let bytes = waiting.payload.lend();
                        let capacity = bytes.capacity();
                        waiting.payload.restore(bytes);
                        capacity
                    })
                    .sum();
                assert!(
                    held <= ROOM_PER_BYTE * budget,
                    "{format:?}, round {round}: {held} bytes held for {} counted",
                    buffer.bytes()
                );
            }
        }
    }

    #[test]
    fn sealing_queues_in_order_and_counts_what_is_held() {
        let one = payload_of(&[1, 2]);
        let two = payload_of(&[3]);
        let (bytes, spans) = (one.len() + two.len(), 6);
        let mut buffer = holding(bytes + 1, vec![one, two]);
        assert_eq!((buffer.bytes(), buffer.spans()), (bytes, spans));
        assert!(!buffer.is_full());
        buffer.seal();
        assert_eq!(
            buffer.last_sealed(),
            2,
            "an empty open payload is not sealed"
        );
        assert_eq!(buffer.front().map(|w| w.sequence), Some(1));
        assert!(buffer.done_through(0), "sealed after the caller began");
        let first = buffer.pop().unwrap();
        assert_eq!((first.sequence, first.payload.spans()), (1, 3));
        assert!(buffer.done_through(1) && !buffer.done_through(2));
        assert_eq!(buffer.spans(), 3);
    }

    #[test]
    fn a_payload_counts_its_size_while_its_bytes_are_lent() {
        let one = payload_of(&[4]);
        let size = one.len();
        let mut buffer = holding(size, vec![one]);
        assert!(buffer.is_full(), "the budget reached");
        let body = buffer.front().unwrap().payload.lend();
        assert_eq!(buffer.bytes(), size);
        assert!(buffer.is_full());
        drop(body);
        buffer.pop();
        assert_eq!((buffer.bytes(), buffer.spans()), (0, 0));
        assert!(!buffer.is_full());
    }

    #[test]
    fn split_halves_stand_where_the_whole_stood_as_new_payloads() {
        let mut buffer = holding(1 << 20, vec![payload_of(&[1, 2, 3]), payload_of(&[4])]);
        let total = buffer.bytes();
        let front = buffer.front().unwrap();
        (front.sent_before, front.failed_attempts) = (true, 2);
        let whole = buffer.pop().unwrap();
        let halves = whole.payload.split().ok().unwrap();
        buffer.put_back_halves(halves, whole.sequence);
        // The halves repeat the array header: five bytes more.
        assert_eq!(buffer.bytes(), total + 5);
        assert_eq!(buffer.spans(), 10);
        let mut order = Vec::new();
        while let Some(w) = buffer.pop() {
            assert_eq!((w.sent_before, w.failed_attempts), (false, 0));
            order.push((w.sequence, w.payload.spans()));
        }
        assert_eq!(order, [(1, 1), (1, 5), (2, 4)]);
    }

    #[test]
    fn a_v05_payload_rewritten_as_v04_is_counted_anew_and_split_to_fit() {
        use crate::export::payload::tests::three_traces;
        let v05 = three_traces(Format::V05);
        let v05_len = v05.len();
        let mut buffer = holding(1 << 20, vec![v05, payload_of(&[1])]);
        let other = buffer.bytes() - v05_len;
        assert!(buffer.front_to_v04(usize::MAX));
        let front = buffer.front().unwrap();
        assert_eq!(front.payload.format(), Format::V04);
        assert!(front.payload.len() > v05_len, "v0.4 is larger");
        assert_eq!(
            buffer.bytes(),
            other + buffer.front().unwrap().payload.len()
        );
        assert!(buffer.front_to_v04(usize::MAX), "v0.4 already");

        let mut buffer = holding(1 << 20, vec![three_traces(Format::V05)]);
        assert!(buffer.front_to_v04(1));
        let mut spans = Vec::new();
        let mut bytes = 0;
        while let Some(w) = buffer.pop() {
            assert_eq!((w.payload.format(), w.payload.traces()), (Format::V04, 1));
            bytes += w.payload.len();
            spans.push(w.payload.spans());
        }
        assert_eq!(spans, [1, 3, 2], "split to single traces, in order");
        assert!(bytes > 0);
        assert_eq!(buffer.bytes(), 0);
    }

    #[test]
    fn clearing_counts_what_was_waiting() {
        let mut buffer = holding(1 << 20, vec![payload_of(&[1, 2]), payload_of(&[3])]);
        assert_eq!(buffer.clear_waiting(), (3, 6));
        assert_eq!((buffer.bytes(), buffer.spans()), (0, 0));
    }
}
