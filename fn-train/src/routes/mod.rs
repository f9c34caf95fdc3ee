//! HTTP surfaces, one file each: the JSON trigger, the CloudEvents trigger, health, metrics.

pub mod cloudevents;
pub mod health;
pub mod metrics;
pub mod train;
