//! End-to-end: the activator in front of wasm functions — a burst far over a function's
//! capacity queues and completes without errors; past the queue timeout it is throttled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_core::scaling::Scaling;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{bin, http};
use std::time::{Duration, Instant};

fn sleeper(name: &str, scaling: Scaling) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        scaling: Some(scaling),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_waits_for_4_instances_of_10_and_all_complete() {
    let node = Node::start(bin());
    node.create_app("burst").await;
    let scaling = Scaling {
        max_instances: 4,
        concurrency_per_instance: Some(10),
        ..Default::default()
    };
    node.deploy("burst", sleeper("nap", scaling), &fixtures::path("sleep"))
        .await;
    let http = http();
    let url = node.fn_url("burst/nap", "sleep?ms=50");
    let started = Instant::now();
    let calls = (0..200).map(|_| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http.get(&url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    let results = futures::future::join_all(calls).await;
    let took = started.elapsed();
    for (status, body) in &results {
        assert_eq!((*status, body.as_str()), (200, "slept 50"));
    }
    // 200 requests of 50 ms through 40 slots take at least 5 rounds.
    assert!(
        took >= Duration::from_millis(250),
        "{took:?}: the cap was not applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_queue_timeout_requests_are_throttled_with_retry_after() {
    let node = Node::start(bin());
    node.create_app("cap").await;
    let scaling = Scaling {
        max_instances: 1,
        concurrency_per_instance: Some(1),
        queue_timeout_ms: 200,
        ..Default::default()
    };
    node.deploy("cap", sleeper("one", scaling), &fixtures::path("sleep"))
        .await;
    let http = http();
    let busy = http.get(node.fn_url("cap/one", "sleep?ms=1500")).send();
    let late = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        http.get(node.fn_url("cap/one", "sleep?ms=1"))
            .send()
            .await
            .unwrap()
    };
    let (busy, late) = tokio::join!(busy, late);
    assert_eq!(busy.unwrap().status(), 200);
    assert_eq!(late.status(), 429);
    assert!(late.headers().contains_key("retry-after"));
    let body: serde_json::Value = late.json().await.unwrap();
    assert_eq!(body["error"]["code"], "throttled");
    // Once the slot is free the function answers again.
    let r = http
        .get(node.fn_url("cap/one", "sleep?ms=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
