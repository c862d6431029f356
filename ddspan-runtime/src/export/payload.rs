//! An encoded v0.4 payload and where each of its traces ends: chunks are
//! appended, the array header sealed before a send, and a payload the agent
//! finds too large split in two between traces.

use crate::export::encode::Encoder;
use crate::export::msgpack::{patch_array32, ARRAY32_HEADER_LEN};
use crate::record::Chunk;

/// A msgpack array of traces, and where each one ends.
#[derive(Default)]
pub(crate) struct Payload {
    bytes: Vec<u8>,
    traces: Vec<TraceEnd>,
    spans: usize,
}

#[derive(Clone, Copy)]
struct TraceEnd {
    /// The offset just past the trace in `bytes`.
    end: usize,
    spans: usize,
}

impl Payload {
    /// Appends one chunk as a trace.
    pub(crate) fn append(&mut self, encoder: &Encoder, chunk: &Chunk) {
        self.start();
        encoder.encode_chunk(&mut self.bytes, chunk);
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

    /// Its size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn traces(&self) -> usize {
        self.traces.len()
    }

    pub(crate) fn spans(&self) -> usize {
        self.spans
    }

    /// Fixes the array header to the number of traces: done before sending.
    pub(crate) fn seal(&mut self) {
        let traces = u32::try_from(self.traces.len()).unwrap_or(u32::MAX);
        patch_array32(&mut self.bytes, 0, traces);
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
        let middle = self.traces.len() / 2;
        let cut = self.traces[middle - 1].end;
        let mut second = Payload {
            bytes: Vec::with_capacity(ARRAY32_HEADER_LEN + self.bytes.len() - cut),
            ..Payload::default()
        };
        second.bytes.resize(ARRAY32_HEADER_LEN, 0);
        second.bytes.extend_from_slice(&self.bytes[cut..]);
        let shift = cut - ARRAY32_HEADER_LEN;
        second.traces = self.traces[middle..]
            .iter()
            .map(|t| TraceEnd {
                end: t.end - shift,
                spans: t.spans,
            })
            .collect();
        second.spans = second.traces.iter().map(|t| t.spans).sum();
        let mut first = self;
        first.bytes.truncate(cut);
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
