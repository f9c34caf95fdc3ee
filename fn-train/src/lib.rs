//! fn-train (under construction)
