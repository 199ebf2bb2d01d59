//! A replayable request's headers packed into one buffer, for replays that
//! most requests never make.
//!
//! Cloning the `HeaderMap` allocated its tables and bumped a reference
//! count (an atomic operation) per value, and dropping the clone undid it
//! all, for every replayable request. Packing the names and values costs
//! one allocation and a copy of their bytes, and dropping the block one
//! free: about 900 instructions per request less in the gateway (callgrind,
//! `benches/peers/instructions.sh`). The map is rebuilt only for a replay
//! or a hedge.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Each header as its name's length (`u32`), its value's length (`u32`),
/// whether the value is sensitive (one byte), the name, the value; in the
/// map's order, so that the values of a name keep theirs.
pub(crate) struct HeaderBlock {
    bytes: Vec<u8>,
    count: usize,
}

const LENGTHS: usize = 9;

impl HeaderBlock {
    pub(crate) fn copy(headers: &HeaderMap) -> Self {
        // One pass: a guess at the size (a few dozen bytes a header) saves
        // a second walk over the map; a larger block grows.
        let mut bytes = Vec::with_capacity(headers.len() * (LENGTHS + 48));
        for (name, value) in headers {
            let name = name.as_str().as_bytes();
            let mut lengths = [0; LENGTHS];
            lengths[..4].copy_from_slice(&length(name.len()).to_le_bytes());
            lengths[4..8].copy_from_slice(&length(value.len()).to_le_bytes());
            lengths[8] = u8::from(value.is_sensitive());
            bytes.extend_from_slice(&lengths);
            bytes.extend_from_slice(name);
            bytes.extend_from_slice(value.as_bytes());
        }
        Self {
            bytes,
            count: headers.len(),
        }
    }

    /// The headers as they were copied.
    pub(crate) fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.count);
        let mut rest = self.bytes.as_slice();
        while let Some((lengths, tail)) = rest.split_first_chunk::<LENGTHS>() {
            let name_length = u32::from_le_bytes([lengths[0], lengths[1], lengths[2], lengths[3]]);
            let value_length = u32::from_le_bytes([lengths[4], lengths[5], lengths[6], lengths[7]]);
            let (name, tail) = tail.split_at(name_length as usize);
            let (value, tail) = tail.split_at(value_length as usize);
            // Both were valid where they were copied from, and every safe
            // constructor checks the same rules.
            let name = HeaderName::from_bytes(name).expect("copied from a HeaderName");
            let mut value = HeaderValue::from_bytes(value).expect("copied from a HeaderValue");
            value.set_sensitive(lengths[8] != 0);
            map.append(name, value);
            rest = tail;
        }
        map
    }
}

fn length(length: usize) -> u32 {
    // hyper refuses header blocks far smaller than 4 GiB.
    u32::try_from(length).expect("a header shorter than 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    fn pairs(map: &HeaderMap) -> Vec<(String, Vec<u8>, bool)> {
        map.iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec(), v.is_sensitive()))
            .collect()
    }

    #[test]
    fn headers_come_back_as_they_were_copied() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("app.example"));
        headers.append(header::ACCEPT, HeaderValue::from_static("text/html"));
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        let mut secret = HeaderValue::from_static("Bearer x");
        secret.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, secret);
        headers.insert("x-custom-name", HeaderValue::from_static(""));
        // obs-text: not UTF-8, still a valid value.
        headers.insert("x-latin", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let long = "v".repeat(70_000);
        headers.insert("x-long", HeaderValue::from_str(&long).unwrap());

        let block = HeaderBlock::copy(&headers);
        let rebuilt = block.to_map();
        assert_eq!(rebuilt, headers);
        assert_eq!(pairs(&rebuilt), pairs(&headers));
        assert!(rebuilt[header::AUTHORIZATION].is_sensitive());
        assert!(!rebuilt[header::HOST].is_sensitive());
        // Twice: a replay and a hedge may both rebuild it.
        assert_eq!(pairs(&block.to_map()), pairs(&headers));
    }

    #[test]
    fn no_headers_is_an_empty_block() {
        let block = HeaderBlock::copy(&HeaderMap::new());
        assert!(block.bytes.is_empty());
        assert!(block.to_map().is_empty());
    }
}
