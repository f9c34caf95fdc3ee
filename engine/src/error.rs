//! [`Error`]: everything the engine refuses, each variant naming what and where.

use std::path::PathBuf;

/// The engine's error type. Variants name the tensor, layer or file involved and,
/// for shape problems, both shapes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel refused its geometry or buffers.
    #[error(transparent)]
    Kernel(#[from] conv_kernels::KernelError),
    /// Two shapes that must agree do not.
    #[error("{what}: shape {got:?} does not match the expected {expected:?}")]
    Shape {
        /// The tensor, layer or input concerned.
        what: String,
        /// The shape required.
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A model spec (JSON or built in code) is not a valid architecture.
    #[error("invalid model spec: {0}")]
    Spec(String),
    /// A weights file is malformed or does not fit the architecture.
    #[error("weights: {0}")]
    Weights(String),
    /// A data file (IDX, MNIST) is malformed, truncated or inconsistent.
    #[error("data: {0}")]
    Data(String),
    /// An argument is out of its valid range (batch size 0, non-finite learning rate...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Training or prediction was stopped by the caller's callback.
    #[error("cancelled")]
    Cancelled,
    /// A download failed or its content did not verify.
    #[error("download: {0}")]
    Download(String),
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the engine.
pub type Result<T> = std::result::Result<T, Error>;
