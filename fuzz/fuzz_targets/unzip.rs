//! Code upload extraction: `arcus_runtime_process::package::fuzz_unpack`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    arcus_runtime_process::package::fuzz_unpack(data);
});
