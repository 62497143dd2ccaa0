//! End-to-end: the activator and the instance lifecycle — a burst far over a function's
//! capacity queues and completes without errors; past the queue timeout it is throttled;
//! app quotas bound what an app runs; idle components are unloaded after keep-alive;
//! scale-down and moving `live` under continuous load fail no request; a node holds a
//! thousand functions sharing their code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::{CreateFunction, PublishVersion, PutAlias, UpdateApp};
use arcus_core::model::Runtime;
use arcus_core::scaling::{AppQuotas, Scaling};
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use common::{bin, http, invoke_api, poll};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Calls `url` from `workers` concurrent loops until `stop` is set (at most `cap` calls
/// each); returns every (status, `x-arcus-version`) seen.
async fn load(
    url: String,
    workers: usize,
    cap: usize,
    stop: Arc<AtomicBool>,
) -> Vec<(u16, Option<String>)> {
    let http = http();
    let loops = (0..workers).map(|_| {
        let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
        async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) && seen.len() < cap {
                let r = http.get(&url).send().await.unwrap();
                let version = r
                    .headers()
                    .get("x-arcus-version")
                    .map(|v| v.to_str().unwrap().to_string());
                seen.push((r.status().as_u16(), version));
            }
            seen
        }
    });
    futures::future::join_all(loops).await.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_component_is_unloaded_after_keep_alive_and_the_next_call_cold_starts() {
    let node = Node::start(bin());
    node.create_app("zero").await;
    let scaling = Scaling {
        keep_alive_s: 1,
        ..Default::default()
    };
    node.deploy("zero", sleeper("nap", scaling), &fixtures::path("sleep"))
        .await;
    let client = node.client();
    let r = http()
        .get(node.fn_url("zero/nap", "sleep?ms=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed = client.list_instances("zero", "nap").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].cold_start_ms.is_some());
    // A request longer than keep-alive keeps it loaded while it runs.
    let long = http().get(node.fn_url("zero/nap", "sleep?ms=2500")).send();
    let during = async {
        tokio::time::sleep(Duration::from_millis(2000)).await;
        client.list_instances("zero", "nap").await.unwrap()
    };
    let (long, during) = tokio::join!(long, during);
    assert_eq!(long.unwrap().status(), 200);
    assert_eq!(during.len(), 1, "unloaded while busy: {during:?}");
    assert_eq!(during[0].in_flight, 1);
    // Idle past keep-alive: unloaded (scale to zero).
    poll(
        "the component to be unloaded",
        Duration::from_secs(10),
        || async {
            client
                .list_instances("zero", "nap")
                .await
                .unwrap()
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let r = http()
        .get(node.fn_url("zero/nap", "sleep?ms=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-arcus-invocation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let record = poll(
        "the record of the call after unloading",
        Duration::from_secs(10),
        || async {
            let records = client
                .list_invocations("zero", "nap", Some(10))
                .await
                .unwrap();
            records.into_iter().find(|r| r.id == id)
        },
    )
    .await;
    assert!(record.cold_start, "{record:?}");
    // With min_instances 1 it stays loaded however long it idles.
    let pinned = Scaling {
        keep_alive_s: 1,
        min_instances: 1,
        ..Default::default()
    };
    node.deploy("zero", sleeper("kept", pinned), &fixtures::path("sleep"))
        .await;
    poll(
        "the pinned component to load",
        Duration::from_secs(10),
        || async {
            (!client
                .list_instances("zero", "kept")
                .await
                .unwrap()
                .is_empty())
            .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        client.list_instances("zero", "kept").await.unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_quotas_bound_running_instances_across_functions() {
    let node = Node::start(bin());
    node.create_app("quota").await;
    let client = node.client();
    let scaling = Scaling {
        queue_timeout_ms: 300,
        ..Default::default()
    };
    for name in ["a", "b"] {
        node.deploy("quota", sleeper(name, scaling), &fixtures::path("sleep"))
            .await;
    }
    // Bad quotas are refused and change nothing.
    let bad = UpdateApp {
        quotas: Some(AppQuotas {
            max_instances: Some(0),
            ..AppQuotas::default()
        }),
        ..Default::default()
    };
    let err = client.update_app("quota", &bad).await.unwrap_err();
    assert!(err.to_string().contains("max_instances"), "{err}");
    assert_eq!(
        client.get_app("quota").await.unwrap().quotas,
        AppQuotas::default()
    );
    // Two instances for the whole app.
    let out = node.cli(["app", "quota", "quota", "--max-instances", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        client.get_app("quota").await.unwrap().quotas.max_instances,
        Some(2)
    );
    let http = http();
    let slow = |f: &str| {
        http.get(node.fn_url(&format!("quota/{f}"), "sleep?ms=1500"))
            .send()
    };
    let late = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        http.get(node.fn_url("quota/b", "sleep?ms=1"))
            .send()
            .await
            .unwrap()
    };
    let (one, two, late) = tokio::join!(slow("a"), slow("b"), late);
    assert_eq!(
        (
            one.unwrap().status().as_u16(),
            two.unwrap().status().as_u16()
        ),
        (200, 200)
    );
    assert_eq!(late.status(), 429);
    assert!(late.headers().contains_key("retry-after"));
    let body: serde_json::Value = late.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("quota"),
        "{body}"
    );
    // Lifting the quota lets the same load through.
    let out = node.cli(["app", "quota", "quota"]);
    assert!(out.status.success());
    let (one, two, three) = tokio::join!(slow("a"), slow("b"), slow("b"));
    for r in [one, two, three] {
        assert_eq!(r.unwrap().status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_live_between_versions_under_load_fails_no_request() {
    let node = Node::start(bin());
    node.create_app("roll").await;
    let v1 = node
        .deploy(
            "roll",
            sleeper("f", Scaling::default()),
            &fixtures::path("sleep"),
        )
        .await;
    let client = node.client();
    let v2 = client
        .publish_version("roll", "f", &PublishVersion::default())
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(load(
        node.fn_url("roll/f", "sleep?ms=5"),
        6,
        5_000,
        stop.clone(),
    ));
    for v in [v2.version, v1.version, v2.version, v1.version] {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let to = PutAlias {
            version: v,
            canary: None,
        };
        client.put_alias("roll", "f", "live", &to).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.unwrap();
    let failed: Vec<_> = seen.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        seen.len()
    );
    for v in [v1.version, v2.version] {
        let v = v.to_string();
        assert!(
            seen.iter()
                .any(|(_, got)| got.as_deref() == Some(v.as_str())),
            "version {v} never served"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_function_scales_down_under_continuous_load_without_errors() {
    // The autoscaler keeps what its stable window saw: a short one lets the test end.
    let node = Node::start_with_config(bin(), "[autoscale]\nstable_window_s = 6\n");
    node.create_app("down").await;
    let spec = CreateFunction {
        name: "echo".to_string(),
        runtime: Some(Runtime::Python3),
        handler: Some("app.handler".to_string()),
        scaling: Some(Scaling {
            keep_alive_s: 1,
            max_instances: 8,
            ..Default::default()
        }),
        ..Default::default()
    };
    node.deploy_code("down", spec, fixtures::handler_zip("python"))
        .await;
    // Ramp up: 24 concurrent calls start several instances, listed as starting
    // meanwhile.
    let client = node.client();
    let calls = (0..24).map(|n| {
        let node = &node;
        async move {
            let (status, _, body) = invoke_api(node, "down/echo", json!({"n": n})).await;
            (status, body)
        }
    });
    let done = AtomicBool::new(false);
    let watch = async {
        let mut states = std::collections::BTreeSet::new();
        while !done.load(Ordering::Relaxed) {
            for i in client.list_instances("down", "echo").await.unwrap() {
                states.insert(format!("{:?}", i.state));
            }
            // Starts take tens of ms; do not starve them of the node's CPU.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        states
    };
    let (statuses, states) = tokio::join!(
        async {
            let s = futures::future::join_all(calls).await;
            done.store(true, Ordering::Relaxed);
            s
        },
        watch
    );
    let failed: Vec<_> = statuses.iter().filter(|(s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(states.contains("Starting"), "{states:?}");
    let peak = client.list_instances("down", "echo").await.unwrap().len();
    assert!(peak > 1, "the burst ran on {peak} instance(s)");
    // One caller keeps going while the others' instances idle out and are reclaimed.
    let started = Instant::now();
    let mut fewest = peak;
    while started.elapsed() < Duration::from_secs(20) {
        let (status, _, body) = invoke_api(&node, "down/echo", json!({})).await;
        assert_eq!(status, 200, "{body}");
        fewest = fewest.min(client.list_instances("down", "echo").await.unwrap().len());
        if fewest == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fewest, 1, "idle instances were not reclaimed (from {peak})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_functions_share_ten_code_blobs_and_all_answer() {
    let node = Node::start(bin());
    node.create_app("dense").await;
    let client = node.client();
    // Ten distinct components: the hello component with a distinct custom section each.
    let hello = std::fs::read(fixtures::path("hello")).unwrap();
    let variants: Vec<Vec<u8>> = (0..10u8)
        .map(|n| {
            let mut v = hello.clone();
            let name = b"arcus-variant";
            // Custom section: id 0, size, name length, name, payload (one byte).
            v.extend_from_slice(&[0, (1 + name.len() + 1) as u8, name.len() as u8]);
            v.extend_from_slice(name);
            v.push(n);
            v
        })
        .collect();
    let deploys = futures::stream::iter(0..1000usize).map(|i| {
        let node = &node;
        let code = variants[i % 10].clone();
        async move {
            let spec = CreateFunction {
                name: format!("f{i}"),
                ..Default::default()
            };
            node.deploy_code("dense", spec, code).await
        }
    });
    use futures::StreamExt;
    let versions: Vec<_> = deploys.buffer_unordered(8).collect().await;
    let shas: std::collections::BTreeSet<_> = versions.iter().map(|v| v.sha256.clone()).collect();
    assert_eq!(shas.len(), 10, "identical code is stored once");
    assert_eq!(client.list_functions("dense").await.unwrap().len(), 1000);
    // Round robin over all of them.
    let http = http();
    let calls = futures::stream::iter(0..1000usize).map(|i| {
        let (http, url) = (http.clone(), node.fn_url(&format!("dense/f{i}"), ""));
        async move {
            let r = http.get(&url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    let results: Vec<_> = calls.buffer_unordered(16).collect().await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
    }
    // Each loaded component serves every function that shares its code.
    let listed = client.list_instances("dense", "f7").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_process_memory_budget_evicts_idle_instances_of_other_functions() {
    let node = Node::start_with_config(bin(), "[process]\nmemory_budget_mb = 400\n");
    node.create_app("mem").await;
    let spec = |name: &str, memory_mb: u32| CreateFunction {
        name: name.to_string(),
        runtime: Some(Runtime::Python3),
        handler: Some("app.handler".to_string()),
        memory_mb: Some(memory_mb),
        ..Default::default()
    };
    let code = fixtures::handler_zip("python");
    for (name, mb) in [("f", 256), ("g", 256), ("huge", 512)] {
        node.deploy_code("mem", spec(name, mb), code.clone()).await;
    }
    let client = node.client();
    let (status, _, body) = invoke_api(&node, "mem/f", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(client.list_instances("mem", "f").await.unwrap().len(), 1);
    // g does not fit next to f's idle instance: f's goes.
    let (status, _, body) = invoke_api(&node, "mem/g", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(client.list_instances("mem", "f").await.unwrap().is_empty());
    assert_eq!(client.list_instances("mem", "g").await.unwrap().len(), 1);
    // A function larger than the whole budget never starts.
    let (status, _, body) = invoke_api(&node, "mem/huge", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("no_capacity")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memory budget"),
        "{body}"
    );
}
