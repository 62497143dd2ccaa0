//! Handler result → HTTP response: `arcus_engine::apigw::fuzz_result_response`.
#![no_main]
#![allow(dead_code)]

#[path = "../../crates/engine/src/apigw.rs"]
mod apigw;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    apigw::fuzz_result_response(data);
});
