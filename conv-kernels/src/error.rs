//! [`KernelError`]: what a public kernel entry point refuses before any work starts.

/// A geometry or buffer that a kernel cannot work on. Returned by the
/// geometry constructors and by every public kernel before it touches memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// A dimension is zero, or the kernel does not fit the (padded) input.
    #[error("{op}: invalid geometry: {reason}")]
    Geometry {
        /// The operation whose geometry was refused.
        op: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A size computation overflowed `usize`.
    #[error("{op}: size overflows usize")]
    Overflow {
        /// The operation whose sizes overflowed.
        op: &'static str,
    },
    /// A buffer has the wrong number of elements for the geometry.
    #[error("{op}: buffer `{buffer}` has {got} elements, expected {expected}")]
    BufferLen {
        /// The operation.
        op: &'static str,
        /// The argument name of the buffer.
        buffer: &'static str,
        /// The length the geometry requires.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// A label is not a valid class index.
    #[error("{op}: label {label} at row {row} is not below the class count {classes}")]
    Label {
        /// The operation.
        op: &'static str,
        /// The batch row holding the label.
        row: usize,
        /// The label value.
        label: u32,
        /// The number of classes.
        classes: usize,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, KernelError>;

/// Checks that `buf` holds exactly `expected` elements.
pub(crate) fn check_len(
    op: &'static str,
    buffer: &'static str,
    got: usize,
    expected: usize,
) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(KernelError::BufferLen {
            op,
            buffer,
            expected,
            got,
        })
    }
}
