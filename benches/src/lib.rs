//! Shared shapes for fedge's criterion benchmarks.
