//! The store's history reader: any file content is a list of records or an error, never a
//! panic; records that parse serialise back to lines that parse to the same records.
#![no_main]

use aggregator::store::parse_history;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(records) = parse_history(data) else {
        return;
    };
    let mut again = Vec::new();
    for r in &records {
        again.extend(serde_json::to_vec(r).expect("a record serialises"));
        again.push(b'\n');
    }
    let reparsed = parse_history(&again).expect("serialised records parse");
    assert_eq!(reparsed, records);
});
