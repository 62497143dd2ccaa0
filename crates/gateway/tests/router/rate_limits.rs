//! Request-rate limits through the router: a function's bucket refuses past its burst
//! with 429 `rate_limited` and `Retry-After`, leaves the app's other functions alone, an
//! app's bucket caps the sum of its functions, and bad values are refused.

use crate::common::{Harness, Resp, req};
use serde_json::json;

/// Calls `/fn/{app}/{f}/` `n` times; returns the answers.
async fn calls(h: &Harness, app: &str, f: &str, n: usize) -> Vec<Resp> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(h.send(req("GET", &format!("/fn/{app}/{f}/"))).await);
    }
    out
}

fn admitted(resps: &[Resp]) -> usize {
    resps.iter().filter(|r| r.status.as_u16() != 429).count()
}

/// Deploys `hello` as `app/f`, warms it, then sets the function's rate limit (so the
/// timed calls that follow are all warm and fast).
async fn limited(h: &Harness, app: &str, f: &str, scaling: serde_json::Value) {
    h.deploy(app, f, "hello", json!({})).await;
    h.send(req("GET", &format!("/fn/{app}/{f}/")))
        .await
        .expect(200);
    h.call_json(
        "PATCH",
        &format!("/api/v1/apps/{app}/functions/{f}"),
        json!({ "scaling": scaling }),
    )
    .await
    .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_limit_refuses_past_its_burst_and_spares_other_functions() {
    let h = Harness::new().await;
    // 1 request/s refill: the 7 calls below take far less than a second.
    limited(
        &h,
        "shop",
        "limited",
        json!({ "rate_limit_rps": 1, "rate_limit_burst": 5 }),
    )
    .await;
    h.deploy("shop", "free", "hello", json!({})).await;
    let got = calls(&h, "shop", "limited", 7).await;
    for r in &got[..5] {
        r.expect(200);
    }
    for r in &got[5..] {
        r.expect_error(429, "rate_limited");
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("shop/limited")
        );
    }
    // The API invoke shares the function's bucket.
    h.call_json(
        "POST",
        "/api/v1/apps/shop/functions/limited/invoke",
        json!({}),
    )
    .await
    .expect_error(429, "rate_limited");
    // Another function of the app is not limited by it.
    let free = calls(&h, "shop", "free", 7).await;
    assert_eq!(admitted(&free), 7);
    // One bucket held: the limited function's (no app limit, none for `free`).
    assert_eq!(h.engine.rate_buckets(), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_limit_caps_the_sum_of_its_functions() {
    let h = Harness::new().await;
    h.deploy("capped", "f", "hello", json!({})).await;
    h.deploy("capped", "g", "hello", json!({})).await;
    calls(&h, "capped", "f", 1).await[0].expect(200);
    calls(&h, "capped", "g", 1).await[0].expect(200);
    h.call_json(
        "PATCH",
        "/api/v1/apps/capped",
        json!({ "quotas": { "rate_limit_rps": 1, "rate_limit_burst": 4 } }),
    )
    .await
    .expect(200);
    let mut all = Vec::new();
    for _ in 0..3 {
        all.extend(calls(&h, "capped", "f", 1).await);
        all.extend(calls(&h, "capped", "g", 1).await);
    }
    assert_eq!(admitted(&all), 4);
    let refused = all.iter().find(|r| r.status.as_u16() == 429).unwrap();
    assert!(
        refused.text().contains("app `capped`"),
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    // Removing the limit lifts it at once.
    h.call_json("PATCH", "/api/v1/apps/capped", json!({ "quotas": {} }))
        .await
        .expect(200);
    assert_eq!(admitted(&calls(&h, "capped", "f", 3).await), 3);
    // Deleting the app drops its buckets.
    h.call("DELETE", "/api/v1/apps/capped?force=true")
        .await
        .expect(204);
    assert_eq!(h.engine.rate_buckets(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rate_limits_are_refused_and_change_nothing() {
    let h = Harness::new().await;
    h.create_app("shop").await;
    h.create_function("shop", json!({ "name": "f" })).await;
    for quotas in [
        json!({ "rate_limit_rps": 0 }),
        json!({ "rate_limit_rps": 1_000_001 }),
        json!({ "rate_limit_burst": 3 }),
        json!({ "rate_limit_rps": 3, "rate_limit_burst": 0 }),
        json!({ "rate_limit_rps": -1 }),
    ] {
        let r = req("PATCH", "/api/v1/apps/shop")
            .token()
            .json(&json!({ "quotas": quotas }));
        h.fails(r, 400, "invalid_request").await;
    }
    for scaling in [
        json!({ "rate_limit_rps": 0 }),
        json!({ "rate_limit_burst": 2 }),
        json!({ "rate_limit_rps": 2, "rate_limit_burst": 1_000_001 }),
    ] {
        let r = req("PATCH", "/api/v1/apps/shop/functions/f")
            .token()
            .json(&json!({ "scaling": scaling }));
        h.fails(r, 400, "invalid_request").await;
    }
    let r = req("POST", "/api/v1/apps/shop/functions")
        .token()
        .json(&json!({ "name": "g", "scaling": { "rate_limit_rps": 0 } }));
    h.fails(r, 400, "invalid_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_per_app_are_limited() {
    use arcus_core::limits::MAX_FUNCTIONS_PER_APP;
    let h = Harness::new().await;
    h.create_app("many").await;
    h.create_app("other").await;
    for i in 0..MAX_FUNCTIONS_PER_APP {
        h.create_function("many", json!({ "name": format!("f{i}") }))
            .await;
    }
    let r = req("POST", "/api/v1/apps/many/functions")
        .token()
        .json(&json!({ "name": "one-more" }));
    let over = h.fails(r, 409, "conflict").await;
    assert!(over.text().contains("1000"), "{}", over.text());
    // Other apps have room.
    h.create_function("other", json!({ "name": "f" })).await;
}
