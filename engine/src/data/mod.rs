//! Data: the u8 [`Dataset`], the MNIST IDX format ([`idx`], [`mnist`]), and federated
//! partitions.

mod dataset;
pub mod idx;
pub mod mnist;
pub mod partition;
pub mod partition_file;

pub use dataset::Dataset;
pub use partition::{PartitionSpec, partition};
pub use partition_file::PartitionSource;
