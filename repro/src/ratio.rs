//! The "fedge / paper" column: one formatter, so that a ratio below 1 can never read as
//! its inverse rounded away (0.68 was printed "1x faster").

/// Which way a figure improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Times: below 1 means fedge is faster.
    Lower,
    /// Accuracy: above 1 means fedge is higher.
    Higher,
}

/// `ours / theirs` with two significant decimals and what it means, e.g. `0.68x (1.47x
/// faster)`, `2.10x (2.10x slower)`, `1.17x (higher)`; `-` when either is not a positive
/// finite number.
pub fn ratio(ours: f64, theirs: f64, better: Better) -> String {
    let r = ours / theirs;
    if !(r.is_finite() && r > 0.0) {
        return "-".into();
    }
    let shown = if r < 0.1 {
        format!("{r:.3}x")
    } else {
        format!("{r:.2}x")
    };
    if (r - 1.0).abs() < 0.005 {
        return format!("{shown} (same)");
    }
    let meaning = match (better, r < 1.0) {
        (Better::Lower, true) => format!("{:.2}x faster", 1.0 / r),
        (Better::Lower, false) => format!("{r:.2}x slower"),
        (Better::Higher, true) => "lower".into(),
        (Better::Higher, false) => "higher".into(),
    };
    format!("{shown} ({meaning})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_below_one_keep_their_direction_and_digits() {
        // The report's glitch: 0.678 s against 1 s read "1x faster".
        assert_eq!(ratio(0.2034, 0.3, Better::Lower), "0.68x (1.47x faster)");
        assert_eq!(ratio(0.5903, 5.0, Better::Lower), "0.12x (8.47x faster)");
        assert_eq!(ratio(0.63, 0.3, Better::Lower), "2.10x (2.10x slower)");
        assert_eq!(ratio(0.3, 0.3, Better::Lower), "1.00x (same)");
        assert_eq!(ratio(0.9616, 0.82, Better::Higher), "1.17x (higher)");
        assert_eq!(ratio(0.5576, 0.82, Better::Higher), "0.68x (lower)");
        assert_eq!(ratio(1.0, 0.0, Better::Lower), "-");
        assert_eq!(ratio(0.046, 1.0, Better::Lower), "0.046x (21.74x faster)");
        assert_eq!(ratio(f64::NAN, 5.0, Better::Lower), "-");
    }
}
