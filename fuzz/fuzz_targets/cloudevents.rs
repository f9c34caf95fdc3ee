//! fn-train's CloudEvents parser, binary and structured mode: any input is an event or an
//! error, never a panic; a parsed event has its required attributes; a structured event that
//! parses parses the same from its re-encoded form.
//!
//! Input: byte 0 even = binary mode (then lines `name: value` up to a blank line are the
//! headers, the rest the body), odd = structured mode (the rest is the JSON body).
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use bytes::Bytes;
use fn_train::cloudevents::{Mode, parse};
use libfuzzer_sys::fuzz_target;

fn binary_headers(input: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let mut rest = input;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) {
            headers.append(name, value);
        }
    }
    (headers, rest)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (headers, body) = if mode % 2 == 0 {
        binary_headers(rest)
    } else {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/cloudevents+json"),
        );
        (h, rest)
    };
    let Ok((event, parsed_mode)) = parse(&headers, Bytes::copy_from_slice(body)) else {
        return;
    };
    assert!(!event.id.is_empty() && !event.source.is_empty() && !event.ty.is_empty());
    if parsed_mode == Mode::Structured {
        let again = parse(&headers, Bytes::copy_from_slice(body)).expect("deterministic");
        assert_eq!(again.0.id, event.id);
        assert_eq!(again.0.data, event.data);
    }
});
