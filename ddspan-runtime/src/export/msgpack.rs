//! The msgpack primitives the encoders write with: lengths, strings,
//! integers, floats, and headers patched once a length is known.
//!
//! Writing msgpack into a `Vec` cannot fail, so this is a small infallible
//! writer rather than `rmp`'s `io::Result`-returning one; the tests decode
//! its output with `rmp-serde` as an independent check. Nothing here knows
//! the payload schemas or their length limits ([`crate::export::encode`]
//! does).

/// The msgpack header of an array whose length is patched in later:
/// `array32` is valid for any length.
pub(crate) const ARRAY32_HEADER_LEN: usize = 5;

pub(crate) fn write_array_len(out: &mut Vec<u8>, len: usize) {
    match u32::try_from(len) {
        Ok(n) if n < 16 => out.push(0x90 | n as u8),
        Ok(n) if n <= u32::from(u16::MAX) => {
            out.push(0xdc);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0xdd);
            out.extend_from_slice(&n.unwrap_or(u32::MAX).to_be_bytes());
        }
    }
}

/// Overwrites an `array32` header reserved at `at` with `len`.
pub(crate) fn patch_array32(out: &mut [u8], at: usize, len: u32) {
    out[at] = 0xdd;
    out[at + 1..at + 5].copy_from_slice(&len.to_be_bytes());
}

pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= usize::from(u8::MAX) {
        out.push(0xd9);
        out.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        // Strings are bounded far below 4 GiB by the tag limits.
        out.push(0xdb);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn write_uint(out: &mut Vec<u8>, n: u64) {
    if n < 128 {
        out.push(n as u8);
    } else if let Ok(n) = u32::try_from(n) {
        out.push(0xce);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

pub(crate) fn write_int(out: &mut Vec<u8>, n: i64) {
    if (0..128).contains(&n) {
        out.push(n as u8);
    } else if let Ok(n) = i32::try_from(n) {
        out.push(0xd2);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

pub(crate) fn write_f64(out: &mut Vec<u8>, n: f64) {
    out.push(0xcb);
    out.extend_from_slice(&n.to_be_bytes());
}

/// A msgpack map whose length is known only once its entries are written:
/// a header sized for the most entries it may get, patched at the end.
#[derive(Default)]
pub(crate) struct MapWriter {
    at: usize,
    wide: Option<bool>,
    len: usize,
}

impl MapWriter {
    pub(crate) fn begin(out: &mut Vec<u8>, most: usize) -> MapWriter {
        let at = out.len();
        let wide = if most < 16 {
            out.push(0x80);
            None
        } else if most <= usize::from(u16::MAX) {
            out.extend_from_slice(&[0xde, 0, 0]);
            Some(false)
        } else {
            out.extend_from_slice(&[0xdf, 0, 0, 0, 0]);
            Some(true)
        };
        MapWriter { at, wide, len: 0 }
    }

    /// One entry, already encoded.
    pub(crate) fn raw(&mut self, out: &mut Vec<u8>, pair: &[u8]) {
        self.raw_many(out, pair, 1);
    }

    /// `count` entries, already encoded one after the other.
    pub(crate) fn raw_many(&mut self, out: &mut Vec<u8>, pairs: &[u8], count: usize) {
        out.extend_from_slice(pairs);
        self.len += count;
    }

    /// `count` entries the caller wrote itself.
    pub(crate) fn counted(&mut self, count: usize) {
        self.len += count;
    }

    pub(crate) fn str_pair(&mut self, out: &mut Vec<u8>, key: &str, value: &str) {
        write_str(out, key);
        write_str(out, value);
        self.len += 1;
    }

    pub(crate) fn f64_pair(&mut self, out: &mut Vec<u8>, key: &str, value: f64) {
        write_str(out, key);
        write_f64(out, value);
        self.len += 1;
    }

    pub(crate) fn end(self, out: &mut [u8]) {
        match self.wide {
            // Within the bound the header was sized for.
            None => out[self.at] = 0x80 | (self.len as u8 & 0x0f),
            Some(false) => out[self.at + 1..self.at + 3]
                .copy_from_slice(&u16::try_from(self.len).unwrap_or(u16::MAX).to_be_bytes()),
            Some(true) => out[self.at + 1..self.at + 5]
                .copy_from_slice(&u32::try_from(self.len).unwrap_or(u32::MAX).to_be_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn maps_of_any_size_get_the_right_header() {
        for (most, written) in [(0, 0), (15, 15), (15, 3), (16, 2), (70_000, 70_000)] {
            let mut out = vec![0xff];
            let mut map = MapWriter::begin(&mut out, most);
            for i in 0..written {
                map.f64_pair(&mut out, &format!("k{i}"), 1.0);
            }
            map.end(&mut out);
            let decoded: HashMap<String, f64> = rmp_serde::from_slice(&out[1..]).unwrap();
            assert_eq!(decoded.len(), written, "bound {most}");
        }
    }

    #[test]
    fn an_array32_header_is_patched_to_its_length() {
        let mut out = vec![0; ARRAY32_HEADER_LEN];
        for _ in 0..3 {
            write_uint(&mut out, 7);
        }
        patch_array32(&mut out, 0, 3);
        assert_eq!(rmp_serde::from_slice::<Vec<u8>>(&out).unwrap(), [7, 7, 7]);
    }

    #[test]
    fn msgpack_lengths_at_format_boundaries() {
        for len in [0usize, 15, 16, 31, 32, 255, 256, 65_535, 65_536, 70_000] {
            let s = "a".repeat(len);
            let mut out = Vec::new();
            write_str(&mut out, &s);
            let back: String = rmp_serde::from_slice(&out).unwrap();
            assert_eq!(back.len(), len);

            let mut out = Vec::new();
            write_array_len(&mut out, len);
            for _ in 0..len {
                write_uint(&mut out, 1);
            }
            let back: Vec<u8> = rmp_serde::from_slice(&out).unwrap();
            assert_eq!(back.len(), len);
        }
        for n in [0u64, 127, 128, 255, 65_536, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_uint(&mut out, n);
            assert_eq!(rmp_serde::from_slice::<u64>(&out).unwrap(), n);
        }
        for n in [
            0i64,
            127,
            128,
            -1,
            -129,
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            write_int(&mut out, n);
            assert_eq!(rmp_serde::from_slice::<i64>(&out).unwrap(), n);
        }
        for n in [0.0, -1.5, f64::MAX, f64::INFINITY] {
            let mut out = Vec::new();
            write_f64(&mut out, n);
            assert_eq!(rmp_serde::from_slice::<f64>(&out).unwrap(), n);
        }
    }
}
