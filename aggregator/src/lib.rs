//! aggregator (under construction)
