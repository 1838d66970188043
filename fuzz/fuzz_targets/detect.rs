//! Every detector on whatever loads: the engine turns a detector panic into a diagnostic so a
//! run goes on; here such a diagnostic is a crash, so the fuzzer reports it.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pisama_detect::{Engine, EngineConfig};
use pisama_trace::load::{LoadOptions, load_bytes};

static ENGINE: LazyLock<Engine> =
    LazyLock::new(|| Engine::new(&EngineConfig::default()).expect("built-in catalogue loads"));

fuzz_target!(|data: &[u8]| {
    let Ok((_, traces)) = load_bytes("fuzz-input", data, &LoadOptions::default()) else {
        return;
    };
    for loaded in &traces {
        let report = ENGINE.run(&loaded.trace);
        if let Some(d) = report.diagnostics.first() {
            panic!("detector {} panicked: {}", d.detector, d.message);
        }
    }
});
