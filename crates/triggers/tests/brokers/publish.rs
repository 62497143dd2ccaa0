//! Destination publishers against a local HTTP server, NATS and RabbitMQ.

use super::common::*;
use arcus_core::events::Destination;
use arcus_testkit::proxy::Proxy;
use arcus_triggers::publish::Publishers;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP server answering 200 on `/ok` and 500 elsewhere; keeps the bodies received.
async fn http_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let b = b.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let ok = text.starts_with("POST /ok ");
                    assert!(
                        text.to_ascii_lowercase()
                            .contains("content-type: application/json")
                    );
                    b.lock()
                        .unwrap()
                        .push(text[end + 4..end + 4 + len].to_string());
                    let status = if ok {
                        "200 OK"
                    } else {
                        "500 Internal Server Error"
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                    return;
                }
            });
        }
    });
    (format!("http://{addr}"), bodies)
}

#[tokio::test]
async fn publish_http_posts_the_record_and_needs_a_2xx() {
    let (base, bodies) = http_server().await;
    let p = Publishers::new();
    let ok = Destination::Http {
        url: format!("{base}/ok"),
    };
    p.send(&ok, Bytes::from_static(br#"{"id":"a"}"#))
        .await
        .unwrap();
    assert_eq!(bodies.lock().unwrap().as_slice(), [r#"{"id":"a"}"#]);
    let fail = Destination::Http {
        url: format!("{base}/fail"),
    };
    let err = p.send(&fail, Bytes::from_static(b"{}")).await.unwrap_err();
    assert!(err.message.contains("500"), "{err}");
    let port = dead_port().await;
    let dead = Destination::Http {
        url: format!("http://127.0.0.1:{port}/"),
    };
    assert!(p.send(&dead, Bytes::from_static(b"{}")).await.is_err());
    let f = Destination::Function {
        function: "f".into(),
        qualifier: None,
    };
    assert!(p.send(&f, Bytes::from_static(b"{}")).await.is_err());
}

#[cfg(feature = "nats")]
#[tokio::test]
async fn publish_nats_reaches_the_subject_and_survives_a_cut() {
    use futures::StreamExt as _;
    let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
    let subject = format!("arcus.test.{}", uuid::Uuid::new_v4().simple());
    let mut sub = client.subscribe(subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let proxy = Proxy::start("127.0.0.1:4222").await;
    let d = Destination::Nats {
        url: format!("nats://{}", proxy.host_port()),
        subject,
    };
    let p = Publishers::new();
    p.send(&d, Bytes::from_static(br#"{"n":1}"#)).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], br#"{"n":1}"#);
    // The client reconnects by itself after a cut; core NATS is at most once, so
    // publish until one gets through.
    proxy.cut();
    let mut got = false;
    for i in 0..100 {
        let body = Bytes::from(format!(r#"{{"n":{}}}"#, 2 + i));
        if p.send(&d, body).await.is_ok()
            && let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await
        {
            got = true;
            break;
        }
    }
    assert!(got, "no publish got through after the cut");
    assert!(proxy.connections() >= 2);
}

#[cfg(feature = "nats")]
#[tokio::test]
async fn publish_nats_is_acked_by_a_stream_that_captures_the_subject() {
    use async_nats::jetstream;
    let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
    let js = jetstream::new(client);
    let name = unique("ARCUS_DEST");
    let subject = format!("arcus.dest.{}", uuid::Uuid::new_v4().simple());
    let mut stream = js
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let p = Publishers::new();
    let d = Destination::Nats {
        url: "nats://127.0.0.1:4222".into(),
        subject,
    };
    for _ in 0..3 {
        p.send(&d, Bytes::from_static(br#"{"n":1}"#)).await.unwrap();
    }
    // Acked by the stream: they are stored by the time send returns.
    assert_eq!(stream.info().await.unwrap().state.messages, 3);
    js.delete_stream(&name).await.unwrap();
}

#[cfg(feature = "amqp")]
#[tokio::test]
async fn publish_amqp_is_confirmed_and_unroutable_is_an_error() {
    use lapin::options::{BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
    use lapin::types::FieldTable;
    let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let conn = lapin::Connection::connect(url, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queue = unique("arcus-dest");
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let p = Publishers::new();
    let d = Destination::Amqp {
        url: url.into(),
        exchange: String::new(),
        routing_key: queue.clone(),
    };
    p.send(&d, Bytes::from_static(br#"{"n":1}"#)).await.unwrap();
    let got = ch
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the record is in the queue");
    assert_eq!(got.delivery.data, br#"{"n":1}"#);
    assert_eq!(
        got.delivery
            .properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str()),
        Some("application/json")
    );
    let nowhere = Destination::Amqp {
        url: url.into(),
        exchange: String::new(),
        routing_key: unique("no-such-queue"),
    };
    let err = p
        .send(&nowhere, Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    assert!(err.message.contains("unroutable"), "{err}");
    // The channel is still usable after the returned message.
    p.send(&d, Bytes::from_static(br#"{"n":2}"#)).await.unwrap();
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
}
