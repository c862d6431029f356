//! The v0.5 schema (`PUT /v0.5/traces`): a msgpack array of two, the
//! payload's string table (an array of strings, index 0 the empty one) and
//! its traces (arrays of spans), each span an array of 12: service, name,
//! resource (indexes), trace_id, span_id, parent_id, start, duration, error,
//! meta (index to index), metrics (index to float), type (index).
//!
//! What a span holds is decided once, by [`Encoder`](crate::export::encode::Encoder),
//! for both formats; [`V05`] only writes it with indexes. Every string a
//! payload uses is in its table once: names, services, resources, tag keys
//! and the values that repeat cost an index (one to five bytes) per span.
//!
//! [`to_v04`] rewrites a v0.5 payload as v0.4, span for span, for an agent
//! that turns out not to take v0.5 (404 or 415 to it): the writer keeps one
//! encoding of what it holds, not two.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::export::encode::{cut_pair, BaseMeta, Head, SpanWriter, KEY_META, KEY_METRICS, V04};
use crate::export::msgpack::{
    patch_array32, write_array_len, write_f64, write_int, write_str, write_uint, MapWriter,
    ARRAY32_HEADER_LEN,
};

/// A span is an array of 12.
const SPAN_FIELDS: usize = 12;
/// Slots of an empty table's index; it doubles at half full.
const FIRST_SLOTS: usize = 256;
/// Slots of the table's cache by address (a power of two, in sets of two).
const RECENT_SLOTS: usize = 512;

/// The strings of one payload, each once, in order of first use.
pub(crate) struct StringTable {
    /// The strings, msgpack-encoded one after the other.
    bytes: Vec<u8>,
    /// Where the text of string `i` is in `bytes`: start and length.
    texts: Vec<(usize, usize)>,
    hashes: Vec<u64>,
    /// Open addressing: `index + 1` of a string, 0 for an empty slot.
    slots: Vec<u32>,
    hasher: RandomState,
    /// The index of a string last seen at an address: `(address, length,
    /// index)` by a hash of the address. The names, resources and tag
    /// keys of spans are nearly all the same few `'static` strings, so this
    /// finds them without hashing their text (SipHash was half of a v0.5
    /// payload's encoding). A hit is checked against the table's text, so
    /// an address whose string was freed and reused is only a miss.
    recent: Box<[Seen; RECENT_SLOTS]>,
    /// The encoder's two sets of tracer-wide meta, as index pairs, once
    /// written (by [`BaseMeta::id`]).
    base: [Option<(Vec<u8>, usize)>; 2],
    /// Lookups by text (the cache by address missed), for the tests.
    #[cfg(test)]
    text_lookups: usize,
}

impl Default for StringTable {
    fn default() -> StringTable {
        StringTable::new()
    }
}

impl StringTable {
    /// A table holding the empty string at index 0.
    pub(crate) fn new() -> StringTable {
        let mut table = StringTable {
            bytes: Vec::new(),
            texts: Vec::new(),
            hashes: Vec::new(),
            slots: vec![0; FIRST_SLOTS],
            hasher: RandomState::new(),
            recent: Box::new([Seen::default(); RECENT_SLOTS]),
            base: [None, None],
            #[cfg(test)]
            text_lookups: 0,
        };
        table.intern("");
        table
    }

    /// How many strings it holds.
    pub(crate) fn len(&self) -> usize {
        self.texts.len()
    }

    /// Its size as the payload's first element: the header of the
    /// payload's array of two, the table's array header and its strings.
    pub(crate) fn encoded_len(&self) -> usize {
        1 + array_header_len(self.len()) + self.bytes.len()
    }

    /// Writes the payload's header and the table: what goes before the
    /// array of traces.
    pub(crate) fn write_prefix(&self, out: &mut Vec<u8>) {
        write_array_len(out, 2);
        write_array_len(out, self.len());
        out.extend_from_slice(&self.bytes);
    }

    fn text(&self, index: usize) -> &[u8] {
        let (start, len) = self.texts[index];
        &self.bytes[start..start + len]
    }

    /// The index of `s`, added when new.
    #[inline]
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        let address = s.as_ptr() as usize;
        // A set of two entries, the one found last first: two strings every
        // span uses that share a set do not push each other out.
        let set = recent_set(address, s.len());
        if let Some(index) = self.seen_at(set, address, s) {
            return index;
        }
        if let Some(index) = self.seen_at(set + 1, address, s) {
            self.recent.swap(set, set + 1);
            return index;
        }
        let index = self.intern_text(s);
        let (start, _) = self.texts[index as usize];
        self.recent[set + 1] = self.recent[set];
        self.recent[set] = Seen {
            address,
            len: s.len(),
            start,
            index,
        };
        index
    }

    /// The index of `s` if the cache's slot `slot` has it at `address`.
    #[inline]
    fn seen_at(&self, slot: usize, address: usize, s: &str) -> Option<u32> {
        let seen = self.recent[slot];
        let found = seen.address == address
            && seen.len == s.len()
            && self.bytes.get(seen.start..seen.start + s.len()) == Some(s.as_bytes());
        found.then_some(seen.index)
    }

    /// The index of `s` by its text, added when new.
    fn intern_text(&mut self, s: &str) -> u32 {
        #[cfg(test)]
        {
            self.text_lookups += 1;
        }
        let hash = self.hasher.hash_one(s);
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            match self.slots[slot] {
                0 => break,
                taken => {
                    let index = (taken - 1) as usize;
                    if self.hashes[index] == hash && self.text(index) == s.as_bytes() {
                        return taken - 1;
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
        let index = self.texts.len();
        write_str(&mut self.bytes, s);
        self.texts.push((self.bytes.len() - s.len(), s.len()));
        self.hashes.push(hash);
        // Payloads are bounded far below 4 G strings (25 MiB at most).
        let id = u32::try_from(index).unwrap_or(u32::MAX);
        self.slots[slot] = id.saturating_add(1);
        if self.texts.len() * 2 > self.slots.len() {
            self.grow();
        }
        id
    }

    fn grow(&mut self) {
        let mut slots = vec![0u32; self.slots.len() * 2];
        let mask = slots.len() - 1;
        for (index, hash) in self.hashes.iter().enumerate() {
            let mut slot = *hash as usize & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = u32::try_from(index + 1).unwrap_or(u32::MAX);
        }
        self.slots = slots;
    }
}

/// A string seen at an address: its length, where its text is in the
/// table's bytes, and its index.
#[derive(Clone, Copy, Default)]
struct Seen {
    address: usize,
    len: usize,
    start: usize,
    index: u32,
}

/// The first of the two slots where a string at `address` of `len` bytes
/// may be in the cache by address (a multiplicative hash: addresses are
/// aligned and close together).
#[inline]
fn recent_set(address: usize, len: usize) -> usize {
    let mixed = (address as u64 ^ ((len as u64) << 48)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let sets = RECENT_SLOTS / 2;
    2 * (mixed >> (64 - sets.trailing_zeros())) as usize
}

/// The msgpack size of an array header for `len` items.
fn array_header_len(len: usize) -> usize {
    match len {
        0..=15 => 1,
        16..=0xffff => 3,
        _ => 5,
    }
}

/// The v0.5 format: spans as arrays of 12, strings as indexes into the
/// payload's table.
pub(crate) struct V05<'a> {
    table: &'a mut StringTable,
    out: &'a mut Vec<u8>,
    map: MapWriter,
}

impl<'a> V05<'a> {
    pub(crate) fn new(table: &'a mut StringTable, out: &'a mut Vec<u8>) -> V05<'a> {
        V05 {
            table,
            out,
            map: MapWriter::default(),
        }
    }

    #[inline]
    fn index(&mut self, s: &str) {
        let index = self.table.intern(s);
        write_uint(self.out, u64::from(index));
    }
}

impl SpanWriter for V05<'_> {
    const NATIVE_LINKS_EVENTS: bool = false;

    fn chunk(&mut self, spans: usize) {
        write_array_len(self.out, spans);
    }

    fn head(&mut self, head: &Head<'_>, most_meta: usize) {
        write_array_len(self.out, SPAN_FIELDS);
        self.index(head.service);
        self.index(head.name);
        self.index(head.resource);
        write_uint(self.out, head.trace_id);
        write_uint(self.out, head.span_id);
        write_uint(self.out, head.parent_id);
        write_int(self.out, head.start);
        write_int(self.out, head.duration);
        write_int(self.out, i64::from(head.error));
        self.map = MapWriter::begin(self.out, most_meta);
    }

    fn base_all(&mut self, base: &BaseMeta) {
        let cached = self.table.base.get(base.id).and_then(Option::as_ref);
        if let Some((block, count)) = cached {
            self.map.raw_many(self.out, block, *count);
            return;
        }
        let mut block = Vec::new();
        for (key, value) in &base.pairs {
            let (key, value) = cut_pair(key, value);
            write_uint(&mut block, u64::from(self.table.intern(key)));
            write_uint(&mut block, u64::from(self.table.intern(value)));
        }
        self.map.raw_many(self.out, &block, base.pairs.len());
        if let Some(slot) = self.table.base.get_mut(base.id) {
            *slot = Some((block, base.pairs.len()));
        }
    }

    fn base_one(&mut self, base: &BaseMeta, index: usize) {
        let (key, value) = &base.pairs[index];
        let (key, value) = cut_pair(key, value);
        self.meta(key, value);
    }

    fn meta(&mut self, key: &str, value: &str) {
        self.index(key);
        self.index(value);
        self.map.counted(1);
    }

    fn metrics(&mut self, most: usize) {
        std::mem::take(&mut self.map).end(self.out);
        self.map = MapWriter::begin(self.out, most);
    }

    fn metric(&mut self, key: &str, value: f64) {
        self.index(key);
        write_f64(self.out, value);
        self.map.counted(1);
    }

    fn end(&mut self, head: &Head<'_>) {
        std::mem::take(&mut self.map).end(self.out);
        self.index(head.span_type);
    }
}

/// Where each trace of a payload ends, and how many spans it holds.
pub(crate) type TraceEnds = Vec<(usize, usize)>;

/// A v0.5 payload (as [`StringTable::write_prefix`] and [`V05`] write it)
/// rewritten as a sealed v0.4 one: its bytes (an `array32` of traces) and,
/// for each trace, where it ends and how many spans it holds. `None` when
/// the bytes are not such a payload (never, for ddspan's own).
pub(crate) fn to_v04(bytes: &[u8]) -> Option<(Vec<u8>, TraceEnds)> {
    let mut r = Reader { bytes, at: 0 };
    if r.array_len()? != 2 {
        return None;
    }
    let count = r.array_len()?;
    let strings = (0..count).map(|_| r.str()).collect::<Option<Vec<&str>>>()?;
    let string = |index: u64| strings.get(usize::try_from(index).ok()?).copied();
    let traces = r.array_len()?;
    let mut out = Vec::with_capacity(bytes.len() * 2);
    out.resize(ARRAY32_HEADER_LEN, 0);
    let mut ends = Vec::with_capacity(traces);
    for _ in 0..traces {
        let spans = r.array_len()?;
        write_array_len(&mut out, spans);
        for _ in 0..spans {
            if r.array_len()? != SPAN_FIELDS {
                return None;
            }
            let service = string(r.uint()?)?;
            let name = string(r.uint()?)?;
            let resource = string(r.uint()?)?;
            let (trace_id, span_id, parent_id) = (r.uint()?, r.uint()?, r.uint()?);
            let (start, duration) = (r.int()?, r.int()?);
            let error = i32::try_from(r.int()?).ok()?;
            let meta_at = r.at;
            for _ in 0..r.map_len()? {
                r.uint()?;
                r.uint()?;
            }
            let metrics_at = r.at;
            for _ in 0..r.map_len()? {
                r.uint()?;
                r.f64()?;
            }
            let span_type = string(r.uint()?)?;
            let head = Head {
                trace_id,
                span_id,
                parent_id,
                name,
                resource,
                service,
                service_encoded: None,
                span_type,
                start,
                duration,
                error,
                links: &[],
                events: &[],
            };
            V04::fields(&mut out, &head);
            let mut tags = Reader { bytes, at: meta_at };
            out.extend_from_slice(KEY_META);
            let entries = tags.map_len()?;
            let mut map = MapWriter::begin(&mut out, entries);
            for _ in 0..entries {
                map.str_pair(&mut out, string(tags.uint()?)?, string(tags.uint()?)?);
            }
            map.end(&mut out);
            debug_assert_eq!(tags.at, metrics_at);
            out.extend_from_slice(KEY_METRICS);
            let entries = tags.map_len()?;
            let mut map = MapWriter::begin(&mut out, entries);
            for _ in 0..entries {
                map.f64_pair(&mut out, string(tags.uint()?)?, tags.f64()?);
            }
            map.end(&mut out);
        }
        ends.push((out.len(), spans));
    }
    if r.at != bytes.len() {
        return None;
    }
    patch_array32(&mut out, 0, u32::try_from(traces).ok()?);
    Some((out, ends))
}

/// Reads back the msgpack forms ddspan writes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let taken = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A big-endian unsigned number of `n` bytes.
    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    fn len_of(&mut self, fix_base: u8, fix_max: u8, wide16: u8, wide32: u8) -> Option<usize> {
        let marker = self.byte()?;
        let len = match marker {
            m if (fix_base..=fix_max).contains(&m) => u64::from(m - fix_base),
            m if m == wide16 => self.be(2)?,
            m if m == wide32 => self.be(4)?,
            _ => return None,
        };
        usize::try_from(len).ok()
    }

    fn array_len(&mut self) -> Option<usize> {
        self.len_of(0x90, 0x9f, 0xdc, 0xdd)
    }

    fn map_len(&mut self) -> Option<usize> {
        self.len_of(0x80, 0x8f, 0xde, 0xdf)
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m - 0xa0),
            0xd9 => usize::try_from(self.be(1)?).ok()?,
            0xda => usize::try_from(self.be(2)?).ok()?,
            0xdb => usize::try_from(self.be(4)?).ok()?,
            _ => return None,
        };
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn uint(&mut self) -> Option<u64> {
        match self.byte()? {
            m @ 0x00..=0x7f => Some(u64::from(m)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    fn int(&mut self) -> Option<i64> {
        let marker = *self.bytes.get(self.at)?;
        match marker {
            0x00..=0x7f | 0xcc..=0xcf => i64::try_from(self.uint()?).ok(),
            0xe0..=0xff => {
                self.at += 1;
                Some(i64::from(marker as i8))
            }
            0xd0 => {
                self.at += 1;
                Some(i64::from(self.be(1)? as u8 as i8))
            }
            0xd1 => {
                self.at += 1;
                Some(i64::from(self.be(2)? as u16 as i16))
            }
            0xd2 => {
                self.at += 1;
                Some(i64::from(self.be(4)? as u32 as i32))
            }
            0xd3 => {
                self.at += 1;
                Some(self.be(8)? as i64)
            }
            _ => None,
        }
    }

    fn f64(&mut self) -> Option<f64> {
        match self.byte()? {
            0xcb => Some(f64::from_bits(self.be(8)?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::encode::tests::{chunk, decode, WireSpan};
    use crate::export::encode::Encoder;
    use crate::record::Chunk;
    use std::collections::HashMap;

    type Span05 = (
        u32,
        u32,
        u32,
        u64,
        u64,
        u64,
        i64,
        i64,
        i32,
        HashMap<u32, u32>,
        HashMap<u32, f64>,
        u32,
    );

    /// `chunks` as one v0.5 payload.
    fn encode(chunks: &[&Chunk], encoder: &Encoder) -> Vec<u8> {
        let mut table = StringTable::new();
        let mut traces = vec![0; ARRAY32_HEADER_LEN];
        for chunk in chunks {
            encoder.encode_chunk_to(&mut V05::new(&mut table, &mut traces), chunk);
        }
        patch_array32(&mut traces, 0, chunks.len() as u32);
        let mut payload = Vec::new();
        table.write_prefix(&mut payload);
        assert_eq!(payload.len(), table.encoded_len());
        payload.extend_from_slice(&traces);
        payload
    }

    /// Decoded by `rmp-serde` as the agent's v0.5 decoder reads it, each
    /// index looked up.
    fn decode_v05(payload: &[u8]) -> Vec<Vec<WireSpan>> {
        let (strings, traces): (Vec<String>, Vec<Vec<Span05>>) =
            rmp_serde::from_slice(payload).expect("a valid v0.5 payload");
        assert_eq!(strings[0], "", "index 0 is the empty string");
        let unique: std::collections::HashSet<&String> = strings.iter().collect();
        assert_eq!(unique.len(), strings.len(), "each string once");
        let s = |i: u32| strings[i as usize].clone();
        traces
            .into_iter()
            .map(|trace| {
                trace
                    .into_iter()
                    .map(|span| WireSpan {
                        service: s(span.0),
                        name: s(span.1),
                        resource: s(span.2),
                        trace_id: span.3,
                        span_id: span.4,
                        parent_id: span.5,
                        start: span.6,
                        duration: span.7,
                        error: span.8,
                        meta: span.9.iter().map(|(k, v)| (s(*k), s(*v))).collect(),
                        metrics: span.10.iter().map(|(k, v)| (s(*k), *v)).collect(),
                        r#type: s(span.11),
                    })
                    .collect()
            })
            .collect()
    }

    fn configs() -> Vec<crate::Config> {
        vec![
            crate::Config::builder().service("svc").build(),
            crate::Config::builder()
                .service("checkout")
                .env("prod")
                .version("1.2.3")
                .global_tag("team", "payments")
                .global_tag("env", "from-dd-tags")
                .build(),
        ]
    }

    /// Every field and tag of every span, precedence, limits and
    /// chunk-level fields included, is what v0.4 carries.
    #[test]
    fn v05_carries_exactly_what_v04_carries() {
        for config in configs() {
            let encoder = Encoder::new(&config);
            let (_trace, mut chunk) = chunk(config);
            // A span of another service, and one that overrides a
            // tracer-wide key (the base block is then written pair by pair).
            chunk.spans[0].set_service("redis".into());
            let mut third = crate::record::SpanRecord::named(12, 10, "op".into());
            third.set_tag("team".into(), crate::record::tag::TagValue::from("mine"));
            third.set_tag("n".into(), crate::record::tag::TagValue::from(-7));
            third.finish(crate::util::clock::now());
            chunk.spans.push(third);
            let v04 = decode(&chunk, &encoder);
            let v05 = decode_v05(&encode(&[&chunk, &chunk], &encoder));
            assert_eq!(v05.len(), 2);
            assert_eq!(v05[0], v04[0]);
            assert_eq!(v05[1], v04[0], "the second use of each string is an index");
            let long = v05[0].iter().find(|s| s.span_id == 11).unwrap();
            assert_eq!(long.meta["k"].len(), crate::MAX_TAG_VALUE_LEN);
        }
    }

    #[test]
    fn a_v05_payload_rewritten_as_v04_decodes_to_the_same_spans() {
        let config = configs().remove(1);
        let encoder = Encoder::new(&config);
        let (_trace, chunk) = chunk(config);
        let payload = encode(&[&chunk, &chunk, &chunk], &encoder);
        let (v04, ends) = to_v04(&payload).expect("ddspan's own payload");
        let traces: Vec<Vec<WireSpan>> = rmp_serde::from_slice(&v04).unwrap();
        assert_eq!(traces, decode_v05(&payload));
        assert_eq!(ends.len(), 3);
        assert_eq!(ends[2], (v04.len(), 2));
        // Each end is a trace boundary: the first trace alone decodes.
        let mut first = v04[..ends[0].0].to_vec();
        patch_array32(&mut first, 0, 1);
        let one: Vec<Vec<WireSpan>> = rmp_serde::from_slice(&first).unwrap();
        assert_eq!(one[0], traces[0]);
        assert!(to_v04(&payload[..payload.len() - 1]).is_none());
        assert!(to_v04(b"\x90").is_none());
    }

    #[test]
    fn the_string_table_keeps_each_string_once_through_growth() {
        let mut table = StringTable::new();
        assert_eq!(table.intern(""), 0);
        let words: Vec<String> = (0..5000).map(|i| format!("w{i}")).collect();
        for (i, word) in words.iter().enumerate() {
            assert_eq!(table.intern(word) as usize, i + 1);
        }
        for (i, word) in words.iter().enumerate().rev() {
            assert_eq!(table.intern(word) as usize, i + 1);
        }
        assert_eq!(table.len(), 5001);
        let mut out = Vec::new();
        table.write_prefix(&mut out);
        assert_eq!(out.len(), table.encoded_len());
        out.push(0x90); // no traces
        let (strings, traces): (Vec<String>, Vec<Vec<Span05>>) =
            rmp_serde::from_slice(&out).unwrap();
        assert_eq!((strings.len(), traces.len()), (5001, 0));
        assert_eq!(strings[4321], "w4320");
    }

    #[test]
    fn a_string_at_an_address_seen_before_is_found_by_its_text() {
        let mut table = StringTable::new();
        // One buffer, so one address: its text changes in place, as a
        // freed string's address comes back with another string in it.
        let mut buffer = String::from("/users/1");
        let first = table.intern(&buffer);
        assert_eq!(table.intern(&buffer), first, "found again at its address");
        buffer.replace_range(7.., "2");
        let second = table.intern(&buffer);
        assert_ne!(
            second, first,
            "a new text at the same address is a new string"
        );
        assert_eq!(table.text(second as usize), b"/users/2");
        buffer.replace_range(7.., "1");
        assert_eq!(
            table.intern(&buffer),
            first,
            "and the old text its old index"
        );
        let copy = String::from("/users/1");
        assert_eq!(
            table.intern(&copy),
            first,
            "the same text elsewhere: one string"
        );
        buffer.truncate(6);
        let shorter = table.intern(&buffer);
        assert_eq!(
            table.text(shorter as usize),
            b"/users",
            "a prefix is not the string"
        );
        assert_eq!(table.len(), 4);
    }

    /// A string seen before at its address is found there, without
    /// hashing its text again.
    #[test]
    fn a_string_seen_at_its_address_is_not_hashed_again() {
        let mut table = StringTable::new();
        let before = table.text_lookups;
        for _ in 0..100 {
            table.intern("http.request");
        }
        assert_eq!(table.text_lookups - before, 1);
    }

    /// Two strings used in turn whose addresses share a set of the cache
    /// both stay in it.
    #[test]
    fn two_strings_of_one_set_both_stay_found() {
        let mut table = StringTable::new();
        let text = "a".repeat(RECENT_SLOTS + 2);
        let address = text.as_ptr() as usize;
        let (short, long) = (1..=RECENT_SLOTS / 2 + 2)
            .flat_map(|long| (1..long).map(move |short| (short, long)))
            .find(|&(short, long)| recent_set(address, short) == recent_set(address, long))
            .expect("more lengths than sets");
        let before = table.text_lookups;
        for _ in 0..100 {
            table.intern(&text[..short]);
            table.intern(&text[..long]);
        }
        assert_eq!(table.text_lookups - before, 2);
    }

    /// Two lengths at one address that share a slot of the cache: the
    /// shorter string is a prefix of the longer one's text, not it.
    #[test]
    fn a_shorter_string_at_the_same_address_is_not_the_longer_one() {
        let mut table = StringTable::new();
        let mut buffer = "a".repeat(RECENT_SLOTS + 2);
        let address = buffer.as_ptr() as usize;
        let (short, long) = (1..=RECENT_SLOTS + 2)
            .flat_map(|long| (1..long).map(move |short| (short, long)))
            .find(|&(short, long)| recent_set(address, short) == recent_set(address, long))
            .expect("more lengths than slots");
        buffer.truncate(long);
        let longer = table.intern(&buffer);
        buffer.truncate(short);
        let shorter = table.intern(&buffer);
        assert_ne!(shorter, longer);
        assert_eq!(table.text(shorter as usize).len(), short);
    }

    /// A typical web trace: a root with HTTP tags and four children
    /// (database, cache, an outgoing call, rendering), `n` of them, each
    /// with its own ids, URL and user.
    fn web_traces(n: usize) -> (Encoder, Vec<Chunk>) {
        use crate::record::spec::SpanSpec;
        use crate::record::tag::{StaticTag, TagValue};
        use crate::record::{SamplingDecision, SpanRecord, Upstream};
        static REQUEST: SpanSpec = SpanSpec::new("http.request")
            .with_resource("GET /users/:id")
            .with_span_type("web")
            .with_tags(&[
                StaticTag::str("component", "http"),
                StaticTag::str("span.kind", "server"),
                StaticTag::str("http.method", "GET"),
                StaticTag::str("http.route", "/users/:id"),
            ]);
        static QUERY: SpanSpec = SpanSpec::new("postgres.query")
            .with_resource("SELECT * FROM users WHERE id = $1")
            .with_span_type("sql")
            .with_tags(&[
                StaticTag::str("db.system", "postgresql"),
                StaticTag::str("span.kind", "client"),
            ]);
        static CACHE: SpanSpec = SpanSpec::new("redis.command")
            .with_resource("GET")
            .with_span_type("redis")
            .with_tags(&[StaticTag::str("db.system", "redis")]);
        static CALL: SpanSpec = SpanSpec::new("http.client.request")
            .with_resource("GET /prices")
            .with_span_type("http")
            .with_tags(&[
                StaticTag::str("span.kind", "client"),
                StaticTag::str("http.method", "GET"),
            ]);
        static RENDER: SpanSpec =
            SpanSpec::new("render").with_tags(&[StaticTag::str("component", "tera")]);
        let config = crate::Config::builder()
            .service("users-api")
            .env("prod")
            .version("1.4.2")
            .build();
        let encoder = Encoder::new(&config);
        let (core, _) = crate::runtime::TracerCore::capturing(config);
        let chunks = (0..n)
            .map(|t| {
                let decision = SamplingDecision::inherited(1);
                let root_id = crate::util::id::new_span_id();
                let trace_id = crate::util::id::new_trace_id(true);
                let trace =
                    TraceShared::new(&core, trace_id, root_id, decision, Upstream::none_ref());
                let mut root = SpanRecord::new(root_id, 0, &REQUEST);
                root.top_level = true;
                root.set_tag(
                    "http.url".into(),
                    TagValue::from(format!("https://api.example.com/users/{}", 1000 + t)),
                );
                root.set_tag("http.status_code".into(), TagValue::from(200));
                root.set_tag("usr.id".into(), TagValue::from(format!("{}", 1000 + t)));
                let mut spans = vec![root];
                for spec in [&QUERY, &CACHE, &CALL, &RENDER] {
                    let mut child = SpanRecord::new(crate::util::id::new_span_id(), root_id, spec);
                    if std::ptr::eq(spec, &CALL) {
                        child.set_tag("http.status_code".into(), TagValue::from(200));
                    }
                    spans.push(child);
                }
                for span in &mut spans {
                    span.start = 1_764_400_000_000_000_000 + t as u64 * 1_000_000;
                    span.duration_ns = 1_234_567;
                }
                trace.chunk(spans, decision)
            })
            .collect();
        (encoder, chunks)
    }
    use crate::trace::TraceShared;

    /// What benches/README.md reports: bytes per span of the web trace in
    /// each format, one trace per payload and a hundred.
    /// `cargo test -p ddspan-runtime --lib bytes_per_span -- --nocapture`.
    #[test]
    fn bytes_per_span_of_a_web_trace() {
        for n in [1, 100] {
            let (encoder, chunks) = web_traces(n);
            let mut v04 = vec![0; ARRAY32_HEADER_LEN];
            for chunk in &chunks {
                encoder.encode_chunk(&mut v04, chunk);
            }
            let all: Vec<&Chunk> = chunks.iter().collect();
            let v05 = encode(&all, &encoder);
            let spans = 5 * n;
            let (a, b) = (v04.len() / spans, v05.len() / spans);
            eprintln!(
                "{n} web trace(s) per payload: v0.4 {a} bytes per span, v0.5 {b} ({:.0} %)",
                100.0 * b as f64 / a as f64
            );
            assert!(b < a);
            let (back, _) = to_v04(&v05).unwrap();
            let decoded: Vec<Vec<WireSpan>> = rmp_serde::from_slice(&back).unwrap();
            assert_eq!(decoded, decode_v05(&v05));
        }
    }

    #[test]
    fn integers_of_every_width_read_back() {
        let mut out = Vec::new();
        let ints = [
            0i64,
            127,
            128,
            -1,
            -129,
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ];
        for n in ints {
            write_int(&mut out, n);
        }
        let mut r = Reader { bytes: &out, at: 0 };
        for n in ints {
            assert_eq!(r.int(), Some(n));
        }
        assert_eq!(r.at, out.len());
    }
}
