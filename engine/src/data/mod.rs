//! Data: the u8 [`Dataset`], the MNIST IDX format, and federated partitions.

mod dataset;

pub use dataset::Dataset;
