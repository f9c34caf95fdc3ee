//! A resumable push tokenizer for JSON: feed it the body chunk by chunk as it arrives,
//! and it calls a [`Sink`] for every token. Nothing is kept but the container stack and
//! the one token that straddles a chunk boundary, so a 50 MB body is decoded with the
//! memory of its numbers, never of its text.
//!
//! Numbers reach the sink as their raw text (already checked against the JSON grammar);
//! strings and keys unescaped. Limits: nesting depth and string length, both small.

/// Why a body is not JSON (the tokenizer's own error; the service decides the status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset in the document.
    pub at: u64,
    /// What is wrong there.
    pub what: String,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed JSON at byte {}: {}", self.at, self.what)
    }
}

impl std::error::Error for JsonError {}

/// Receives the tokens of one JSON document, in order.
pub trait Sink {
    /// What the sink fails with; the tokenizer's own errors convert into it.
    type Error: From<JsonError>;
    /// `{`
    fn begin_object(&mut self) -> Result<(), Self::Error>;
    /// `}`
    fn end_object(&mut self) -> Result<(), Self::Error>;
    /// `[`
    fn begin_array(&mut self) -> Result<(), Self::Error>;
    /// `]`
    fn end_array(&mut self) -> Result<(), Self::Error>;
    /// An object key (unescaped).
    fn key(&mut self, key: &str) -> Result<(), Self::Error>;
    /// A string value (unescaped).
    fn string(&mut self, value: &str) -> Result<(), Self::Error>;
    /// A number, as its JSON text.
    fn number(&mut self, raw: &str) -> Result<(), Self::Error>;
    /// `true` / `false`.
    fn boolean(&mut self, value: bool) -> Result<(), Self::Error>;
    /// `null`.
    fn null(&mut self) -> Result<(), Self::Error>;
}

const MAX_DEPTH: usize = 64;
const MAX_STRING: usize = 64 * 1024;
const MAX_TOKEN: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// A value (document start, after `:` or after `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ValueOrEnd,
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object: a key.
    Key,
    /// After a key.
    Colon,
    /// After a value inside a container.
    CommaOrEnd,
    /// The document is complete: only whitespace may follow.
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Token {
    None,
    /// Inside a string; `key` tells whether it is an object key.
    Str {
        key: bool,
    },
    /// After a backslash in a string.
    Escape {
        key: bool,
    },
    /// Collecting the 4 hex digits of `\u`.
    Unicode {
        key: bool,
        digits: u8,
        code: u32,
    },
    Number,
    Literal,
}

/// The tokenizer. One per document.
#[derive(Debug)]
pub struct Tokenizer {
    /// `true` = object, `false` = array.
    stack: Vec<bool>,
    expect: Expect,
    token: Token,
    buf: Vec<u8>,
    /// A high surrogate waiting for its low half.
    high_surrogate: Option<u32>,
    /// Bytes consumed before the current chunk (for error positions).
    offset: u64,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new()
    }
}

fn err_at<E: From<JsonError>>(pos: u64, what: impl std::fmt::Display) -> E {
    E::from(JsonError {
        at: pos,
        what: what.to_string(),
    })
}

fn is_number_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
}

/// Checks `s` against the JSON number grammar.
fn valid_number(s: &[u8]) -> bool {
    let mut i = 0;
    if s.first() == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while matches!(s.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while matches!(s.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while matches!(s.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == s.len()
}

impl Tokenizer {
    /// A tokenizer at the start of a document.
    pub fn new() -> Self {
        Self {
            stack: Vec::with_capacity(8),
            expect: Expect::Value,
            token: Token::None,
            buf: Vec::new(),
            high_surrogate: None,
            offset: 0,
        }
    }

    /// Whether a complete document has been read.
    pub fn is_done(&self) -> bool {
        self.expect == Expect::Done && self.token == Token::None
    }

    /// Feeds the next chunk of the document.
    pub fn feed<S: Sink>(&mut self, chunk: &[u8], sink: &mut S) -> Result<(), S::Error> {
        let mut i = 0;
        let n = chunk.len();
        while i < n {
            match self.token {
                Token::None => {}
                Token::Number => {
                    let start = i;
                    while i < n && is_number_byte(chunk[i]) {
                        i += 1;
                    }
                    if i == n {
                        self.push_token_bytes(&chunk[start..], start)?;
                        break;
                    }
                    if self.buf.is_empty() {
                        // The whole number is in this chunk: no copy.
                        self.finish_number_slice(&chunk[start..i], start, sink)?;
                    } else {
                        self.push_token_bytes(&chunk[start..i], start)?;
                        let text = std::mem::take(&mut self.buf);
                        let r = self.finish_number_slice(&text, i, sink);
                        self.buf = text;
                        self.buf.clear();
                        r?;
                    }
                    continue;
                }
                Token::Literal => {
                    let start = i;
                    while i < n && chunk[i].is_ascii_alphabetic() {
                        i += 1;
                    }
                    self.push_token_bytes(&chunk[start..i], start)?;
                    if i == n {
                        break;
                    }
                    self.finish_literal(i, sink)?;
                    continue;
                }
                Token::Str { .. } | Token::Escape { .. } | Token::Unicode { .. } => {
                    i = self.string_bytes(chunk, i, sink)?;
                    continue;
                }
            }
            // Structural position.
            let b = chunk[i];
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let pos = self.offset + i as u64;
            match self.expect {
                Expect::Done => return Err(err_at(pos, "unexpected data after the document")),
                Expect::Colon => {
                    if b != b':' {
                        return Err(err_at(pos, "expected ':' after an object key"));
                    }
                    self.expect = Expect::Value;
                }
                Expect::KeyOrEnd | Expect::Key => {
                    if b == b'"' {
                        self.token = Token::Str { key: true };
                        self.buf.clear();
                    } else if b == b'}' && self.expect == Expect::KeyOrEnd {
                        self.close(true, pos, sink)?;
                    } else {
                        return Err(err_at(pos, "expected an object key (a string)"));
                    }
                }
                Expect::CommaOrEnd => match (b, self.stack.last()) {
                    (b',', Some(true)) => self.expect = Expect::Key,
                    (b',', Some(false)) => self.expect = Expect::Value,
                    (b'}', Some(true)) => self.close(true, pos, sink)?,
                    (b']', Some(false)) => self.close(false, pos, sink)?,
                    _ => return Err(err_at(pos, "expected ',' or the end of the container")),
                },
                Expect::Value | Expect::ValueOrEnd => {
                    if b == b']' && self.expect == Expect::ValueOrEnd {
                        self.close(false, pos, sink)?;
                    } else if !self.begin_value(b, pos, sink)? {
                        // A number or literal starts at this byte: its state reads it.
                        continue;
                    }
                }
            }
            i += 1;
        }
        self.offset += n as u64;
        Ok(())
    }

    /// Ends the document: a number may still be pending, and the document must be complete.
    pub fn finish<S: Sink>(&mut self, sink: &mut S) -> Result<(), S::Error> {
        match self.token {
            Token::Number => {
                let text = std::mem::take(&mut self.buf);
                self.finish_number_slice(&text, 0, sink)?;
            }
            Token::Literal => self.finish_literal(0, sink)?,
            Token::None => {}
            _ => return Err(err_at(self.offset, "unterminated string")),
        }
        if self.expect != Expect::Done {
            return Err(err_at(self.offset, "unexpected end of the document"));
        }
        Ok(())
    }

    fn push_token_bytes(&mut self, bytes: &[u8], at: usize) -> Result<(), JsonError> {
        if self.buf.len() + bytes.len() > MAX_TOKEN {
            return Err(err_at(self.offset + at as u64, "token too long"));
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Starts a value at byte `b`; returns whether `b` was consumed.
    fn begin_value<S: Sink>(&mut self, b: u8, pos: u64, sink: &mut S) -> Result<bool, S::Error> {
        match b {
            b'{' | b'[' => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(err_at(pos, format!("nesting deeper than {MAX_DEPTH}")));
                }
                let object = b == b'{';
                self.stack.push(object);
                if object {
                    self.expect = Expect::KeyOrEnd;
                    sink.begin_object()?;
                } else {
                    self.expect = Expect::ValueOrEnd;
                    sink.begin_array()?;
                }
                Ok(true)
            }
            b'"' => {
                self.token = Token::Str { key: false };
                self.buf.clear();
                Ok(true)
            }
            b'-' | b'0'..=b'9' => {
                self.token = Token::Number;
                self.buf.clear();
                Ok(false)
            }
            b if b.is_ascii_alphabetic() => {
                self.token = Token::Literal;
                self.buf.clear();
                Ok(false)
            }
            _ => Err(err_at(pos, format!("unexpected character {:?}", b as char))),
        }
    }

    fn close<S: Sink>(&mut self, object: bool, pos: u64, sink: &mut S) -> Result<(), S::Error> {
        match self.stack.pop() {
            Some(o) if o == object => {}
            _ => return Err(err_at(pos, "mismatched closing bracket")),
        }
        if object {
            sink.end_object()?;
        } else {
            sink.end_array()?;
        }
        self.after_value();
        Ok(())
    }

    fn after_value(&mut self) {
        self.expect = if self.stack.is_empty() {
            Expect::Done
        } else {
            Expect::CommaOrEnd
        };
    }

    fn finish_number_slice<S: Sink>(
        &mut self,
        text: &[u8],
        at: usize,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        self.token = Token::None;
        if !valid_number(text) {
            return Err(err_at(
                self.offset + at as u64,
                format!("invalid number {:?}", String::from_utf8_lossy(text)),
            ));
        }
        // The grammar check leaves only ASCII.
        let s = std::str::from_utf8(text).map_err(|_| err_at(self.offset, "invalid number"))?;
        sink.number(s)?;
        self.after_value();
        Ok(())
    }

    fn finish_literal<S: Sink>(&mut self, at: usize, sink: &mut S) -> Result<(), S::Error> {
        self.token = Token::None;
        let pos = self.offset + at as u64;
        match self.buf.as_slice() {
            b"true" => sink.boolean(true)?,
            b"false" => sink.boolean(false)?,
            b"null" => sink.null()?,
            b"NaN" | b"Infinity" | b"inf" | b"nan" => {
                return Err(err_at(
                    pos,
                    "NaN and Infinity are not JSON numbers; tensor values must be finite",
                ));
            }
            other => {
                return Err(err_at(
                    pos,
                    format!("unknown literal {:?}", String::from_utf8_lossy(other)),
                ));
            }
        }
        self.buf.clear();
        self.after_value();
        Ok(())
    }

    /// Consumes string bytes from `chunk[i..]`; returns the next index.
    fn string_bytes<S: Sink>(
        &mut self,
        chunk: &[u8],
        mut i: usize,
        sink: &mut S,
    ) -> Result<usize, S::Error> {
        let n = chunk.len();
        while i < n {
            match self.token {
                Token::Str { key } => {
                    let start = i;
                    while i < n && chunk[i] != b'"' && chunk[i] != b'\\' && chunk[i] >= 0x20 {
                        i += 1;
                    }
                    if self.buf.len() + (i - start) > MAX_STRING {
                        return Err(err_at(
                            self.offset + i as u64,
                            format!("string longer than {MAX_STRING} bytes"),
                        ));
                    }
                    self.buf.extend_from_slice(&chunk[start..i]);
                    if i == n {
                        return Ok(i);
                    }
                    let b = chunk[i];
                    i += 1;
                    match b {
                        b'"' => {
                            self.end_string(key, i, sink)?;
                            return Ok(i);
                        }
                        b'\\' => self.token = Token::Escape { key },
                        _ => {
                            return Err(err_at(
                                self.offset + i as u64,
                                "control character in a string",
                            ));
                        }
                    }
                }
                Token::Escape { key } => {
                    let b = chunk[i];
                    i += 1;
                    let out = match b {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            self.token = Token::Unicode {
                                key,
                                digits: 0,
                                code: 0,
                            };
                            continue;
                        }
                        _ => return Err(err_at(self.offset + i as u64, "invalid escape")),
                    };
                    self.flush_surrogate();
                    self.buf.push(out);
                    self.token = Token::Str { key };
                }
                Token::Unicode { key, digits, code } => {
                    let b = chunk[i];
                    i += 1;
                    let d = (b as char)
                        .to_digit(16)
                        .ok_or_else(|| err_at(self.offset + i as u64, "invalid \\u escape"))?;
                    let code = code * 16 + d;
                    if digits < 3 {
                        self.token = Token::Unicode {
                            key,
                            digits: digits + 1,
                            code,
                        };
                        continue;
                    }
                    self.push_code_unit(code);
                    self.token = Token::Str { key };
                }
                _ => return Ok(i),
            }
        }
        Ok(i)
    }

    fn push_code_unit(&mut self, code: u32) {
        let ch = match (self.high_surrogate.take(), code) {
            (Some(hi), 0xDC00..=0xDFFF) => {
                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (code - 0xDC00))
            }
            (prev, 0xD800..=0xDBFF) => {
                if prev.is_some() {
                    self.push_char(char::REPLACEMENT_CHARACTER);
                }
                self.high_surrogate = Some(code);
                return;
            }
            (prev, _) => {
                if prev.is_some() {
                    self.push_char(char::REPLACEMENT_CHARACTER);
                }
                char::from_u32(code)
            }
        };
        self.push_char(ch.unwrap_or(char::REPLACEMENT_CHARACTER));
    }

    fn flush_surrogate(&mut self) {
        if self.high_surrogate.take().is_some() {
            self.push_char(char::REPLACEMENT_CHARACTER);
        }
    }

    fn push_char(&mut self, ch: char) {
        let mut tmp = [0u8; 4];
        self.buf
            .extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
    }

    fn end_string<S: Sink>(&mut self, key: bool, at: usize, sink: &mut S) -> Result<(), S::Error> {
        self.flush_surrogate();
        self.token = Token::None;
        let text = std::mem::take(&mut self.buf);
        let s = std::str::from_utf8(&text)
            .map_err(|_| err_at(self.offset + at as u64, "string is not valid UTF-8"))?;
        let r = if key {
            self.expect = Expect::Colon;
            sink.key(s)
        } else {
            let r = sink.string(s);
            self.after_value();
            r
        };
        self.buf = text;
        self.buf.clear();
        r
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Records tokens as a compact string, e.g. `{k:n1,[s"a"]}`.
    #[derive(Default)]
    pub struct Record(pub String);

    impl Sink for Record {
        type Error = JsonError;
        fn begin_object(&mut self) -> Result<(), JsonError> {
            self.0.push('{');
            Ok(())
        }
        fn end_object(&mut self) -> Result<(), JsonError> {
            self.0.push('}');
            Ok(())
        }
        fn begin_array(&mut self) -> Result<(), JsonError> {
            self.0.push('[');
            Ok(())
        }
        fn end_array(&mut self) -> Result<(), JsonError> {
            self.0.push(']');
            Ok(())
        }
        fn key(&mut self, key: &str) -> Result<(), JsonError> {
            self.0.push_str(&format!("k{key}:"));
            Ok(())
        }
        fn string(&mut self, value: &str) -> Result<(), JsonError> {
            self.0.push_str(&format!("s{value:?},"));
            Ok(())
        }
        fn number(&mut self, raw: &str) -> Result<(), JsonError> {
            self.0.push_str(&format!("n{raw},"));
            Ok(())
        }
        fn boolean(&mut self, value: bool) -> Result<(), JsonError> {
            self.0.push_str(&format!("b{value},"));
            Ok(())
        }
        fn null(&mut self) -> Result<(), JsonError> {
            self.0.push_str("null,");
            Ok(())
        }
    }

    fn tokens_in_chunks(doc: &[u8], chunk: usize) -> Result<String, JsonError> {
        let mut t = Tokenizer::new();
        let mut r = Record::default();
        for c in doc.chunks(chunk.max(1)) {
            t.feed(c, &mut r)?;
        }
        t.finish(&mut r)?;
        Ok(r.0)
    }

    const DOC: &str = r#" {"id": "a\"b\u00e9\ud83d\ude00", "n": [1, -2.5e3, 0.125, [true,false,null]],
        "o": {}, "e": [] , "z": 0} "#;

    #[test]
    fn every_chunking_gives_the_same_tokens() {
        let whole = tokens_in_chunks(DOC.as_bytes(), DOC.len()).unwrap();
        assert_eq!(
            whole,
            "{kid:s\"a\\\"bé😀\",kn:[n1,n-2.5e3,n0.125,[btrue,bfalse,null,]]ko:{}ke:[]kz:n0,}"
        );
        for size in 1..12 {
            assert_eq!(
                tokens_in_chunks(DOC.as_bytes(), size).unwrap(),
                whole,
                "{size}"
            );
        }
    }

    #[test]
    fn top_level_scalars() {
        assert_eq!(tokens_in_chunks(b"12", 1).unwrap(), "n12,");
        assert_eq!(tokens_in_chunks(b" true ", 2).unwrap(), "btrue,");
    }

    #[test]
    fn malformed_documents_are_rejected_with_a_position() {
        for bad in [
            &b"{"[..],
            b"{\"a\" 1}",
            b"[1,]",
            b"[01]",
            b"[1.]",
            b"[-]",
            b"[1e]",
            b"{\"a\":1,}",
            b"[1] x",
            b"[NaN]",
            b"[Infinity]",
            b"[tru]",
            b"\"abc",
            b"[1}",
            b"{\"a\":1]",
            b"[\"\\x\"]",
            b"",
            b"]",
        ] {
            for size in [1, 3, 100] {
                let e = tokens_in_chunks(bad, size).unwrap_err();
                assert!(
                    e.to_string().contains("malformed JSON"),
                    "{:?}: {e}",
                    String::from_utf8_lossy(bad)
                );
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(tokens_in_chunks(deep.as_bytes(), 7).is_err());
    }
}
