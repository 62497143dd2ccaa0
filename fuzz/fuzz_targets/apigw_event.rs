//! HTTP request → API Gateway v2 event: `arcus_engine::apigw::fuzz_request_event`.
#![no_main]
#![allow(dead_code)]

#[path = "../../crates/engine/src/apigw.rs"]
mod apigw;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    apigw::fuzz_request_event(data);
});
