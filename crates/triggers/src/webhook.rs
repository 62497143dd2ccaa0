//! The webhook source: `POST /hooks/{trigger id}` accepts a CloudEvent 1.0 in binary
//! mode (`ce-*` headers and the data as body) or structured mode
//! (`content-type: application/cloudevents+json`), checks the optional HMAC signature
//! and queues the event, as structured JSON, as an async invocation.

use crate::source::{Source, SourceCtx};
use arcus_core::{Error, ErrorCode, Result};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde_json::{Map, Value};
use sha2::Sha256;

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-arcus-signature";
/// The public path of a webhook trigger.
pub fn hook_path(trigger_id: &str) -> String {
    format!("/hooks/{trigger_id}")
}

/// The [`Source`] of `type: webhook` triggers: nothing to connect; requests arrive
/// through [`crate::Manager::webhook`].
pub(crate) struct WebhookSource;

#[async_trait]
impl Source for WebhookSource {
    async fn run(self: Box<Self>, ctx: SourceCtx) {
        ctx.status.connected();
        ctx.cancel.cancelled().await;
    }
}

/// Checks `x-arcus-signature: sha256=<hex>` against the HMAC-SHA256 of `body` under
/// `secret`, in constant time; `unauthorized` when missing or wrong.
pub fn verify_signature(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<()> {
    let unauthorized = |m: &str| Error::new(ErrorCode::Unauthorized, m);
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("missing x-arcus-signature header"))?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| unauthorized("x-arcus-signature must be sha256=<hex>"))?;
    let sig = hex::decode(hex_sig).map_err(|_| unauthorized("x-arcus-signature is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| Error::internal("cannot key the HMAC"))?;
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| unauthorized("x-arcus-signature does not match the body"))
}

/// The hex HMAC-SHA256 signature header value of `body` (for senders and tests).
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so keying cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid(msg)
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

fn is_json_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json") || essence == "text/json"
}

/// A CloudEvent of a request, as structured JSON, with its `id`.
pub fn to_cloudevent(headers: &HeaderMap, body: &[u8]) -> Result<(String, Value)> {
    let ct = content_type(headers).unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let event = if essence == "application/cloudevents+json" {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(bad("a structured CloudEvent must be a JSON object")),
            Err(e) => return Err(bad(format!("the CloudEvent is not valid JSON: {e}"))),
        }
    } else if essence == "application/cloudevents-batch+json" {
        return Err(Error::new(
            ErrorCode::UnsupportedMediaType,
            "batched CloudEvents are not accepted; send one event per request",
        ));
    } else {
        binary_event(headers, ct, body)?
    };
    for attr in ["id", "source", "type", "specversion"] {
        match event.get(attr) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => {
                return Err(bad(format!(
                    "the CloudEvent has no `{attr}` (binary mode: header ce-{attr})"
                )));
            }
        }
    }
    if event.get("specversion").and_then(Value::as_str) != Some("1.0") {
        return Err(bad("only CloudEvents specversion 1.0 is accepted"));
    }
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok((id, Value::Object(event)))
}

/// Binary mode: attributes from `ce-*` headers, the body as `data`.
fn binary_event(headers: &HeaderMap, ct: &str, body: &[u8]) -> Result<Map<String, Value>> {
    let mut event = Map::new();
    for (name, value) in headers {
        if let Some(attr) = name.as_str().strip_prefix("ce-") {
            let value = value
                .to_str()
                .map_err(|_| bad(format!("header {name} is not visible ASCII")))?;
            event.insert(attr.to_string(), Value::String(value.to_string()));
        }
    }
    if event.is_empty() {
        return Err(bad(
            "not a CloudEvent: send ce-id, ce-source, ce-type and ce-specversion headers \
             (binary mode) or content-type application/cloudevents+json (structured mode)",
        ));
    }
    if !ct.is_empty() {
        event.insert("datacontenttype".into(), Value::String(ct.to_string()));
    }
    if !body.is_empty() {
        if is_json_type(ct) {
            let data: Value = serde_json::from_slice(body)
                .map_err(|e| bad(format!("the body is not valid JSON ({ct}): {e}")))?;
            event.insert("data".into(), data);
        } else if let Ok(text) = std::str::from_utf8(body) {
            event.insert("data".into(), Value::String(text.to_string()));
        } else {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(body);
            event.insert("data_base64".into(), Value::String(encoded));
        }
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn binary_mode_becomes_structured_json() {
        let h = headers(&[
            ("ce-id", "a1"),
            ("ce-source", "/shop"),
            ("ce-type", "order.created"),
            ("ce-specversion", "1.0"),
            ("ce-subject", "o-7"),
            ("content-type", "application/json"),
        ]);
        let (id, ev) = to_cloudevent(&h, br#"{"n":1}"#).unwrap();
        assert_eq!(id, "a1");
        assert_eq!(ev["type"], "order.created");
        assert_eq!(ev["subject"], "o-7");
        assert_eq!(ev["datacontenttype"], "application/json");
        assert_eq!(ev["data"]["n"], 1);
        let (_, bin) = to_cloudevent(
            &headers(&[
                ("ce-id", "b"),
                ("ce-source", "s"),
                ("ce-type", "t"),
                ("ce-specversion", "1.0"),
                ("content-type", "application/octet-stream"),
            ]),
            &[0xff, 0, 1],
        )
        .unwrap();
        assert_eq!(bin["data_base64"], "/wAB");
    }

    #[test]
    fn structured_mode_and_missing_attributes() {
        let h = headers(&[("content-type", "application/cloudevents+json")]);
        let body = br#"{"specversion":"1.0","id":"x","source":"s","type":"t","data":{"a":true}}"#;
        let (id, ev) = to_cloudevent(&h, body).unwrap();
        assert_eq!((id.as_str(), &ev["data"]["a"]), ("x", &Value::Bool(true)));
        let e = to_cloudevent(&h, br#"{"specversion":"1.0","id":"x","source":"s"}"#).unwrap_err();
        assert!(e.message.contains("`type`"), "{}", e.message);
        let e = to_cloudevent(&headers(&[("content-type", "text/plain")]), b"hi").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = to_cloudevent(
            &headers(&[
                ("ce-id", "b"),
                ("ce-source", "s"),
                ("ce-type", "t"),
                ("ce-specversion", "0.3"),
            ]),
            b"",
        )
        .unwrap_err();
        assert!(e.message.contains("1.0"));
    }

    #[test]
    fn signature_is_checked() {
        let body = b"payload";
        let good = headers(&[("x-arcus-signature", &sign("k", body))]);
        verify_signature("k", &good, body).unwrap();
        assert_eq!(
            verify_signature("other", &good, body).unwrap_err().code,
            ErrorCode::Unauthorized
        );
        assert_eq!(
            verify_signature("k", &HeaderMap::new(), body)
                .unwrap_err()
                .code,
            ErrorCode::Unauthorized
        );
        let tampered = headers(&[("x-arcus-signature", "sha256=00ff")]);
        assert!(verify_signature("k", &tampered, body).is_err());
    }
}
