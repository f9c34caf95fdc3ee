//! Model weights as safetensors files, in PyTorch's names and layouts.
//!
//! A file holds one F32 little-endian tensor per trainable parameter, named as the spec names
//! its layers (`conv1.weight` `[out, in, kh, kw]`, `conv1.bias`, `fc1.weight` `[out, in]`...,
//! see `shared/docs/design.md`), so PyTorch's `load_state_dict` takes it unchanged. The
//! header's `__metadata__` carries:
//!
//! | key | value |
//! |---|---|
//! | `spec` | the architecture, [`ModelSpec::to_json`] |
//! | `version` | the model version (decimal) |
//! | `round` | the federated round that produced it (decimal) |
//! | `normalisation` | the input scaling the model expects, [`PIXEL_255`] |
//! | anything else | [`WeightsMeta::extra`] |
//!
//! [`save`] replaces a file atomically (temporary file, fsync, rename, fsync of the folder),
//! so a reader sees the old model or the new one, never half of one. [`load`] maps the file
//! and uses the tensors in place when they are 4-byte aligned in memory (they are in files
//! written here: safetensors pads its header to 8 bytes and the map is page-aligned),
//! copying otherwise.
//!
//! Loading checks the tensors against the architecture (the file's own spec, or the one the
//! caller expects with [`load_checked`]): a missing or extra tensor, a wrong shape or dtype, a
//! truncated file or a header whose offsets do not add up is refused with an error naming the
//! tensor and both shapes. Nothing panics, and no partial model is ever returned.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use safetensors::tensor::{Dtype, Metadata, TensorInfo, View};
use safetensors::{SafeTensors, serialize};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::params::ParamSet;
use crate::spec::ModelSpec;
use crate::tensor::{SharedBytes, Tensor};

/// The input normalisation of fedge's models: f32 pixel = u8 pixel / 255, nothing else.
pub const PIXEL_255: &str = "pixel/255";

const KEY_SPEC: &str = "spec";
const KEY_VERSION: &str = "version";
const KEY_ROUND: &str = "round";
const KEY_NORMALISATION: &str = "normalisation";
const RESERVED: [&str; 4] = [KEY_SPEC, KEY_VERSION, KEY_ROUND, KEY_NORMALISATION];

/// Same bound as the safetensors crate: a header above 100 MB is refused.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// What a weights file says about its model besides the tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsMeta {
    /// The architecture the tensors belong to.
    pub spec: ModelSpec,
    /// Model version (the aggregator's counter).
    pub version: u64,
    /// Federated round that produced these weights (0 for an initial or centrally trained model).
    pub round: u64,
    /// Input normalisation the model expects; fedge's models use [`PIXEL_255`].
    pub normalisation: String,
    /// Free-form string pairs (e.g. accuracy, creation time); keys may not be `spec`,
    /// `version`, `round` or `normalisation`.
    pub extra: BTreeMap<String, String>,
}

impl WeightsMeta {
    /// Metadata for `spec` at version 0, round 0, normalisation [`PIXEL_255`], no extras.
    pub fn new(spec: ModelSpec) -> Self {
        Self {
            spec,
            version: 0,
            round: 0,
            normalisation: PIXEL_255.to_string(),
            extra: BTreeMap::new(),
        }
    }
}

/// A decoded weights file: metadata and one tensor per parameter, in the spec's order.
#[derive(Debug, Clone)]
pub struct LoadedWeights {
    /// The header's metadata.
    pub meta: WeightsMeta,
    /// The parameters, named and shaped as `meta.spec` requires. Tensors may borrow the
    /// mapped file in place ([`Tensor::is_mapped`]); writing to one copies it first.
    pub params: ParamSet,
}

/// Serialises `params` with `meta` into safetensors bytes.
///
/// # Errors
/// [`Error::Shape`] / [`Error::Weights`] when `params` does not have exactly the names and
/// shapes of `meta.spec` (checked first, so no file is written that cannot be loaded);
/// [`Error::InvalidArgument`] when an extra key is reserved; [`Error::Spec`] for an invalid spec.
pub fn to_bytes(params: &ParamSet, meta: &WeightsMeta) -> Result<Vec<u8>> {
    check_params_fit_spec(params, &meta.spec)?;
    let mut header = HashMap::new();
    for (k, v) in &meta.extra {
        if RESERVED.contains(&k.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "weights metadata: extra key `{k}` is reserved"
            )));
        }
        header.insert(k.clone(), v.clone());
    }
    header.insert(KEY_SPEC.into(), meta.spec.to_json());
    header.insert(KEY_VERSION.into(), meta.version.to_string());
    header.insert(KEY_ROUND.into(), meta.round.to_string());
    header.insert(KEY_NORMALISATION.into(), meta.normalisation.clone());
    let views = params.iter().map(|(name, t)| (name, F32View(t)));
    serialize(views, Some(header)).map_err(|e| Error::Weights(format!("serialising: {e}")))
}

/// Writes `params` and `meta` to `path` atomically (temporary file in the same folder, fsync,
/// rename over `path`, fsync of the folder).
///
/// # Errors
/// As [`to_bytes`], and [`Error::Io`] naming the file.
pub fn save(path: &Path, params: &ParamSet, meta: &WeightsMeta) -> Result<()> {
    let bytes = to_bytes(params, meta)?;
    write_atomic(path, |file| {
        file.write_all(&bytes).map_err(|e| Error::io(path, e))
    })
}

/// Maps the weights file at `path` and decodes it against the spec in its own metadata.
/// Aligned tensors are used in place.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or mapped; [`Error::Weights`] or
/// [`Error::Shape`], prefixed with the path, for a malformed file or tensors that do not fit
/// the spec (see the module docs).
pub fn load(path: &Path) -> Result<LoadedWeights> {
    decode(map_file(path)?, None).map_err(|e| in_source(e, &path.display().to_string()))
}

/// [`load`], refusing a file whose tensors or architecture differ from `expected`. A file
/// without a `spec` in its metadata (e.g. written by PyTorch's safetensors) is accepted when
/// its tensors fit `expected`; its metadata then defaults to version 0, round 0, [`PIXEL_255`].
///
/// # Errors
/// As [`load`], and [`Error::Weights`] when the file's spec is another architecture.
pub fn load_checked(path: &Path, expected: &ModelSpec) -> Result<LoadedWeights> {
    decode(map_file(path)?, Some(expected)).map_err(|e| in_source(e, &path.display().to_string()))
}

/// Decodes safetensors bytes held in memory (e.g. fetched over HTTP). The tensors borrow
/// `bytes` in place when aligned.
///
/// # Errors
/// As [`load`].
pub fn from_bytes(bytes: Vec<u8>) -> Result<LoadedWeights> {
    from_shared(Arc::new(OwnedBytes(bytes)))
}

/// [`from_bytes`] over any shared byte source (a `bytes::Bytes` wrapper, a mapped file...).
///
/// # Errors
/// As [`load`].
pub fn from_shared(source: Arc<dyn SharedBytes>) -> Result<LoadedWeights> {
    decode(source, None)
}

/// [`from_shared`] checked against `expected`, as [`load_checked`] does.
///
/// # Errors
/// As [`load_checked`].
pub fn from_shared_checked(
    source: Arc<dyn SharedBytes>,
    expected: &ModelSpec,
) -> Result<LoadedWeights> {
    decode(source, Some(expected))
}

/// A tensor seen as safetensors F32 data, little-endian.
struct F32View<'a>(&'a Tensor);

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
    fn data(&self) -> Cow<'_, [u8]> {
        if cfg!(target_endian = "little") {
            Cow::Borrowed(bytemuck::cast_slice(self.0.data()))
        } else {
            Cow::Owned(self.0.data().iter().flat_map(|v| v.to_le_bytes()).collect())
        }
    }
    fn data_len(&self) -> usize {
        self.0.len() * 4
    }
}

#[derive(Debug)]
struct OwnedBytes(Vec<u8>);

impl SharedBytes for OwnedBytes {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Debug)]
struct MappedFile(memmap2::Mmap);

impl SharedBytes for MappedFile {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

fn map_file(path: &Path) -> Result<Arc<dyn SharedBytes>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        // Mapping zero bytes fails on some systems; say what is wrong instead.
        return Err(Error::Weights(format!(
            "{}: the file is empty",
            path.display()
        )));
    }
    // SAFETY: the map is only sound while nobody modifies the file. fedge never writes a
    // weights file in place: `save` (and the aggregator's store, which uses it) writes a new
    // file and renames it over the old name, so an existing mapping keeps the old inode's
    // bytes. A third party truncating or rewriting the file in place could still fault or
    // change the tensors under us; that is outside what we can promise, as for any mmap.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Arc::new(MappedFile(map)))
}

/// Prefixes an error's message with the file it concerns.
fn in_source(e: Error, source: &str) -> Error {
    match e {
        Error::Weights(m) => Error::Weights(format!("{source}: {m}")),
        Error::Shape {
            what,
            expected,
            got,
        } => Error::Shape {
            what: format!("{source}: {what}"),
            expected,
            got,
        },
        Error::Spec(m) => Error::Spec(format!("{source}: {m}")),
        other => other,
    }
}

/// Parses the header with the safetensors crate after checking that the offsets fit the
/// buffer (so that a lying header yields an error naming the tensor, not an arithmetic
/// overflow inside the parser). Returns the header length and the metadata.
fn parse_header(bytes: &[u8]) -> Result<(usize, Metadata)> {
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(Error::Weights(format!(
            "{} bytes is too short for a safetensors file (8-byte header length missing)",
            bytes.len()
        )));
    };
    let n = u64::from_le_bytes(*len_bytes);
    let available = bytes.len() as u64 - 8;
    if n > MAX_HEADER_BYTES || n > available {
        return Err(Error::Weights(format!(
            "header length {n} exceeds the {available} bytes present (or the {MAX_HEADER_BYTES}-byte limit)"
        )));
    }
    let n = n as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n])
        .map_err(|e| Error::Weights(format!("header is not UTF-8: {e}")))?;
    let metadata: Metadata = serde_json::from_str(header)
        .map_err(|e| Error::Weights(format!("header is not valid safetensors JSON: {e}")))?;
    let data_present = bytes.len() - 8 - n;
    let data_claimed = metadata.data_len();
    if data_claimed != data_present {
        return Err(Error::Weights(describe_size_mismatch(
            &metadata,
            data_claimed,
            data_present,
        )));
    }
    // The crate's own validation (same checks, now known not to overflow).
    let (n2, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Weights(format!("invalid safetensors header: {e}")))?;
    debug_assert_eq!(n, n2);
    Ok((n2, metadata))
}

fn describe_size_mismatch(metadata: &Metadata, claimed: usize, present: usize) -> String {
    if claimed > present {
        let mut cut: Vec<(String, &TensorInfo)> = metadata
            .tensors()
            .into_iter()
            .filter(|(_, info)| info.data_offsets.1 > present)
            .collect();
        cut.sort_by_key(|(_, info)| info.data_offsets);
        if let Some((name, info)) = cut.first() {
            return format!(
                "truncated: tensor `{name}` {:?} {:?} needs data bytes {}..{}, the file holds {present}",
                info.dtype, info.shape, info.data_offsets.0, info.data_offsets.1
            );
        }
    }
    format!("the header's tensors cover {claimed} data bytes but {present} follow the header")
}

/// Decodes a safetensors buffer against `expected` or, without one, the spec it carries.
fn decode(source: Arc<dyn SharedBytes>, expected: Option<&ModelSpec>) -> Result<LoadedWeights> {
    let bytes = source.bytes();
    let (n, metadata) = parse_header(bytes)?;
    let meta = read_meta(metadata.metadata().as_ref(), expected)?;
    let wanted = meta.spec.param_shapes()?;
    let data_start = 8 + n;
    let mut params = ParamSet::new();
    for (name, shape) in &wanted {
        let info = metadata.info(name).ok_or_else(|| {
            Error::Weights(format!(
                "missing tensor `{name}` (the architecture needs shape {shape:?})"
            ))
        })?;
        if info.dtype != Dtype::F32 {
            return Err(Error::Weights(format!(
                "tensor `{name}` is {:?} {:?}, the architecture needs F32 {shape:?}",
                info.dtype, info.shape
            )));
        }
        if &info.shape != shape {
            return Err(Error::Shape {
                what: format!("tensor `{name}`"),
                expected: shape.clone(),
                got: info.shape.clone(),
            });
        }
        let offset = data_start + info.data_offsets.0;
        params.push(name.clone(), tensor_at(&source, shape, offset)?)?;
    }
    if metadata.tensors().len() != wanted.len() {
        let mut extra: Vec<(String, &TensorInfo)> = metadata
            .tensors()
            .into_iter()
            .filter(|(name, _)| !wanted.iter().any(|(w, _)| w == name))
            .collect();
        extra.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some((name, info)) = extra.first() {
            return Err(Error::Weights(format!(
                "unexpected tensor `{name}` {:?} {:?}: the architecture has no such parameter",
                info.dtype, info.shape
            )));
        }
    }
    Ok(LoadedWeights { meta, params })
}

/// The F32 tensor of `shape` at byte `offset` of `source`: in place when aligned on a
/// little-endian machine, else copied. Bounds were validated by `parse_header`.
fn tensor_at(source: &Arc<dyn SharedBytes>, shape: &[usize], offset: usize) -> Result<Tensor> {
    let bytes = source.bytes();
    let aligned = (bytes.as_ptr() as usize + offset).is_multiple_of(std::mem::align_of::<f32>());
    if cfg!(target_endian = "little") && aligned {
        return Tensor::mapped(shape, Arc::clone(source), offset);
    }
    let mut t = Tensor::zeros(shape)?;
    let len = t.len() * 4;
    let raw = bytes
        .get(offset..offset + len)
        .ok_or_else(|| Error::Weights(format!("tensor at byte {offset} runs past the buffer")))?;
    for (dst, src) in t.data_mut().iter_mut().zip(raw.chunks_exact(4)) {
        *dst = f32::from_le_bytes([src[0], src[1], src[2], src[3]]);
    }
    Ok(t)
}

fn read_meta(
    header: Option<&HashMap<String, String>>,
    expected: Option<&ModelSpec>,
) -> Result<WeightsMeta> {
    let empty = HashMap::new();
    let header = header.unwrap_or(&empty);
    let spec = match (header.get(KEY_SPEC), expected) {
        (Some(json), expected) => {
            let spec = ModelSpec::from_json(json)
                .map_err(|e| Error::Weights(format!("metadata `spec`: {e}")))?;
            if let Some(expected) = expected {
                check_same_architecture(&spec, expected)?;
            }
            spec
        }
        (None, Some(expected)) => expected.clone(),
        (None, None) => {
            return Err(Error::Weights(
                "no `spec` in __metadata__: the architecture is unknown (use load_checked with the expected spec)".into(),
            ));
        }
    };
    let number = |key: &str| -> Result<u64> {
        header.get(key).map_or(Ok(0), |v| {
            v.parse().map_err(|_| {
                Error::Weights(format!(
                    "metadata `{key}` = `{v}` is not an unsigned integer"
                ))
            })
        })
    };
    Ok(WeightsMeta {
        version: number(KEY_VERSION)?,
        round: number(KEY_ROUND)?,
        normalisation: header
            .get(KEY_NORMALISATION)
            .cloned()
            .unwrap_or_else(|| PIXEL_255.to_string()),
        extra: header
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        spec,
    })
}

/// The file's architecture must be the expected one: same parameters (the error names the
/// first tensor that differs and both shapes), then the same layers and input.
fn check_same_architecture(found: &ModelSpec, expected: &ModelSpec) -> Result<()> {
    let want = expected.param_shapes()?;
    let have = found.param_shapes()?;
    for (name, shape) in &want {
        match have.iter().find(|(n, _)| n == name) {
            None => {
                return Err(Error::Weights(format!(
                    "the file's architecture `{}` has no tensor `{name}` (expected shape {shape:?})",
                    found.name
                )));
            }
            Some((_, s)) if s != shape => {
                return Err(Error::Shape {
                    what: format!(
                        "tensor `{name}` in the file's architecture `{}`",
                        found.name
                    ),
                    expected: shape.clone(),
                    got: s.clone(),
                });
            }
            Some(_) => {}
        }
    }
    if found.input_shape != expected.input_shape || found.layers != expected.layers {
        return Err(Error::Weights(format!(
            "the file's architecture differs from the expected one: file {}, expected {}",
            found.to_json(),
            expected.to_json()
        )));
    }
    Ok(())
}

/// `params` must have exactly the spec's names and shapes (in any order).
fn check_params_fit_spec(params: &ParamSet, spec: &ModelSpec) -> Result<()> {
    let wanted = spec.param_shapes()?;
    for (name, shape) in &wanted {
        match params.get(name) {
            None => {
                return Err(Error::Weights(format!(
                    "parameters lack tensor `{name}` (the architecture needs shape {shape:?})"
                )));
            }
            Some(t) if t.shape() != shape.as_slice() => {
                return Err(Error::Shape {
                    what: format!("parameter `{name}`"),
                    expected: shape.clone(),
                    got: t.shape().to_vec(),
                });
            }
            Some(_) => {}
        }
    }
    if let Some((name, t)) = params
        .iter()
        .find(|(n, _)| !wanted.iter().any(|(w, _)| w == n))
    {
        return Err(Error::Weights(format!(
            "parameter `{name}` {:?} is not part of the architecture",
            t.shape()
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
