//! fn-serve (under construction)
