//! Config file parsing and validation: `arcus`'s `config_file::fuzz_config`.
#![no_main]
#![allow(dead_code)]

#[path = "../../crates/cli/src/config_file.rs"]
mod config_file;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = config_file::fuzz_config(data);
});
