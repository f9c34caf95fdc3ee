//! IDX parser (raw and gzip): any input is an error or a value, never a panic; whatever
//! parses re-encodes to bytes that parse to the same value.
#![no_main]

use engine::data::idx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((pixels, count, rows, cols)) = idx::parse_images(data) {
        assert_eq!(pixels.len(), count * rows * cols);
        let again = idx::encode_images(&pixels, count, rows, cols).expect("re-encode");
        assert_eq!(
            idx::parse_images(&again).expect("re-parse"),
            (pixels, count, rows, cols)
        );
    }
    if let Ok(labels) = idx::parse_labels(data) {
        let again = idx::encode_labels(&labels).expect("re-encode");
        assert_eq!(idx::parse_labels(&again).expect("re-parse"), labels);
    }
});
