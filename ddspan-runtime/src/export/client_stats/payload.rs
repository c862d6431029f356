//! The msgpack `ClientStatsPayload` the agent decodes from `/v0.6/stats`
//! (its `pkg/proto/datadog/trace/stats.proto`, msgpack with the Go field
//! names as keys, as dd-trace-go sends it): the tracer's identity, then
//! buckets (`Start`, `Duration`, `Stats`) of grouped stats, each sketch a
//! protobuf `DDSketch` in a msgpack `bin`.

use crate::config::Config;
use crate::export::client_stats::concentrator::{Bucket, Group, Key, BUCKET_NS};
use crate::export::msgpack::{write_array_len, write_int, write_str, write_uint};

/// What each payload says of the tracer.
pub(crate) struct Identity {
    env: String,
    version: String,
    service: String,
    /// Counts the payloads, from 1, as the agent expects.
    sequence: u64,
}

impl Identity {
    pub(crate) fn new(config: &Config) -> Identity {
        Identity {
            env: config.env.clone().unwrap_or_default(),
            version: config.version.clone().unwrap_or_default(),
            service: config.service.clone(),
            sequence: 0,
        }
    }

    /// One payload of `buckets`.
    pub(crate) fn encode(&mut self, buckets: Vec<Bucket>) -> Vec<u8> {
        self.sequence += 1;
        let mut out = Vec::with_capacity(256 * buckets.len());
        write_map_len(&mut out, 9);
        write_str(&mut out, "Hostname");
        write_str(&mut out, "");
        write_str(&mut out, "Env");
        write_str(&mut out, &self.env);
        write_str(&mut out, "Version");
        write_str(&mut out, &self.version);
        write_str(&mut out, "Lang");
        write_str(&mut out, "rust");
        write_str(&mut out, "TracerVersion");
        write_str(&mut out, env!("CARGO_PKG_VERSION"));
        write_str(&mut out, "RuntimeID");
        write_str(&mut out, crate::export::encode::runtime_id());
        write_str(&mut out, "Sequence");
        write_uint(&mut out, self.sequence);
        write_str(&mut out, "Service");
        write_str(&mut out, &self.service);
        write_str(&mut out, "Stats");
        write_array_len(&mut out, buckets.len());
        for bucket in buckets {
            write_map_len(&mut out, 4);
            write_str(&mut out, "Start");
            write_uint(&mut out, bucket.start);
            write_str(&mut out, "Duration");
            write_uint(&mut out, BUCKET_NS);
            write_str(&mut out, "AgentTimeShift");
            write_int(&mut out, 0);
            write_str(&mut out, "Stats");
            write_array_len(&mut out, bucket.groups.len());
            for (key, group) in bucket.groups {
                grouped(&mut out, &key, group);
            }
        }
        out
    }
}

/// One `ClientGroupedStats`.
fn grouped(out: &mut Vec<u8>, key: &Key, group: Group) {
    write_map_len(out, 18);
    for (name, value) in [
        ("Service", &key.service),
        ("Name", &key.name),
        ("Resource", &key.resource),
        ("Type", &key.span_type),
        ("SpanKind", &key.span_kind),
        ("HTTPMethod", &key.http_method),
        ("HTTPEndpoint", &key.http_endpoint),
    ] {
        write_str(out, name);
        write_str(out, value);
    }
    write_str(out, "DBType");
    write_str(out, "");
    write_str(out, "HTTPStatusCode");
    write_uint(out, u64::from(key.http_status_code));
    write_str(out, "Synthetics");
    out.push(if key.synthetics { 0xc3 } else { 0xc2 });
    write_str(out, "PeerTags");
    write_array_len(out, key.peer_tags.len());
    for tag in &key.peer_tags {
        write_str(out, tag);
    }
    write_str(out, "IsTraceRoot");
    write_int(out, i64::from(key.is_trace_root));
    for (name, value) in [
        ("Hits", group.hits),
        ("Errors", group.errors),
        ("Duration", group.duration),
        ("TopLevelHits", group.top_level_hits),
    ] {
        write_str(out, name);
        write_uint(out, value);
    }
    write_str(out, "OkSummary");
    write_bin(out, &group.ok.encode_to_vec());
    write_str(out, "ErrorSummary");
    write_bin(out, &group.error.encode_to_vec());
}

fn write_map_len(out: &mut Vec<u8>, len: usize) {
    match u16::try_from(len) {
        Ok(n) if n < 16 => out.push(0x80 | n as u8),
        Ok(n) => {
            out.push(0xde);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => {
            out.push(0xdf);
            out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
}

fn write_bin(out: &mut Vec<u8>, bytes: &[u8]) {
    match u8::try_from(bytes.len()) {
        Ok(n) => {
            out.push(0xc4);
            out.push(n);
        }
        Err(_) => match u16::try_from(bytes.len()) {
            Ok(n) => {
                out.push(0xc5);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Err(_) => {
                out.push(0xc6);
                // A sketch is bounded (2048 bins at most): far below 4 GiB.
                out.extend_from_slice(
                    &u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes(),
                );
            }
        },
    }
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use libdd_ddsketch::DDSketch;
    use std::collections::HashMap;

    #[derive(serde::Deserialize)]
    #[allow(non_snake_case)]
    struct Payload {
        Env: String,
        Version: String,
        Lang: String,
        Sequence: u64,
        Service: String,
        RuntimeID: String,
        Stats: Vec<WireBucket>,
    }

    #[derive(serde::Deserialize)]
    #[allow(non_snake_case)]
    struct WireBucket {
        Start: u64,
        Duration: u64,
        Stats: Vec<WireGroup>,
    }

    #[derive(serde::Deserialize)]
    #[allow(non_snake_case)]
    struct WireGroup {
        Name: String,
        Resource: String,
        HTTPStatusCode: u32,
        HTTPMethod: String,
        HTTPEndpoint: String,
        Synthetics: bool,
        PeerTags: Vec<String>,
        IsTraceRoot: i32,
        Hits: u64,
        Errors: u64,
        Duration: u64,
        TopLevelHits: u64,
        #[serde(with = "serde_bytes_vec")]
        OkSummary: Vec<u8>,
        #[serde(with = "serde_bytes_vec")]
        ErrorSummary: Vec<u8>,
    }

    /// A msgpack `bin` as bytes (serde's default reads a sequence).
    mod serde_bytes_vec {
        pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<u8>, D::Error> {
            struct Bytes;
            impl serde::de::Visitor<'_> for Bytes {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
            }
            d.deserialize_bytes(Bytes)
        }
    }

    #[test]
    fn a_payload_decodes_with_its_counts_and_sketches() {
        let config = Config::builder()
            .service("svc")
            .env("prod")
            .version("1.2")
            .build();
        let mut identity = Identity::new(&config);
        let key = Key {
            service: "svc".into(),
            name: "web.request".into(),
            resource: "GET /".into(),
            span_type: "web".into(),
            http_status_code: 200,
            span_kind: "server".into(),
            synthetics: true,
            peer_tags: vec!["db.name:x".into()],
            is_trace_root: 1,
            http_method: "GET".into(),
            http_endpoint: "/".into(),
        };
        let mut group = Group {
            hits: 3,
            top_level_hits: 3,
            errors: 1,
            duration: 600,
            ..Group::default()
        };
        group.ok.add(100.0).unwrap();
        group.ok.add(200.0).unwrap();
        group.error.add(300.0).unwrap();
        let bucket = Bucket {
            start: 20_000_000_000,
            groups: HashMap::from([(key, group)]),
        };
        let bytes = identity.encode(vec![bucket]);
        let payload: Payload = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(
            (
                payload.Env.as_str(),
                payload.Version.as_str(),
                payload.Lang.as_str()
            ),
            ("prod", "1.2", "rust")
        );
        assert_eq!((payload.Sequence, payload.Service.as_str()), (1, "svc"));
        assert_eq!(payload.RuntimeID, crate::export::encode::runtime_id());
        let bucket = &payload.Stats[0];
        assert_eq!((bucket.Start, bucket.Duration), (20_000_000_000, BUCKET_NS));
        let group = &bucket.Stats[0];
        assert_eq!(
            (
                group.Name.as_str(),
                group.Resource.as_str(),
                group.HTTPStatusCode
            ),
            ("web.request", "GET /", 200)
        );
        assert!(group.Synthetics);
        assert_eq!(
            (group.HTTPMethod.as_str(), group.HTTPEndpoint.as_str()),
            ("GET", "/")
        );
        assert_eq!(group.PeerTags, ["db.name:x"]);
        assert_eq!(group.IsTraceRoot, 1);
        assert_eq!(
            (group.Hits, group.Errors, group.Duration, group.TopLevelHits),
            (3, 1, 600, 3)
        );
        let ok = DDSketch::from_encoded(&group.OkSummary).unwrap();
        let error = DDSketch::from_encoded(&group.ErrorSummary).unwrap();
        assert_eq!((ok.count(), error.count()), (2.0, 1.0));
        assert_eq!(
            identity.encode(Vec::new())[..],
            {
                let mut again = Identity::new(&config);
                again.sequence = 1;
                again.encode(Vec::new())
            }[..],
            "the sequence counts payloads"
        );
    }
}
