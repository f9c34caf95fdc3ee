//! CloudEvents 1.0 over HTTP: reading a request event in binary or structured mode, and
//! writing the reply event in the same mode (see `shared/docs/cloudevents-http.md`).
//!
//! * Structured: `Content-Type: application/cloudevents+json`, one JSON object holding every
//!   attribute and `data` (JSON) or `data_base64` (bytes).
//! * Binary: attributes in `ce-<name>` headers (percent-encoded), `Content-Type` is the
//!   `datacontenttype`, the body is the data as-is.
//! * Batch mode (`application/cloudevents-batch`) is never solicited and is refused.
//!
//! Why not the CloudEvents project's `cloudevents-sdk` (0.9.0, `axum` feature), measured on
//! 27 Nov 2026 (AMD EPYC, 2 vCPU; scratch crate: axum 0.8.9 with `DefaultBodyLimit::max(16
//! MiB)`, fn-train's default `max_body_bytes`, one route taking the SDK's `Event` extractor,
//! one taking axum's `Bytes`, requests over loopback, peak RSS from `VmHWM`):
//!
//! | request | SDK `Event` extractor | what fn-train must do |
//! |---|---|---|
//! | binary-mode event, 40 MiB body | **200**, peak RSS +83.8 MiB (body read whole with `to_bytes(body, usize::MAX)`, then copied by `to_vec`) | 413 before buffering (axum `Bytes` on the same router: 413, +16.8 MiB) |
//! | `application/cloudevents-batch+json` | 400 `Wrong encoding`, no content type | 415 |
//! | `ce-id` missing | 400 `Error while building the final event: Missing required attribute id`, plain text, no content type | 400 with the JSON `{"error": ...}` body of every other fn-train error |
//!
//! So the SDK's extractor ignores the body cap (a 40 MiB event would take 84 MiB of a 200
//! MiB pod, and two at once more than the pod has), and its rejections break the error
//! contract; wrapping it would mean re-implementing the body read and the error mapping,
//! i.e. most of this module. Build cost: it adds 10 crates fn-train does not have
//! (cloudevents-sdk, chrono, snafu + snafu-derive, uuid, async-trait, delegate-attr,
//! hostname, iana-time-zone, num-traits); a cold `cargo build --release` of the scratch
//! crate took 69.3 CPU s for axum + tokio + serde_json alone and 70.9 CPU s more once
//! `cloudevents-sdk` was added (CARGO_BUILD_JOBS=1), of which the 10 new crates are about
//! 14 CPU s (their share of `--timings`) and the rest rebuilding tokio, h2, axum and hyper
//! with the features the SDK turns on. The conformance tests below and in
//! `tests/it/events.rs` hold this binding to the spec.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;

/// The only CloudEvents version there is.
pub const SPEC_VERSION: &str = "1.0";
/// The event types of the exchange (the contract is the `protocol` crate).
pub use protocol::events::{TRAIN_COMPLETED, TRAIN_REQUESTED};

/// Why a request is not an event fn-train can read (the route maps it to 400 or 415).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A required attribute is missing or malformed, or the body does not parse.
    #[error("{0}")]
    Malformed(String),
    /// Batch mode, or an event format other than JSON.
    #[error("{0}")]
    Unsupported(String),
}

/// How the event travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `ce-*` headers plus the data as body.
    Binary,
    /// One `application/cloudevents+json` document.
    Structured,
}

/// A received event: the four required attributes, the optional ones we keep, and the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `id`.
    pub id: String,
    /// `source` (URI-reference).
    pub source: String,
    /// `type`.
    pub ty: String,
    /// `datacontenttype`, if given.
    pub datacontenttype: Option<String>,
    /// Every other attribute (optional and extensions), as strings.
    pub attributes: BTreeMap<String, String>,
    /// The payload bytes (a JSON `data` member re-serialized).
    pub data: Bytes,
}

impl Event {
    /// True when the data is JSON by its content type (absent means JSON in structured mode
    /// and is accepted as JSON in binary mode too).
    pub fn data_is_json(&self) -> bool {
        self.datacontenttype
            .as_deref()
            .is_none_or(is_json_media_type)
    }
}

/// `application/json`, `text/json`, `*/*+json`, with or without parameters.
pub fn is_json_media_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.ends_with("/json") || essence.ends_with("+json")
}

/// Reads an event from a request's headers and body.
///
/// # Errors
/// [`EventError::Malformed`] naming the missing or malformed attribute;
/// [`EventError::Unsupported`] for batch mode or a non-JSON event format.
pub fn parse(headers: &HeaderMap, body: Bytes) -> Result<(Event, Mode), EventError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/cloudevents-batch") {
        return Err(EventError::Unsupported(
            "batched CloudEvents are not accepted; send one event per request".to_owned(),
        ));
    }
    if content_type.starts_with("application/cloudevents") {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence != "application/cloudevents+json" {
            return Err(EventError::Unsupported(format!(
                "structured event format {essence:?} is not supported; use application/cloudevents+json"
            )));
        }
        return parse_structured(&body).map(|e| (e, Mode::Structured));
    }
    parse_binary(headers, body).map(|e| (e, Mode::Binary))
}

fn parse_binary(headers: &HeaderMap, body: Bytes) -> Result<Event, EventError> {
    let mut attributes = BTreeMap::new();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let raw = value
            .to_str()
            .map_err(|_| EventError::Malformed(format!("header {name} is not visible ASCII")))?;
        let decoded = percent_decode(unquote(raw)).ok_or_else(|| {
            EventError::Malformed(format!("header {name} has a bad percent-encoding"))
        })?;
        if attributes.insert(attr.to_owned(), decoded).is_some() {
            return Err(EventError::Malformed(format!(
                "header {name} appears more than once"
            )));
        }
    }
    if attributes.is_empty() {
        return Err(EventError::Malformed(
            "not a CloudEvent: no ce-* headers and Content-Type is not application/cloudevents+json"
                .to_owned(),
        ));
    }
    if attributes.contains_key("datacontenttype") {
        return Err(EventError::Malformed(
            "binary mode carries datacontenttype in Content-Type; ce-datacontenttype must not be sent"
                .to_owned(),
        ));
    }
    let datacontenttype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    finish(attributes, datacontenttype, body, "ce-")
}

fn parse_structured(body: &[u8]) -> Result<Event, EventError> {
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        EventError::Malformed(format!("structured CloudEvent is not valid JSON: {e}"))
    })?;
    let serde_json::Value::Object(members) = doc else {
        return Err(EventError::Malformed(
            "structured CloudEvent must be a JSON object".to_owned(),
        ));
    };
    let mut attributes = BTreeMap::new();
    let mut data = None;
    let mut data_base64 = None;
    for (name, value) in members {
        match (name.as_str(), value) {
            (_, serde_json::Value::Null) => {} // null means unset
            ("data", v) => data = Some(v),
            ("data_base64", serde_json::Value::String(s)) => data_base64 = Some(s),
            ("data_base64", _) => {
                return Err(EventError::Malformed(
                    "data_base64 must be a string".to_owned(),
                ));
            }
            (_, serde_json::Value::String(s)) => {
                attributes.insert(name, s);
            }
            // The spec types these as String (or URI, Timestamp: strings in JSON); a
            // number in their place is not a CloudEvent.
            (
                "specversion" | "id" | "source" | "type" | "datacontenttype" | "dataschema"
                | "subject" | "time",
                _,
            ) => {
                return Err(EventError::Malformed(format!(
                    "attribute {name:?} must be a JSON string"
                )));
            }
            (_, v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                attributes.insert(name, v.to_string());
            }
            (_, _) => {
                return Err(EventError::Malformed(format!(
                    "attribute {name:?} must be a string, number or boolean"
                )));
            }
        }
    }
    let datacontenttype = attributes.remove("datacontenttype");
    let payload = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err(EventError::Malformed(
                "data and data_base64 must not both be present".to_owned(),
            ));
        }
        (None, Some(b64)) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    EventError::Malformed(format!("data_base64 is not valid base64: {e}"))
                })?,
        ),
        (Some(serde_json::Value::String(s)), None)
            if !datacontenttype.as_deref().is_none_or(is_json_media_type) =>
        {
            Bytes::from(s.into_bytes())
        }
        (Some(v), None) => Bytes::from(v.to_string().into_bytes()),
        (None, None) => Bytes::new(),
    };
    finish(attributes, datacontenttype, payload, "")
}

/// Takes the required attributes out, checks them, keeps the rest.
fn finish(
    mut attributes: BTreeMap<String, String>,
    datacontenttype: Option<String>,
    data: Bytes,
    prefix: &str,
) -> Result<Event, EventError> {
    let missing: Vec<String> = ["id", "source", "specversion", "type"]
        .iter()
        .filter(|a| attributes.get(**a).is_none_or(String::is_empty))
        .map(|a| format!("{prefix}{a}"))
        .collect();
    if !missing.is_empty() {
        return Err(EventError::Malformed(format!(
            "CloudEvent lacks required attribute(s): {}",
            missing.join(", ")
        )));
    }
    let take = |m: &mut BTreeMap<String, String>, k: &str| m.remove(k).unwrap_or_default();
    let specversion = take(&mut attributes, "specversion");
    if specversion != SPEC_VERSION {
        return Err(EventError::Malformed(format!(
            "CloudEvent specversion {specversion:?} is not supported; only \"1.0\""
        )));
    }
    if let Some(bad) = attributes.keys().find(|k| !is_attribute_name(k)) {
        return Err(EventError::Malformed(format!(
            "CloudEvent attribute name {bad:?} is not lower-case letters and digits"
        )));
    }
    Ok(Event {
        id: take(&mut attributes, "id"),
        source: take(&mut attributes, "source"),
        ty: take(&mut attributes, "type"),
        datacontenttype,
        attributes,
        data,
    })
}

fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Undoes RFC 7230 double-quoted-string escaping, if the value is quoted.
fn unquote(raw: &str) -> std::borrow::Cow<'_, str> {
    match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            std::borrow::Cow::Owned(out)
        }
        None => std::borrow::Cow::Borrowed(raw),
    }
}

/// One round of percent-decoding (either hex case); `None` on a bad escape or bad UTF-8.
fn percent_decode(s: impl AsRef<str>) -> Option<String> {
    let bytes = s.as_ref().as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes space, `"`, `%` and everything outside U+0021..=U+007E (upper-case hex).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An extension value: CloudEvents Integer (32-bit signed) or String.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtValue {
    /// Integer.
    Int(i64),
    /// String.
    Str(String),
}

impl ExtValue {
    /// A u64 as an Integer when it fits in 32 bits signed, else as its decimal String.
    pub fn from_u64(v: u64) -> Self {
        if i32::try_from(v).is_ok() {
            ExtValue::Int(v as i64)
        } else {
            ExtValue::Str(v.to_string())
        }
    }

    fn to_header_string(&self) -> String {
        match self {
            ExtValue::Int(v) => v.to_string(),
            ExtValue::Str(s) => s.clone(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            ExtValue::Int(v) => serde_json::Value::from(*v),
            ExtValue::Str(s) => serde_json::Value::from(s.as_str()),
        }
    }
}

/// An event to send back: binary data with its content type.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Fresh id.
    pub id: String,
    /// Our source, `/fedge/fn-train/<client_id>`.
    pub source: String,
    /// Our type.
    pub ty: String,
    /// RFC 3339 time of emission.
    pub time: String,
    /// Optional subject.
    pub subject: Option<String>,
    /// Extension attributes (names `[a-z0-9]`).
    pub extensions: Vec<(String, ExtValue)>,
    /// Media type of `data`.
    pub datacontenttype: String,
    /// Payload bytes.
    pub data: Bytes,
}

impl Reply {
    /// A 200 response carrying this event in `mode`.
    pub fn into_response(self, mode: Mode) -> Response {
        match mode {
            Mode::Binary => self.into_binary(),
            Mode::Structured => self.into_structured(),
        }
    }

    fn into_binary(self) -> Response {
        let mut headers = HeaderMap::new();
        let mut put = |name: &str, value: &str| {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(format!("ce-{name}").as_bytes()),
                HeaderValue::from_str(&percent_encode(value)),
            ) {
                headers.insert(n, v);
            }
        };
        put("specversion", SPEC_VERSION);
        put("id", &self.id);
        put("source", &self.source);
        put("type", &self.ty);
        put("time", &self.time);
        if let Some(subject) = &self.subject {
            put("subject", subject);
        }
        for (name, value) in &self.extensions {
            put(name, &value.to_header_string());
        }
        if let Ok(ct) = HeaderValue::from_str(&self.datacontenttype) {
            headers.insert(header::CONTENT_TYPE, ct);
        }
        (StatusCode::OK, headers, self.data).into_response()
    }

    fn into_structured(self) -> Response {
        let mut doc = serde_json::Map::new();
        doc.insert("specversion".into(), SPEC_VERSION.into());
        doc.insert("id".into(), self.id.into());
        doc.insert("source".into(), self.source.into());
        doc.insert("type".into(), self.ty.into());
        doc.insert("time".into(), self.time.into());
        if let Some(subject) = self.subject {
            doc.insert("subject".into(), subject.into());
        }
        for (name, value) in &self.extensions {
            doc.insert(name.clone(), value.to_json());
        }
        doc.insert(
            "datacontenttype".into(),
            self.datacontenttype.clone().into(),
        );
        if is_json_media_type(&self.datacontenttype)
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&self.data)
        {
            doc.insert("data".into(), v);
        } else {
            doc.insert(
                "data_base64".into(),
                base64::engine::general_purpose::STANDARD
                    .encode(&self.data)
                    .into(),
            );
        }
        let body = serde_json::Value::Object(doc).to_string();
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/cloudevents+json; charset=utf-8",
            )],
            body,
        )
            .into_response()
    }
}

/// Now as RFC 3339 UTC with millisecond precision, e.g. `2026-08-22T10:16:41.123Z`.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_millis())
}

fn rfc3339(secs: u64, millis: u32) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's days-to-civil algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("ce-specversion", HeaderValue::from_static("1.0"));
        h.insert("Ce-Id", HeaderValue::from_static("abc"));
        h.insert("ce-source", HeaderValue::from_static("/fedge/aggregator"));
        h.insert("ce-type", HeaderValue::from_static(TRAIN_REQUESTED));
        h.insert("ce-subject", HeaderValue::from_static("round%203%20%C3%A9"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    }

    #[test]
    fn binary_mode_reads_headers_and_percent_decodes() {
        let (e, mode) = parse(&binary_headers(), Bytes::from_static(b"{\"round\":1}")).unwrap();
        assert_eq!(mode, Mode::Binary);
        assert_eq!((e.id.as_str(), e.ty.as_str()), ("abc", TRAIN_REQUESTED));
        assert_eq!(e.attributes["subject"], "round 3 é");
        assert!(e.data_is_json());
        assert_eq!(&e.data[..], b"{\"round\":1}");
    }

    #[test]
    fn binary_mode_names_missing_attributes_and_wrong_specversion() {
        let mut h = binary_headers();
        h.remove("ce-id");
        h.remove("ce-type");
        let err = parse(&h, Bytes::new()).unwrap_err().to_string();
        assert!(err.contains("ce-id") && err.contains("ce-type"), "{err}");
        let mut h = binary_headers();
        h.insert("ce-specversion", HeaderValue::from_static("0.3"));
        assert!(
            parse(&h, Bytes::new())
                .unwrap_err()
                .to_string()
                .contains("specversion")
        );
        let err = parse(&HeaderMap::new(), Bytes::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a CloudEvent"), "{err}");
    }

    #[test]
    fn structured_mode_reads_json_data_and_data_base64() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/CloudEvents+JSON; charset=UTF-8"),
        );
        let doc =
            br#"{"specversion":"1.0","id":"1","source":"/a","type":"t","round":7,"data":{"x":1}}"#;
        let (e, mode) = parse(&h, Bytes::from_static(doc)).unwrap();
        assert_eq!(mode, Mode::Structured);
        assert_eq!(e.attributes["round"], "7");
        assert_eq!(&e.data[..], b"{\"x\":1}");
        let doc =
            br#"{"specversion":"1.0","id":"1","source":"/a","type":"t","data_base64":"AQID"}"#;
        let (e, _) = parse(&h, Bytes::from_static(doc)).unwrap();
        assert_eq!(&e.data[..], &[1, 2, 3]);
        let doc = br#"{"specversion":"1.0","id":"1","source":"/a","type":"t","data":1,"data_base64":"AQID"}"#;
        assert!(parse(&h, Bytes::from_static(doc)).is_err());
        let doc = br#"{"specversion":"2.0","id":"1","source":"/a","type":"t"}"#;
        assert!(
            parse(&h, Bytes::from_static(doc))
                .unwrap_err()
                .to_string()
                .contains("specversion")
        );
        // Numbers where the spec says String are refused, not stringified.
        for doc in [
            &br#"{"specversion":1.0,"id":"1","source":"/a","type":"t"}"#[..],
            br#"{"specversion":"1.0","id":1,"source":"/a","type":"t"}"#,
        ] {
            let err = parse(&h, Bytes::copy_from_slice(doc)).unwrap_err();
            assert!(err.to_string().contains("JSON string"), "{err}");
        }
        let doc = br#"{"specversion":"1.0","source":"/a","type":"t"}"#;
        assert!(
            parse(&h, Bytes::from_static(doc))
                .unwrap_err()
                .to_string()
                .contains("id")
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/cloudevents-batch+json"),
        );
        assert!(matches!(
            parse(&h, Bytes::from_static(b"[]")),
            Err(EventError::Unsupported(_))
        ));
    }

    #[test]
    fn percent_encoding_round_trips() {
        for s in [
            "plain",
            "with space",
            "quote\"pct%",
            "ünï€",
            "/fedge/fn-train/node-1",
        ] {
            let enc = percent_encode(s);
            assert!(enc.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"'));
            assert_eq!(percent_decode(&enc).unwrap(), s);
        }
        assert_eq!(percent_decode("%c3%a9").unwrap(), "é");
        assert!(percent_decode("%zz").is_none());
        assert!(percent_decode("%ff").is_none());
    }

    #[test]
    fn reply_in_both_modes_carries_the_required_attributes() {
        let reply = Reply {
            id: service::random::uuid_v4().unwrap(),
            source: "/fedge/fn-train/node-1".into(),
            ty: TRAIN_COMPLETED.into(),
            time: now_rfc3339(),
            subject: None,
            extensions: vec![("round".into(), ExtValue::from_u64(3))],
            datacontenttype: "application/octet-stream".into(),
            data: Bytes::from_static(&[0, 1, 2]),
        };
        let r = reply.clone().into_response(Mode::Binary);
        assert_eq!(r.headers()["ce-specversion"], "1.0");
        assert_eq!(r.headers()["ce-round"], "3");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/octet-stream"
        );
        let (parsed, _) = parse(r.headers(), Bytes::from_static(&[0, 1, 2])).unwrap();
        assert_eq!(parsed.ty, TRAIN_COMPLETED);
        let r = reply.into_response(Mode::Structured);
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/cloudevents+json")
        );
    }

    #[test]
    fn ids_are_fresh_and_time_is_rfc3339() {
        let id = || service::random::uuid_v4().unwrap();
        assert_ne!(id(), id());
        assert_eq!(id().len(), 36);
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_787_393_801, 123), "2026-08-22T10:16:41.123Z");
        assert_eq!(
            ExtValue::from_u64(1 << 40),
            ExtValue::Str("1099511627776".into())
        );
    }
}
