//! SigV4 `Authorization` parsing and verification: `arcus_gateway`'s `sigv4::fuzz_sigv4`.
#![no_main]
#![allow(dead_code)]

#[path = "../../crates/gateway/src/sigv4.rs"]
mod sigv4;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sigv4::fuzz_sigv4(data);
});
