//! The brain's record reader (frontmatter, its YAML subset, the body) on arbitrary text:
//! an error naming the problem, never a panic. A record that parses must render and parse
//! back to the same record.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pisama_brain::model::Record;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(".brain/decisions/fuzz.md");
    if let Ok(record) = Record::parse(text, path) {
        let rendered = record.to_markdown();
        let again = Record::parse(&rendered, path).expect("a rendered record parses");
        assert_eq!(again.to_markdown(), rendered, "render is stable");
    }
});
