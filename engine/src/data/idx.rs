//! The IDX format of the MNIST files, raw or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number (`0x00 0x00`, the element type, the number of
//! dimensions), one big-endian u32 per dimension, then the elements row-major. fedge reads
//! two kinds, both of u8 elements: images (`0x00000803`, dimensions `[N, rows, cols]`) and
//! labels (`0x00000801`, `[N]`).
//!
//! Readers detect gzip by its magic bytes (`1f 8b`), whatever the file is called, and check
//! the magic number, the dimensions and that exactly the announced number of bytes follows.
//! A header's claimed size is never trusted for allocation: it is capped by
//! [`MAX_BODY_BYTES`], and a raw file's body must match the file's real length before any
//! buffer is sized from it; a compressed body is read incrementally and measured.
//! Writers produce gzip when the file name ends in `.gz` and replace files atomically.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::Dataset;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// Magic number of an IDX file of u8 images `[N, rows, cols]`.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels `[N]`.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Largest element payload accepted from one file (1 GiB): a header claiming more is refused
/// before anything is read. MNIST's largest file holds 47,040,000 bytes.
pub const MAX_BODY_BYTES: u64 = 1 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The two kinds of IDX file fedge reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Images,
    Labels,
}

impl Kind {
    fn magic(self) -> u32 {
        match self {
            Kind::Images => IMAGES_MAGIC,
            Kind::Labels => LABELS_MAGIC,
        }
    }
    fn ndims(self) -> usize {
        match self {
            Kind::Images => 3,
            Kind::Labels => 1,
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Kind::Images => "images",
            Kind::Labels => "labels",
        }
    }
    fn header_len(self) -> u64 {
        4 + 4 * self.ndims() as u64
    }
}

/// A parsed IDX file: its dimensions and its elements.
struct Idx {
    dims: Vec<usize>,
    body: Vec<u8>,
}

/// Reads an IDX image file (raw or gzip): returns `(pixels, count, rows, cols)` with
/// `pixels` `[count, rows, cols]` row-major.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or read; [`Error::Data`], naming the file,
/// for a wrong magic number, a zero image dimension, a truncated or oversized body, or a
/// corrupt gzip stream.
pub fn read_images(path: &Path) -> Result<(Vec<u8>, usize, usize, usize)> {
    let idx = read_file(path, Kind::Images)?;
    Ok((idx.body, idx.dims[0], idx.dims[1], idx.dims[2]))
}

/// Reads an IDX label file (raw or gzip).
///
/// # Errors
/// As [`read_images`].
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    Ok(read_file(path, Kind::Labels)?.body)
}

/// Reads an image file and its label file into a [`Dataset`], checking that the counts agree.
///
/// # Errors
/// As [`read_images`], and [`Error::Data`] when the two files disagree on the count.
pub fn read_dataset(images_path: &Path, labels_path: &Path) -> Result<Dataset> {
    let (pixels, count, rows, cols) = read_images(images_path)?;
    let labels = read_labels(labels_path)?;
    if labels.len() != count {
        return Err(Error::Data(format!(
            "{} holds {count} images but {} holds {} labels",
            images_path.display(),
            labels_path.display(),
            labels.len()
        )));
    }
    Dataset::new(pixels, labels, rows, cols)
}

/// Parses IDX image bytes (raw or gzip) held in memory; see [`read_images`].
///
/// # Errors
/// As [`read_images`], naming the source `<bytes>`.
pub fn parse_images(bytes: &[u8]) -> Result<(Vec<u8>, usize, usize, usize)> {
    let idx = parse_bytes(bytes, Kind::Images)?;
    Ok((idx.body, idx.dims[0], idx.dims[1], idx.dims[2]))
}

/// Parses IDX label bytes (raw or gzip) held in memory; see [`read_labels`].
///
/// # Errors
/// As [`read_labels`], naming the source `<bytes>`.
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<u8>> {
    Ok(parse_bytes(bytes, Kind::Labels)?.body)
}

/// Encodes images as raw (uncompressed) IDX bytes.
///
/// # Errors
/// [`Error::InvalidArgument`] when `pixels.len() != count * rows * cols` or a dimension
/// does not fit the format's u32.
pub fn encode_images(pixels: &[u8], count: usize, rows: usize, cols: usize) -> Result<Vec<u8>> {
    let expected = count.checked_mul(rows).and_then(|v| v.checked_mul(cols));
    if expected != Some(pixels.len()) {
        return Err(Error::InvalidArgument(format!(
            "{count} images of {rows}x{cols} need {} bytes, got {}",
            expected.map_or_else(|| "more".to_string(), |e| e.to_string()),
            pixels.len()
        )));
    }
    encode(Kind::Images, &[count, rows, cols], pixels)
}

/// Encodes labels as raw (uncompressed) IDX bytes.
///
/// # Errors
/// [`Error::InvalidArgument`] when there are more labels than the format's u32 counts.
pub fn encode_labels(labels: &[u8]) -> Result<Vec<u8>> {
    encode(Kind::Labels, &[labels.len()], labels)
}

/// Writes an IDX image file atomically, gzip-compressed when `path` ends in `.gz`.
///
/// # Errors
/// As [`encode_images`], and [`Error::Io`] naming the file.
pub fn write_images(
    path: &Path,
    pixels: &[u8],
    count: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    write_file(path, &encode_images(pixels, count, rows, cols)?)
}

/// Writes an IDX label file atomically, gzip-compressed when `path` ends in `.gz`.
///
/// # Errors
/// As [`encode_labels`], and [`Error::Io`] naming the file.
pub fn write_labels(path: &Path, labels: &[u8]) -> Result<()> {
    write_file(path, &encode_labels(labels)?)
}

fn encode(kind: Kind, dims: &[usize], body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(kind.header_len() as usize + body.len());
    out.extend_from_slice(&kind.magic().to_be_bytes());
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| {
            Error::InvalidArgument(format!("IDX dimension {d} does not fit in a u32"))
        })?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(body);
    Ok(out)
}

fn write_file(path: &Path, raw: &[u8]) -> Result<()> {
    let gz = path.extension().is_some_and(|e| e == "gz");
    write_atomic(path, |file| {
        let io = |e| Error::io(path, e);
        if gz {
            let mut enc = GzEncoder::new(file, Compression::default());
            enc.write_all(raw).map_err(io)?;
            enc.finish().map_err(io)?;
            Ok(())
        } else {
            file.write_all(raw).map_err(io)
        }
    })
}

fn read_file(path: &Path, kind: Kind) -> Result<Idx> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let source = path.display().to_string();
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.starts_with(&GZIP_MAGIC) {
        parse(GzDecoder::new(reader), &source, kind, None, true)
    } else {
        let body_len = file_len.saturating_sub(kind.header_len());
        parse(reader, &source, kind, Some(body_len), false)
    }
}

fn parse_bytes(bytes: &[u8], kind: Kind) -> Result<Idx> {
    if bytes.starts_with(&GZIP_MAGIC) {
        parse(GzDecoder::new(bytes), "<bytes>", kind, None, true)
    } else {
        let body_len = (bytes.len() as u64).saturating_sub(kind.header_len());
        parse(bytes, "<bytes>", kind, Some(body_len), false)
    }
}

/// Parses one IDX stream. `known_body_len` is the real number of bytes after the header
/// when it is known up front (raw files), which lets a lying header be refused before any
/// allocation; otherwise the body is read incrementally up to one byte past the claim.
fn parse<R: Read>(
    mut reader: R,
    source: &str,
    kind: Kind,
    known_body_len: Option<u64>,
    gzip: bool,
) -> Result<Idx> {
    let read_err = |e: std::io::Error, what: &str| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Data(format!("{source}: truncated {what}"))
        } else if gzip {
            Error::Data(format!("{source}: corrupt gzip stream ({what}): {e}"))
        } else {
            Error::io(source, e)
        }
    };
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|e| read_err(e, "header"))?;
    let magic = u32::from_be_bytes(magic);
    if magic != kind.magic() {
        return Err(Error::Data(format!(
            "{source}: magic number {magic:#010x} is not that of IDX {} ({:#010x})",
            kind.noun(),
            kind.magic()
        )));
    }
    let mut dims = Vec::with_capacity(kind.ndims());
    for _ in 0..kind.ndims() {
        let mut d = [0u8; 4];
        reader
            .read_exact(&mut d)
            .map_err(|e| read_err(e, "header"))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    if kind == Kind::Images && (dims[1] == 0 || dims[2] == 0) {
        return Err(Error::Data(format!(
            "{source}: image size {}x{} has a zero dimension",
            dims[1], dims[2]
        )));
    }
    // u32 dimensions: the product of three fits a u128 without overflow.
    let claimed: u128 = dims.iter().map(|&d| d as u128).product();
    let describe = || match kind {
        Kind::Images => format!("{} images of {}x{}", dims[0], dims[1], dims[2]),
        Kind::Labels => format!("{} labels", dims[0]),
    };
    if claimed > u128::from(MAX_BODY_BYTES) {
        return Err(Error::Data(format!(
            "{source}: header announces {} ({claimed} bytes), more than the {MAX_BODY_BYTES}-byte limit",
            describe()
        )));
    }
    let claimed = claimed as u64;
    if let Some(actual) = known_body_len
        && actual != claimed
    {
        return Err(Error::Data(format!(
            "{source}: header announces {} ({claimed} bytes) but {actual} bytes follow{}",
            describe(),
            if actual < claimed { " (truncated)" } else { "" }
        )));
    }
    // Preallocate only what is known to exist; a compressed body grows as it decompresses.
    let mut body = Vec::with_capacity(known_body_len.map_or(0, |n| n as usize));
    reader
        .by_ref()
        .take(claimed + 1)
        .read_to_end(&mut body)
        .map_err(|e| read_err(e, "body"))?;
    let got = body.len() as u64;
    if got != claimed {
        return Err(Error::Data(format!(
            "{source}: header announces {} ({claimed} bytes) but {} follow{}",
            describe(),
            if got > claimed {
                "more bytes".to_string()
            } else {
                format!("only {got} bytes")
            },
            if got < claimed { " (truncated)" } else { "" }
        )));
    }
    if gzip {
        // The gzip trailer (CRC32 and length) is only checked when the stream ends.
        let mut rest = [0u8; 1];
        let n = reader.read(&mut rest).map_err(|e| read_err(e, "trailer"))?;
        if n != 0 {
            return Err(Error::Data(format!(
                "{source}: header announces {} ({claimed} bytes) but more bytes follow",
                describe()
            )));
        }
    }
    Ok(Idx { dims, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<u8>) {
        let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 7 % 256) as u8).collect();
        (pixels, vec![4, 0, 9])
    }

    fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn raw_and_gz_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (pixels, labels) = sample();
        for ext in ["", ".gz"] {
            let ip = dir.path().join(format!("img{ext}"));
            let lp = dir.path().join(format!("lab{ext}"));
            write_images(&ip, &pixels, 3, 4, 5).unwrap();
            write_labels(&lp, &labels).unwrap();
            let raw = std::fs::read(&ip).unwrap();
            assert_eq!(raw.starts_with(&GZIP_MAGIC), ext == ".gz");
            assert_eq!(read_images(&ip).unwrap(), (pixels.clone(), 3, 4, 5));
            assert_eq!(read_labels(&lp).unwrap(), labels);
            let d = read_dataset(&ip, &lp).unwrap();
            assert_eq!((d.len(), d.rows(), d.cols()), (3, 4, 5));
            assert_eq!(d.image(2), &pixels[40..60]);
        }
    }

    #[test]
    fn encoded_header_is_big_endian_magic_then_dims() {
        let bytes = encode_images(&[1, 2, 3, 4, 5, 6], 1, 2, 3).unwrap();
        assert_eq!(
            &bytes[..16],
            &[0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        );
        assert_eq!(
            encode_labels(&[7]).unwrap(),
            vec![0, 0, 8, 1, 0, 0, 0, 1, 7]
        );
        assert!(encode_images(&[1, 2, 3], 1, 2, 2).is_err());
    }

    #[test]
    fn wrong_magic_is_refused_with_both_numbers() {
        let labels = encode_labels(&[1, 2]).unwrap();
        let msg = err_text(parse_images(&labels));
        assert!(
            msg.contains("0x00000801") && msg.contains("0x00000803"),
            "{msg}"
        );
        let images = encode_images(&[0; 4], 1, 2, 2).unwrap();
        assert!(parse_labels(&images).is_err());
    }

    #[test]
    fn truncated_and_oversized_raw_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (pixels, _) = sample();
        let full = encode_images(&pixels, 3, 4, 5).unwrap();
        let path = dir.path().join("short-images");
        std::fs::write(&path, &full[..full.len() - 1]).unwrap();
        let msg = err_text(read_images(&path));
        assert!(
            msg.contains("short-images") && msg.contains("truncated"),
            "{msg}"
        );
        let mut long = full.clone();
        long.push(0);
        std::fs::write(&path, &long).unwrap();
        assert!(err_text(read_images(&path)).contains("61 bytes follow"));
        std::fs::write(&path, &full[..10]).unwrap();
        assert!(err_text(read_images(&path)).contains("truncated header"));
    }

    #[test]
    fn huge_claims_are_refused_before_allocation() {
        // 4e9 x 60000 x 60000 images in a 16-byte file: refused by the cap.
        let mut bytes = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [u32::MAX, 60_000, 60_000] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        assert!(err_text(parse_images(&bytes)).contains("limit"));
        // Under the cap but larger than the data: refused by the real length.
        let mut bytes = LABELS_MAGIC.to_be_bytes().to_vec();
        bytes.extend_from_slice(&1_000_000u32.to_be_bytes());
        assert!(err_text(parse_labels(&bytes)).contains("truncated"));
    }

    #[test]
    fn zero_sized_images_are_refused_but_zero_count_is_fine() {
        let mut bytes = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [5u32, 0, 28] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        assert!(err_text(parse_images(&bytes)).contains("zero dimension"));
        let empty = encode_images(&[], 0, 28, 28).unwrap();
        assert_eq!(parse_images(&empty).unwrap(), (vec![], 0, 28, 28));
    }

    fn gzip(raw: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(raw).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn truncated_corrupt_and_padded_gzip_is_refused() {
        let (pixels, _) = sample();
        let raw = encode_images(&pixels, 3, 4, 5).unwrap();
        let gz = gzip(&raw);
        assert_eq!(parse_images(&gz).unwrap().0, pixels);
        // Cut the compressed stream.
        assert!(parse_images(&gz[..gz.len() / 2]).is_err());
        // Flip a byte of the CRC trailer.
        let mut bad = gz;
        let n = bad.len();
        bad[n - 6] ^= 0xff;
        let msg = err_text(parse_images(&bad));
        assert!(msg.contains("gzip"), "{msg}");
        // A valid gzip of a body one byte short, and one byte long.
        let msg = err_text(parse_images(&gzip(&raw[..raw.len() - 1])));
        assert!(msg.contains("truncated"), "{msg}");
        let mut long = raw;
        long.push(1);
        assert!(err_text(parse_images(&gzip(&long))).contains("more bytes"));
    }

    #[test]
    fn count_mismatch_between_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (pixels, _) = sample();
        let ip = dir.path().join("img");
        let lp = dir.path().join("lab");
        write_images(&ip, &pixels, 3, 4, 5).unwrap();
        write_labels(&lp, &[1, 2]).unwrap();
        let msg = err_text(read_dataset(&ip, &lp));
        assert!(
            msg.contains("3 images") && msg.contains("2 labels"),
            "{msg}"
        );
    }

    /// The fuzz target's property on seeded random mutations of raw and gzip files (CI runs
    /// it on stable): an error or a value, never a panic; values re-encode to themselves.
    #[test]
    fn mutated_files_are_errors_or_values_never_panics() {
        let (pixels, labels) = sample();
        let raw_images = encode_images(&pixels, 3, 4, 5).unwrap();
        let raw_labels = encode_labels(&labels).unwrap();
        let seeds = [gzip(&raw_images), gzip(&raw_labels), raw_images, raw_labels];
        let mut rng = crate::Rng::new(11);
        for i in 0..8000 {
            let input = crate::weights::tests::mutate(&seeds[i % 4], &mut rng);
            if let Ok((px, n, r, c)) = parse_images(&input) {
                let again = encode_images(&px, n, r, c).unwrap();
                assert_eq!(parse_images(&again).unwrap(), (px, n, r, c));
            }
            if let Ok(l) = parse_labels(&input) {
                assert_eq!(parse_labels(&encode_labels(&l).unwrap()).unwrap(), l);
            }
        }
    }

    #[test]
    fn fuzz_seeds_are_valid_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/idx");
        let (_, n, r, c) = read_images(&dir.join("images.idx")).unwrap();
        assert_eq!((n, r, c), (2, 3, 2));
        assert_eq!(read_images(&dir.join("images.idx.gz")).unwrap().1, 2);
        assert_eq!(read_labels(&dir.join("labels.idx")).unwrap(), [7, 0, 9]);
    }
}
