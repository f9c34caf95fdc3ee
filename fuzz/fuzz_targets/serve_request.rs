//! fn-serve's request decoders: KServe V2 JSON, V2 with binary tensor data, TF-Serving V1.
//! Any body is an error or a request, never a panic; the outcome does not depend on how the
//! body is cut into chunks (it arrives from the network in arbitrary pieces); and every byte
//! of the memory budget comes back once the request is gone.
//!
//! Input: byte 0 picks the protocol, byte 1 the chunk length, bytes 2-3 the JSON header
//! length of a binary V2 body; the rest is the body. The model takes 1x2x2 images so that
//! short inputs can be valid requests.
#![no_main]

use fn_serve::ApiError;
use fn_serve::codec::ModelInput;
use fn_serve::codec::images::{Budget, Chunks, ImageBuf};
use fn_serve::codec::json::Tokenizer;
use fn_serve::codec::v1::V1Decoder;
use fn_serve::codec::v2::{BinaryInput, V2Decoder};
use libfuzzer_sys::fuzz_target;

const MODEL: ModelInput = ModelInput { shape: [1, 2, 2] };
const MAX_BATCH: usize = 64;

#[derive(Clone, Copy)]
enum Protocol {
    V1,
    V2Json,
    V2Binary { header_len: usize },
}

/// What a decoded request holds, comparable across chunkings.
#[derive(Debug, PartialEq)]
enum Pixels {
    F32(Vec<u32>),
    U8(Vec<u8>),
}

fn pixels(buf: &ImageBuf) -> Pixels {
    match buf.chunks() {
        Chunks::F32(c) => Pixels::F32(c.iter().flatten().map(|v| v.to_bits()).collect()),
        Chunks::U8(c) => Pixels::U8(c.iter().flatten().copied().collect()),
    }
}

fn in_chunks<'a>(bytes: &'a [u8], len: usize) -> impl Iterator<Item = &'a [u8]> {
    bytes.chunks(len.max(1))
}

fn decode(
    protocol: Protocol,
    body: &[u8],
    chunk: usize,
    budget: &Budget,
) -> Result<Pixels, ApiError> {
    let mut tok = Tokenizer::new();
    match protocol {
        Protocol::V1 => {
            let mut dec = V1Decoder::new(MODEL, MAX_BATCH, budget.clone());
            for piece in in_chunks(body, chunk) {
                tok.feed(piece, &mut dec)?;
            }
            tok.finish(&mut dec)?;
            let req = dec.finish()?;
            assert_eq!(req.images * 4, req.data.len());
            Ok(pixels(&req.data))
        }
        Protocol::V2Json | Protocol::V2Binary { .. } => {
            let (json, binary, rest) = match protocol {
                Protocol::V2Binary { header_len } => {
                    let (json, rest) = body.split_at(header_len.min(body.len()));
                    (json, true, rest)
                }
                _ => (body, false, &[][..]),
            };
            let mut dec = V2Decoder::new(MODEL, MAX_BATCH, budget.clone());
            for piece in in_chunks(json, chunk) {
                tok.feed(piece, &mut dec)?;
            }
            tok.finish(&mut dec)?;
            let mut req = dec.finish(binary)?;
            if let Some(size) = req.binary_size {
                let mut input = BinaryInput::new(&req, size, MAX_BATCH, budget.clone(), 4);
                for piece in in_chunks(rest, chunk) {
                    input.feed(piece)?;
                }
                req.data = Some(input.finish()?);
            } else if !rest.is_empty() {
                return Err(ApiError::bad("binary data but no binary input"));
            }
            let data = req
                .data
                .as_ref()
                .expect("a decoded V2 request holds its data");
            assert_eq!(req.images * 4, data.len());
            Ok(pixels(data))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let protocol = match data[0] % 3 {
        0 => Protocol::V1,
        1 => Protocol::V2Json,
        _ => Protocol::V2Binary {
            header_len: usize::from(u16::from_le_bytes([data[2], data[3]])),
        },
    };
    let chunk = usize::from(data[1] % 16) + 1;
    let body = &data[4..];
    let budget = Budget::new(1 << 20);
    let whole = decode(protocol, body, usize::MAX, &budget);
    let pieces = decode(protocol, body, chunk, &budget);
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "chunks of {chunk} decode differently"),
        (Err(_), Err(_)) => {}
        _ => panic!("whole body {whole:?} but chunks of {chunk} {pieces:?}"),
    }
    drop((whole, pieces));
    assert_eq!(budget.in_use(), 0, "budget not returned");
});
