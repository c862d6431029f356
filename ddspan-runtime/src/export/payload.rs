//! An encoded payload, v0.4 or v0.5, and where each of its traces ends:
//! chunks are appended, the payload sealed before a send, a payload the
//! agent finds too large split in two between traces, and a v0.5 payload
//! rewritten as v0.4 for an agent that does not take v0.5.

use crate::export::encode::Encoder;
use crate::export::encode_v05::{self, StringTable, V05};
use crate::export::msgpack::{patch_array32, ARRAY32_HEADER_LEN};
use crate::record::Chunk;

/// The agent's trace formats ddspan sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Format {
    /// `PUT /v0.4/traces`: spans as maps keyed by field name.
    #[default]
    V04,
    /// `PUT /v0.5/traces`: a string table, spans as arrays of indexes.
    V05,
}

impl Format {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Format::V04 => "/v0.4/traces",
            Format::V05 => "/v0.5/traces",
        }
    }
}

/// A msgpack array of traces (for v0.5, after the payload's string table),
/// and where each one ends.
#[derive(Default)]
pub(crate) struct Payload {
    format: Format,
    bytes: Vec<u8>,
    /// The string table of an open v0.5 payload (its traces are in
    /// `bytes`); put in front of them when sealed.
    table: Option<Box<StringTable>>,
    /// Where the array of traces begins in `bytes`: after the string table
    /// of a sealed v0.5 payload, else 0.
    traces_at: usize,
    traces: Vec<TraceEnd>,
    spans: usize,
}

#[derive(Clone, Copy)]
struct TraceEnd {
    /// The offset just past the trace, from `traces_at`.
    end: usize,
    spans: usize,
}

impl Payload {
    /// An empty payload of this format that writes into `room`, emptied
    /// first: the bytes of a payload already sent, so that a new payload
    /// does not grow through fresh pages (their zeroing by the kernel was
    /// about a tenth of the writer's time).
    pub(crate) fn new_in(format: Format, mut room: Vec<u8>) -> Payload {
        room.clear();
        Payload {
            format,
            bytes: room,
            ..Payload::default()
        }
    }

    /// Its bytes, for another payload to reuse (see [`Payload::new_in`]).
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Appends one chunk as a trace.
    pub(crate) fn append(&mut self, encoder: &Encoder, chunk: &Chunk) {
        self.start();
        match self.format {
            Format::V04 => encoder.encode_chunk(&mut self.bytes, chunk),
            Format::V05 => {
                let table = self.table.get_or_insert_with(Box::default);
                encoder.encode_chunk_to(&mut V05::new(table, &mut self.bytes), chunk);
            }
        }
        self.ended(chunk.spans.len());
    }

    /// Reserves the array header of an empty payload.
    fn start(&mut self) {
        if self.bytes.is_empty() {
            self.bytes.resize(ARRAY32_HEADER_LEN, 0);
        }
    }

    /// Records the end of a trace of `spans` spans just written.
    fn ended(&mut self, spans: usize) {
        self.traces.push(TraceEnd {
            end: self.bytes.len(),
            spans,
        });
        self.spans += spans;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Its size in bytes, the string table of an open v0.5 payload
    /// included.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() + self.table.as_ref().map_or(0, |t| t.encoded_len())
    }

    pub(crate) fn traces(&self) -> usize {
        self.traces.len()
    }

    pub(crate) fn spans(&self) -> usize {
        self.spans
    }

    /// Fixes the array header to the number of traces and, for v0.5, puts
    /// the string table in front: done before sending.
    pub(crate) fn seal(&mut self) {
        self.seal_into(Vec::new());
    }

    /// [`Payload::seal`], a v0.5 payload's table and traces written into
    /// `room` (the bytes of a payload already sent: a new buffer of this
    /// size is page faults and a free on every payload, a sixth of the
    /// writer's time at 200 000 spans/s). Hands back what it no longer
    /// uses: `room` itself for v0.4, the traces' old buffer for v0.5.
    pub(crate) fn seal_into(&mut self, mut room: Vec<u8>) -> Vec<u8> {
        let traces = u32::try_from(self.traces.len()).unwrap_or(u32::MAX);
        patch_array32(&mut self.bytes, self.traces_at, traces);
        let Some(table) = self.table.take() else {
            return room;
        };
        room.clear();
        room.reserve(table.encoded_len() + self.bytes.len());
        table.write_prefix(&mut room);
        self.traces_at = room.len();
        room.extend_from_slice(&self.bytes);
        std::mem::replace(&mut self.bytes, room)
    }

    /// Moves the bytes into a buffer of their size if theirs holds more than
    /// `max` (a kept room reused for a small payload), and hands the large
    /// one back for reuse.
    pub(crate) fn fit(&mut self, max: usize) -> Option<Vec<u8>> {
        if self.bytes.capacity() <= max {
            return None;
        }
        let own = self.bytes.as_slice().to_vec();
        Some(std::mem::replace(&mut self.bytes, own))
    }

    /// Rewrites a sealed v0.5 payload as v0.4, trace for trace; whether it
    /// is v0.4 now.
    pub(crate) fn rewrite_as_v04(&mut self) -> bool {
        if self.format == Format::V04 {
            return true;
        }
        self.seal();
        let Some((bytes, ends)) = encode_v05::to_v04(&self.bytes) else {
            return false;
        };
        self.bytes = bytes;
        self.traces = ends
            .into_iter()
            .map(|(end, spans)| TraceEnd { end, spans })
            .collect();
        self.traces_at = 0;
        self.format = Format::V04;
        true
    }

    /// The encoded bytes, lent to a request; [`Payload::restore`] puts them
    /// back when the request hands them back.
    pub(crate) fn lend(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    pub(crate) fn restore(&mut self, bytes: Vec<u8>) {
        self.bytes = bytes;
    }

    /// Two sealed payloads with the first and the second half of the traces;
    /// `Err` with the payload itself when it holds a single trace.
    pub(crate) fn split(self) -> Result<(Payload, Payload), Payload> {
        if self.traces.len() < 2 {
            return Err(self);
        }
        let mut this = self;
        this.seal();
        let middle = this.traces.len() / 2;
        let cut = this.traces[middle - 1].end;
        let at = this.traces_at;
        // A v0.5 half keeps the whole string table: every index stays good.
        let mut second = Payload {
            bytes: Vec::with_capacity(at + ARRAY32_HEADER_LEN + this.bytes.len() - at - cut),
            format: this.format,
            traces_at: at,
            ..Payload::default()
        };
        second.bytes.extend_from_slice(&this.bytes[..at]);
        second.bytes.resize(at + ARRAY32_HEADER_LEN, 0);
        second.bytes.extend_from_slice(&this.bytes[at + cut..]);
        let shift = cut - ARRAY32_HEADER_LEN;
        second.traces = this.traces[middle..]
            .iter()
            .map(|t| TraceEnd {
                end: t.end - shift,
                spans: t.spans,
            })
            .collect();
        second.spans = second.traces.iter().map(|t| t.spans).sum();
        let mut first = this;
        first.bytes.truncate(at + cut);
        first.traces.truncate(middle);
        first.spans -= second.spans;
        first.seal();
        second.seal();
        Ok((first, second))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::export::msgpack::write_array_len;

    /// A sealed payload of stand-in traces: trace `i` is a msgpack array of
    /// `sizes[i]` small ints, each `i`.
    pub(crate) fn payload_of(sizes: &[usize]) -> Payload {
        let mut payload = Payload::default();
        for (i, &spans) in sizes.iter().enumerate() {
            payload.start();
            write_array_len(&mut payload.bytes, spans);
            payload.bytes.extend(std::iter::repeat_n(i as u8, spans));
            payload.ended(spans);
        }
        payload.seal();
        payload
    }

    fn decode(payload: &Payload) -> Vec<Vec<u8>> {
        rmp_serde::from_slice(&payload.bytes).expect("a valid msgpack array")
    }

    #[test]
    fn appended_chunks_make_a_payload_of_whole_traces() {
        use crate::record::{SamplingDecision, SpanRecord, Upstream};
        let config = crate::Config::builder().service("svc").build();
        let encoder = Encoder::new(&config);
        let (core, _) = crate::runtime::TracerCore::capturing(config);
        let mut payload = Payload::default();
        assert!(payload.is_empty());
        for (trace_id, spans) in [(1u128, 1u64), (2, 3)] {
            let decision = SamplingDecision::inherited(1);
            let trace =
                crate::trace::TraceShared::new(&core, trace_id, 1, decision, Upstream::none_ref());
            let records = (1..=spans)
                .map(|id| SpanRecord::named(id, u64::from(id > 1), "op".into()))
                .collect();
            payload.append(&encoder, &trace.chunk(records, decision));
        }
        payload.seal();
        assert_eq!((payload.traces(), payload.spans()), (2, 4));
        #[derive(serde::Deserialize)]
        struct Span {
            trace_id: u64,
        }
        let traces: Vec<Vec<Span>> = rmp_serde::from_slice(&payload.bytes).unwrap();
        let ids: Vec<Vec<u64>> = traces
            .iter()
            .map(|t| t.iter().map(|s| s.trace_id).collect())
            .collect();
        assert_eq!(ids, [vec![1], vec![2, 2, 2]]);
    }

    /// Three traces of 1, 3 and 2 spans as a sealed payload of `format`.
    pub(crate) fn three_traces(format: Format) -> Payload {
        let mut payload = three_traces_open(format);
        payload.seal();
        payload
    }

    /// [`three_traces`], not sealed yet.
    pub(crate) fn three_traces_open(format: Format) -> Payload {
        use crate::record::{SamplingDecision, SpanRecord, Upstream};
        let config = crate::Config::builder().service("svc").env("e").build();
        let encoder = Encoder::new(&config);
        let (core, _) = crate::runtime::TracerCore::capturing(config);
        let mut payload = Payload::new_in(format, Vec::new());
        for (trace_id, spans) in [(1u128, 1u64), (2, 3), (3, 2)] {
            let decision = SamplingDecision::inherited(1);
            let trace =
                crate::trace::TraceShared::new(&core, trace_id, 1, decision, Upstream::none_ref());
            let records = (1..=spans)
                .map(|id| SpanRecord::named(id, u64::from(id > 1), format!("op{id}").into()))
                .collect();
            payload.append(&encoder, &trace.chunk(records, decision));
        }
        payload
    }

    pub(crate) type Named = Vec<Vec<(u64, String)>>;

    /// (trace id, name) of each span, whichever the format.
    pub(crate) fn names(payload: &Payload) -> Named {
        #[derive(serde::Deserialize)]
        struct Span {
            trace_id: u64,
            name: String,
        }
        match payload.format() {
            Format::V04 => {
                let traces: Vec<Vec<Span>> = rmp_serde::from_slice(&payload.bytes).unwrap();
                traces
                    .into_iter()
                    .map(|t| t.into_iter().map(|s| (s.trace_id, s.name)).collect())
                    .collect()
            }
            Format::V05 => {
                use serde::de::IgnoredAny as Any;
                type Span05 = (u32, u32, u32, u64, Any, Any, Any, Any, Any, Any, Any, Any);
                let (strings, traces): (Vec<String>, Vec<Vec<Span05>>) =
                    rmp_serde::from_slice(&payload.bytes).unwrap();
                traces
                    .into_iter()
                    .map(|t| {
                        t.into_iter()
                            .map(|s| (s.3, strings[s.1 as usize].clone()))
                            .collect()
                    })
                    .collect()
            }
        }
    }

    #[test]
    fn a_v05_payload_counts_its_table_splits_and_becomes_v04_whole() {
        let open = {
            let mut p = three_traces(Format::V05);
            // Counted before and after sealing alike.
            let sealed_len = p.len();
            p.seal();
            assert_eq!(p.len(), sealed_len);
            p
        };
        assert_eq!(open.format(), Format::V05);
        let all = names(&open);
        assert_eq!(all[1].len(), 3);
        assert_eq!(all, names(&three_traces(Format::V04)));
        let (first, second) = three_traces(Format::V05).split().ok().unwrap();
        assert_eq!((first.spans(), second.spans()), (1, 5));
        let mut halves = names(&first);
        halves.extend(names(&second));
        assert_eq!(halves, all);
        let mut v04 = three_traces(Format::V05);
        assert!(v04.rewrite_as_v04());
        assert_eq!(
            (v04.format(), v04.traces(), v04.spans()),
            (Format::V04, 3, 6)
        );
        assert_eq!(names(&v04), all);
        let (a, b) = v04.split().ok().unwrap();
        let mut halves = names(&a);
        halves.extend(names(&b));
        assert_eq!(
            halves, all,
            "a rewritten payload still splits between traces"
        );
    }

    #[test]
    fn a_split_keeps_every_trace_once_in_order() {
        let whole = payload_of(&[1, 2, 3, 4, 5]);
        let all = decode(&whole);
        let (first, second) = whole.split().ok().expect("five traces split");
        assert_eq!((first.traces(), second.traces()), (2, 3));
        assert_eq!((first.spans(), second.spans()), (3, 12));
        let mut halves = decode(&first);
        halves.extend(decode(&second));
        assert_eq!(halves, all);
        assert_eq!(second.traces.last().unwrap().end, second.len());
        let (a, b) = second.split().ok().unwrap();
        assert_eq!((decode(&a).len(), decode(&b).len()), (1, 2));
        assert_eq!(decode(&b), [vec![3; 4], vec![4; 5]]);
    }

    #[test]
    fn a_single_trace_does_not_split() {
        let single = payload_of(&[7]);
        let bytes = single.bytes.clone();
        let back = single.split().err().expect("one trace cannot be split");
        assert_eq!(back.bytes, bytes, "handed back as it was");
        assert!(Payload::default().split().is_err());
    }

    #[test]
    fn lent_bytes_come_back_whole() {
        let mut payload = payload_of(&[2, 2]);
        let bytes = payload.lend();
        assert_eq!(payload.len(), 0);
        payload.restore(bytes);
        assert_eq!(decode(&payload), [vec![0, 0], vec![1, 1]]);
    }
}
