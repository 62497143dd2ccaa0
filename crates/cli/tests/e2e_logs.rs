//! End-to-end: log lines through the real `arcus` binary — wasm START/END/REPORT
//! lines, filters (text, stream, time range) and cursor pages, a live SSE follow that
//! resumes after `Last-Event-ID` with exactly the missed lines, and `arcus logs -f`
//! reconnecting through a cut connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcus_core::api::CreateFunction;
use arcus_testkit::fixtures;
use arcus_testkit::node::Node;
use arcus_testkit::proxy::Proxy;
use common::{api_get_ok as get_ok, bin, http};
use serde_json::Value;
use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn plain(name: &str) -> CreateFunction {
    CreateFunction {
        name: name.to_string(),
        ..Default::default()
    }
}

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().unwrap().clone()
}

/// Calls `logger` printing `n` stdout lines (and one stderr line); its invocation id.
async fn log_lines(node: &Node, target: &str, n: u32) -> String {
    let resp = http()
        .get(node.fn_url(target, &format!("/?lines={n}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-arcus-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    resp.bytes().await.unwrap();
    id
}

/// Waits (polling every 200 ms, 10 s at most) until the invocation's REPORT line is
/// stored; returns its lines oldest first.
async fn stored(node: &Node, app: &str, id: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut lines = items(&get_ok(node, &format!("apps/{app}/logs?invocation_id={id}")).await);
        lines.reverse();
        if lines
            .last()
            .is_some_and(|l| l["message"].as_str().unwrap().starts_with("REPORT"))
        {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "lines of {id} never stored: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An open SSE follow, read event by event.
struct Follow {
    resp: reqwest::Response,
    buf: String,
}

impl Follow {
    async fn open(node: &Node, path: &str, last_event_id: Option<u64>) -> Follow {
        let mut req = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{}/api/v1/{path}", node.url()))
            .query(&[("follow", "true")])
            .bearer_auth(node.token());
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Follow {
            resp,
            buf: String::new(),
        }
    }

    /// The next `n` events with data: (event id, line), within 15 s.
    async fn take(&mut self, n: usize) -> Vec<(u64, Value)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut out = Vec::new();
        while out.len() < n {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_string())
                };
                if let (Some(id), Some(data)) = (field("id:"), field("data:")) {
                    out.push((id.parse().unwrap(), serde_json::from_str(&data).unwrap()));
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .unwrap_or_else(|_| panic!("{n} events in time, got {out:?}"))
                .unwrap()
                .expect("the stream stays open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        out
    }
}

fn messages(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect()
}

fn check_platform_lines(lines: &[Value], id: &str, version: &str) {
    let m = messages(lines);
    assert_eq!(m[0], format!("START RequestId: {id} Version: {version}"));
    assert_eq!(m[m.len() - 2], format!("END RequestId: {id}"));
    let report = m[m.len() - 1];
    let prefix = format!("REPORT RequestId: {id}\tDuration: ");
    assert!(report.starts_with(&prefix), "{report}");
    assert!(report.contains(" ms\tBilled Duration: "), "{report}");
    assert!(
        report.contains(" ms\tMemory Size: 128 MB\tMax Memory Used: "),
        "{report}"
    );
    let used = arcus_testkit::report_max_memory_mb(report);
    assert!((1..=128).contains(&used), "{report}");
    for (i, l) in lines.iter().enumerate() {
        let platform = i == 0 || i >= lines.len() - 2;
        assert_eq!(l["stream"] == "platform", platform, "{l}");
        assert_eq!(l["invocation_id"], id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_resumes_after_last_event_id_with_exactly_the_missed_lines() {
    let node = Node::start(bin());
    node.create_app("logs").await;
    node.deploy("logs", plain("logger"), &fixtures::path("logger"))
        .await;
    let path = "apps/logs/functions/logger/logs";

    let mut follow = Follow::open(&node, path, None).await;
    let a = log_lines(&node, "logs/logger", 2).await;
    let b = log_lines(&node, "logs/logger", 2).await;
    let first = follow.take(12).await;
    let lines: Vec<Value> = first.iter().map(|e| e.1.clone()).collect();
    check_platform_lines(&lines[..6], &a, "1");
    check_platform_lines(&lines[6..], &b, "1");
    assert!(first.iter().all(|(id, l)| l["seq"] == *id));
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0));
    let last = first.last().unwrap().0;

    // Dropped: what is written meanwhile comes back on reconnect, once, in order.
    drop(follow);
    let c = log_lines(&node, "logs/logger", 1).await;
    let d = log_lines(&node, "logs/logger", 3).await;
    let missed: Vec<Value> = [
        stored(&node, "logs", &c).await,
        stored(&node, "logs", &d).await,
    ]
    .concat();
    let mut follow = Follow::open(&node, path, Some(last)).await;
    let replayed = follow.take(missed.len()).await;
    let seqs: Vec<u64> = replayed.iter().map(|e| e.0).collect();
    let want: Vec<u64> = missed.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, want);
    assert_eq!(
        seqs[0],
        last + 1,
        "nothing between the last event and the replay"
    );
    check_platform_lines(&missed[..5], &c, "1");
    // Then live again on the same stream.
    let e = log_lines(&node, "logs/logger", 1).await;
    let live = follow.take(5).await;
    assert_eq!(live[0].0, seqs.last().unwrap() + 1);
    assert!(live.iter().all(|(_, l)| l["invocation_id"] == e));
    // `?after=` resumes the same way as the header.
    let mut after = Follow::open(&node, &format!("{path}?after={last}"), None).await;
    let again = after.take(missed.len()).await;
    assert_eq!(again.iter().map(|e| e.0).collect::<Vec<_>>(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_queries_filter_by_text_stream_and_time_in_cursor_pages() {
    let node = Node::start(bin());
    node.create_app("logs").await;
    node.deploy("logs", plain("logger"), &fixtures::path("logger"))
        .await;
    node.deploy("logs", plain("hello"), &fixtures::path("hello"))
        .await;
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(log_lines(&node, "logs/logger", n).await);
    }
    let hello = http()
        .get(node.fn_url("logs/hello", "/"))
        .send()
        .await
        .unwrap();
    let hello_id = hello.headers()["x-arcus-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    hello.bytes().await.unwrap();
    let mut per_call = Vec::new();
    for id in &ids {
        per_call.push(stored(&node, "logs", id).await);
    }
    let hello_lines = stored(&node, "logs", &hello_id).await;
    check_platform_lines(&hello_lines, &hello_id, "1");

    // Every line of the function, newest first, in pages of 4 that join up exactly.
    let all = items(&get_ok(&node, "apps/logs/functions/logger/logs?limit=1000").await);
    assert_eq!(all.len(), (2 + 3) + (3 + 3) + (4 + 3) + (5 + 3));
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("apps/logs/functions/logger/logs?limit=4&cursor={c}"),
            None => "apps/logs/functions/logger/logs?limit=4".to_string(),
        };
        let page = get_ok(&node, &q).await;
        assert!(items(&page).len() <= 4);
        paged.extend(items(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    // The app route holds both functions.
    let app = items(&get_ok(&node, "apps/logs/logs?limit=1000").await);
    assert_eq!(app.len(), all.len() + hello_lines.len());
    assert_eq!(app[0]["function"], "hello");

    // Text (case-sensitive), stream, time range.
    let text = items(&get_ok(&node, "apps/logs/logs?text=stdout%20line%204").await);
    assert_eq!(messages(&text), ["stdout line 4"]);
    assert!(items(&get_ok(&node, "apps/logs/logs?text=STDOUT").await).is_empty());
    let stderr = items(&get_ok(&node, "apps/logs/functions/logger/logs?stream=stderr").await);
    assert_eq!(stderr.len(), 4);
    assert!(stderr.iter().all(|l| l["stream"] == "stderr"));
    let platform = items(&get_ok(&node, "apps/logs/logs?stream=platform&limit=1000").await);
    assert_eq!(platform.len(), 5 * 3);
    // [start of call 2, start of call 4): the lines captured in that time — calls 2
    // and 3 (and the END of a call whose record closed after the next one started,
    // as a streamed body's record closes once the body is sent).
    let since = per_call[1][0]["timestamp"].as_str().unwrap();
    let until = per_call[3][0]["timestamp"].as_str().unwrap();
    let range = items(
        &get_ok(
            &node,
            &format!("apps/logs/functions/logger/logs?limit=1000&since={since}&until={until}"),
        )
        .await,
    );
    let at = |l: &Value| {
        let t = l["timestamp"].as_str().unwrap();
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let (from, to) = (at(&per_call[1][0]), at(&per_call[3][0]));
    let want: Vec<Value> = all
        .iter()
        .filter(|l| (from..to).contains(&at(l)))
        .cloned()
        .collect();
    assert_eq!(range, want);
    for call in &per_call[1..3] {
        assert!(call[..call.len() - 2].iter().all(|l| range.contains(l)));
    }

    let resp = http()
        .get(format!("{}/api/v1/apps/logs/logs?since=today", node.url()))
        .bearer_auth(node.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");

    // The CLI's one-shot listing with the same filters, oldest first.
    let out = node.cli([
        "logs",
        "logs/logger",
        "--grep",
        "line 3",
        "--stream",
        "stdout",
    ]);
    let out = common::ok(&out);
    let printed: Vec<&str> = out.lines().collect();
    assert_eq!(printed.len(), 2, "{out}");
    assert!(printed.iter().all(|l| l.ends_with("stdout line 3")));
    assert!(
        printed[0].contains(&ids[2]) && printed[1].contains(&ids[3]),
        "{out}"
    );
}

/// Reads the CLI's lines into `printed` until `pred` holds (15 s at most).
fn wait_for(
    rx: &mpsc::Receiver<String>,
    printed: &mut Vec<String>,
    pred: &dyn Fn(&[String]) -> bool,
    what: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !pred(printed) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(_) => panic!("arcus logs -f never printed {what}; got {printed:#?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_follow_prints_new_lines_and_resumes_after_a_cut_connection() {
    let node = Node::start(bin());
    node.create_app("logs").await;
    node.deploy("logs", plain("logger"), &fixtures::path("logger"))
        .await;
    let before = log_lines(&node, "logs/logger", 1).await;
    stored(&node, "logs", &before).await;
    let proxy = Proxy::start(&node.addr().to_string()).await;

    let mut child = node
        .command(["logs", "-f", "logs/logger", "--limit", "2"])
        .env("ARCUS_URL", format!("http://{}", proxy.host_port()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut printed: Vec<String> = Vec::new();
    let reports = |p: &[String], id: &str| {
        p.iter()
            .filter(|l| l.contains(&format!("REPORT RequestId: {id}")))
            .count()
    };
    // The backlog first (the newest 2 lines: END and REPORT of the earlier call).
    wait_for(
        &rx,
        &mut printed,
        &|p| reports(p, &before) == 1,
        "the backlog",
    );
    assert_eq!(printed.len(), 2, "{printed:#?}");

    let live = log_lines(&node, "logs/logger", 2).await;
    wait_for(
        &rx,
        &mut printed,
        &|p| reports(p, &live) == 1,
        "a live invocation",
    );
    assert_eq!(printed.len(), 2 + 6, "{printed:#?}");

    // Cut the connection; lines written while it is down are printed once it is back.
    proxy.cut();
    let missed = log_lines(&node, "logs/logger", 1).await;
    let after = log_lines(&node, "logs/logger", 1).await;
    wait_for(
        &rx,
        &mut printed,
        &|p| reports(p, &after) == 1,
        "the lines after the cut",
    );
    assert_eq!(printed.len(), 2 + 6 + 5 + 5, "{printed:#?}");
    for id in [&live, &missed, &after] {
        assert_eq!(reports(&printed, id), 1, "{printed:#?}");
    }
    let stdout_lines: Vec<&String> = printed.iter().filter(|l| l.contains(&*missed)).collect();
    assert!(
        stdout_lines.iter().any(|l| l.ends_with("stdout line 1")),
        "{printed:#?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("reconnecting"),
        "the follow never reconnected: {stderr}"
    );
    // One connection for the backlog page and the first follow, one after the cut.
    assert!(proxy.connections() >= 2, "{}", proxy.connections());
}
