//! Format detection and whichever adapter it picks, on arbitrary bytes: reading must return
//! traces or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pisama_trace::load::{LoadOptions, load_bytes};

fuzz_target!(|data: &[u8]| {
    let _ = load_bytes("fuzz-input", data, &LoadOptions::default());
});
