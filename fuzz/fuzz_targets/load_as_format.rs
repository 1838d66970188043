//! Every adapter, forced: the first byte picks the format (as `--input-format` does), the rest
//! is the input. Reaches adapters that detection would not choose for the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pisama_trace::Format;
use pisama_trace::load::{LoadOptions, load_bytes};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = Format::ALL[usize::from(selector) % Format::ALL.len()];
    let options = LoadOptions {
        format: Some(format),
        ..LoadOptions::default()
    };
    let _ = load_bytes("fuzz-input", rest, &options);
});
