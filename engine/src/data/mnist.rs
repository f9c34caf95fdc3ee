//! MNIST: finding, loading and downloading the four IDX files.
//!
//! [`load`] reads a split from a folder holding the files raw or gzip-compressed under
//! their standard names (`train-images-idx3-ubyte[.gz]`...). [`dir_from_env`] reads the
//! folder from `MNIST_DIR`. `download` fetches the files from a mirror into a cache
//! folder, verifying the SHA-256 of each *decompressed* file (mirrors recompress, so the
//! hashes of the `.gz` files differ between mirrors while the IDX content does not).
//! The downloader is behind the `download` feature: it brings an HTTP client with TLS,
//! which the services (which never download MNIST) should not compile.

#[cfg(feature = "download")]
use std::fs::File;
#[cfg(feature = "download")]
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

#[cfg(feature = "download")]
use flate2::read::GzDecoder;
#[cfg(any(test, feature = "download"))]
use sha2::{Digest, Sha256};

use super::{Dataset, idx};
use crate::error::{Error, Result};
#[cfg(feature = "download")]
use crate::fsutil::write_atomic;

/// Environment variable naming the folder that holds the MNIST files.
pub const MNIST_DIR_ENV: &str = "MNIST_DIR";

/// A mirror serving the four standard `.gz` files (the one PyTorch's torchvision uses).
pub const DEFAULT_MIRROR: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";

/// The four MNIST files (uncompressed names) and the SHA-256 of their decompressed content,
/// as listed in `shared/data/mnist/UNCOMPRESSED.SHA256SUMS`.
pub const FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

/// Largest compressed or decompressed file the downloader accepts (MNIST's largest
/// decompressed file is 47,040,016 bytes).
#[cfg(feature = "download")]
const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

/// One of MNIST's two splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

impl Split {
    /// Uncompressed file names of the split's images and labels.
    pub fn file_names(self) -> (&'static str, &'static str) {
        match self {
            Split::Train => (FILES[0].0, FILES[1].0),
            Split::Test => (FILES[2].0, FILES[3].0),
        }
    }
}

/// Loads a split from `dir`, which holds each file raw or with a `.gz` suffix (raw is
/// preferred when both exist).
///
/// # Errors
/// [`Error::Data`] when a file is missing (naming both names tried) or malformed (see
/// [`idx::read_images`]), or when images and labels disagree on the count.
pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
    let (images, labels) = split.file_names();
    idx::read_dataset(&find(dir, images)?, &find(dir, labels)?)
}

fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(Error::Data(format!(
        "neither {} nor {} exists",
        raw.display(),
        gz.display()
    )))
}

/// The MNIST folder named by the `MNIST_DIR` environment variable.
///
/// # Errors
/// [`Error::Data`] when the variable is unset, empty, or does not name a folder.
pub fn dir_from_env() -> Result<PathBuf> {
    let dir = std::env::var_os(MNIST_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::Data(format!(
                "{MNIST_DIR_ENV} is not set: point it at a folder holding the MNIST IDX files"
            ))
        })?;
    if !dir.is_dir() {
        return Err(Error::Data(format!(
            "{MNIST_DIR_ENV}={} is not a folder",
            dir.display()
        )));
    }
    Ok(dir)
}

#[cfg(feature = "download")]
/// Downloads the four MNIST files from `base_url` (e.g. [`DEFAULT_MIRROR`]) into
/// `cache_dir`, decompressed and verified against [`FILES`]; returns `cache_dir`, ready for
/// [`load`]. Files already in the cache with the right hash are not fetched again.
///
/// # Errors
/// [`Error::Download`] for an HTTP failure or a hash mismatch (nothing is written then);
/// [`Error::Io`] when the cache cannot be written.
pub fn download(base_url: &str, cache_dir: &Path) -> Result<PathBuf> {
    download_files(base_url, cache_dir, &FILES)
}

#[cfg(feature = "download")]
/// [`download`] with an explicit list of `(file name, hex SHA-256 of the decompressed
/// content)`: each file is fetched as `<base_url>/<name>.gz` (a response that is not gzip is
/// taken as the raw file), decompressed, hashed, and written atomically as
/// `<cache_dir>/<name>`.
///
/// # Errors
/// As [`download`].
pub fn download_files(base_url: &str, cache_dir: &Path, files: &[(&str, &str)]) -> Result<PathBuf> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let agent = reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| Error::Download(format!("building the HTTP client: {e}")))?;
    for &(name, sha256) in files {
        let expected = parse_hex_sha256(sha256)?;
        let target = cache_dir.join(name);
        if target.is_file() && sha256_of_file(&target)? == expected {
            tracing::debug!(file = %target.display(), "MNIST file already cached");
            continue;
        }
        let url = format!("{}/{name}.gz", base_url.trim_end_matches('/'));
        tracing::info!(%url, "downloading");
        fetch_verified(&agent, &url, &target, &expected)?;
    }
    Ok(cache_dir.to_path_buf())
}

#[cfg(feature = "download")]
fn fetch_verified(
    agent: &reqwest::blocking::Client,
    url: &str,
    target: &Path,
    expected: &[u8; 32],
) -> Result<()> {
    let response = agent
        .get(url)
        .send()
        .and_then(reqwest::blocking::Response::error_for_status)
        .map_err(|e| Error::Download(format!("GET {url}: {e}")))?;
    let mut body = BufReader::new(response.take(MAX_DOWNLOAD_BYTES));
    let is_gzip = body
        .fill_buf()
        .map_err(|e| Error::Download(format!("GET {url}: reading the body: {e}")))?
        .starts_with(&[0x1f, 0x8b]);
    let mut content: Box<dyn Read> = if is_gzip {
        Box::new(GzDecoder::new(body))
    } else {
        Box::new(body)
    };
    write_atomic(target, |file| {
        let got = copy_hashing(&mut content, file, url)?;
        if &got != expected {
            return Err(Error::Download(format!(
                "{url}: SHA-256 of the decompressed content is {}, expected {}",
                hex(&got),
                hex(expected)
            )));
        }
        Ok(())
    })
}

#[cfg(feature = "download")]
/// Streams `from` into `to` (at most [`MAX_DOWNLOAD_BYTES`]) and returns the SHA-256.
fn copy_hashing(from: &mut dyn Read, to: &mut File, url: &str) -> Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = from
            .read(&mut buf)
            .map_err(|e| Error::Download(format!("{url}: reading or decompressing: {e}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > MAX_DOWNLOAD_BYTES {
            return Err(Error::Download(format!(
                "{url}: content exceeds {MAX_DOWNLOAD_BYTES} bytes"
            )));
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])
            .map_err(|e| Error::Download(format!("{url}: writing the cache: {e}")))?;
    }
    Ok(hasher.finalize().into())
}

#[cfg(feature = "download")]
fn sha256_of_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(hasher.finalize().into())
}

#[cfg(any(test, feature = "download"))]
fn parse_hex_sha256(s: &str) -> Result<[u8; 32]> {
    let bad = || Error::InvalidArgument(format!("`{s}` is not a hex SHA-256"));
    if s.len() != 64 || !s.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[cfg(any(test, feature = "download"))]
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    #[cfg(feature = "download")]
    use std::collections::HashMap;
    use std::fs::File;
    #[cfg(feature = "download")]
    use std::net::TcpListener;
    #[cfg(feature = "download")]
    use std::sync::Arc;

    /// MNIST for tests: `$MNIST_DIR`, else the shared copy beside the repository.
    fn mnist_dir() -> PathBuf {
        std::env::var_os(MNIST_DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist")
            })
    }

    #[test]
    fn real_mnist_loads_with_the_published_label_counts() {
        let dir = mnist_dir();
        let train = load(&dir, Split::Train).unwrap();
        assert_eq!((train.len(), train.rows(), train.cols()), (60_000, 28, 28));
        assert_eq!(
            train.label_counts(),
            [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        );
        let test = load(&dir, Split::Test).unwrap();
        assert_eq!((test.len(), test.rows(), test.cols()), (10_000, 28, 28));
        assert_eq!(
            test.label_counts(),
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
    }

    #[test]
    fn real_mnist_gz_files_decompress_to_the_embedded_hashes() {
        for (name, hash) in FILES {
            let path = mnist_dir().join(format!("{name}.gz"));
            let mut gz = GzDecoder::new(File::open(&path).unwrap());
            let mut hasher = Sha256::new();
            std::io::copy(&mut gz, &mut hasher).unwrap();
            assert_eq!(hex(&hasher.finalize()), hash, "{name}");
        }
    }

    #[test]
    fn embedded_hashes_match_the_shared_sums_file() {
        let sums = mnist_dir().join("UNCOMPRESSED.SHA256SUMS");
        let text = std::fs::read_to_string(sums).unwrap();
        for (name, hash) in FILES {
            assert!(
                text.lines().any(|l| l.split_whitespace().eq([hash, name])),
                "{name} {hash} not in the sums file"
            );
        }
    }

    #[test]
    fn missing_files_name_both_candidates() {
        let dir = tempfile::tempdir().unwrap();
        let msg = load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(msg.contains("t10k-images-idx3-ubyte.gz"), "{msg}");
    }

    /// A one-thread HTTP/1.1 server on 127.0.0.1 serving `files` by path, 404 otherwise.
    #[cfg(feature = "download")]
    fn serve(files: HashMap<String, Vec<u8>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let files = Arc::new(files);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Drain the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match files.get(path) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        format!("http://{addr}/mirror/")
    }

    #[cfg(feature = "download")]
    fn gzip(raw: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(raw).unwrap();
        enc.finish().unwrap()
    }

    #[cfg(feature = "download")]
    fn sha_hex(raw: &[u8]) -> String {
        hex(&Sha256::digest(raw))
    }

    /// Small generated stand-ins for the four MNIST files: 5 train and 3 test images of 4x4.
    #[cfg(feature = "download")]
    fn fake_mnist() -> Vec<(&'static str, Vec<u8>)> {
        let img = |n: usize| idx::encode_images(&vec![7; n * 16], n, 4, 4).unwrap();
        vec![
            (FILES[0].0, img(5)),
            (FILES[1].0, idx::encode_labels(&[0, 1, 2, 3, 4]).unwrap()),
            (FILES[2].0, img(3)),
            (FILES[3].0, idx::encode_labels(&[9, 8, 7]).unwrap()),
        ]
    }

    #[test]
    #[cfg(feature = "download")]
    fn download_fetches_verifies_and_caches_from_a_local_server() {
        let fake = fake_mnist();
        let served = fake
            .iter()
            .enumerate()
            // The last file is served uncompressed, as a server that decoded it would.
            .map(|(i, (name, raw))| {
                let body = if i == 3 { raw.clone() } else { gzip(raw) };
                (format!("/mirror/{name}.gz"), body)
            })
            .collect();
        let base = serve(served);
        let hashes: Vec<(String, String)> = fake
            .iter()
            .map(|(n, raw)| (n.to_string(), sha_hex(raw)))
            .collect();
        let files: Vec<(&str, &str)> = hashes
            .iter()
            .map(|(n, h)| (n.as_str(), h.as_str()))
            .collect();
        let cache = tempfile::tempdir().unwrap();
        let dir = download_files(&base, &cache.path().join("mnist"), &files).unwrap();
        let train = load(&dir, Split::Train).unwrap();
        assert_eq!(train.labels(), &[0, 1, 2, 3, 4]);
        let test = load(&dir, Split::Test).unwrap();
        assert_eq!((test.len(), test.rows()), (3, 4));
        // Cached now: a second call succeeds against a server that has nothing.
        let empty = serve(HashMap::new());
        download_files(&empty, &dir, &files).unwrap();
        // Only the four files, no temporaries.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
    }

    #[test]
    #[cfg(feature = "download")]
    fn corrupt_download_is_refused_and_nothing_is_written() {
        let fake = fake_mnist();
        let (name, raw) = &fake[1];
        let expected = sha_hex(raw);
        let mut tampered = raw.clone();
        tampered[9] ^= 1;
        let base = serve(HashMap::from([(
            format!("/mirror/{name}.gz"),
            gzip(&tampered),
        )]));
        let cache = tempfile::tempdir().unwrap();
        let msg = download_files(&base, cache.path(), &[(name, expected.as_str())])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("SHA-256") && msg.contains(&expected), "{msg}");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);

        // A cut gzip stream and a 404 are download errors too.
        let gz = gzip(raw);
        let base = serve(HashMap::from([(
            format!("/mirror/{name}.gz"),
            gz[..gz.len() / 2].to_vec(),
        )]));
        assert!(download_files(&base, cache.path(), &[(name, expected.as_str())]).is_err());
        let base = serve(HashMap::new());
        let msg = download_files(&base, cache.path(), &[(name, expected.as_str())])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("404"), "{msg}");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
    }

    #[test]
    fn hex_hashes_are_validated() {
        assert!(parse_hex_sha256("zz").is_err());
        assert!(parse_hex_sha256(&"g".repeat(64)).is_err());
        let h = FILES[0].1;
        assert_eq!(hex(&parse_hex_sha256(h).unwrap()), h);
    }
}
