//! Configuration files: YAML parsing, `${env:…}` expansion and validation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = llmhub::config::from_yaml_str(text);
    }
});
