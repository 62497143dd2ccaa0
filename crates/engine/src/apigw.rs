//! The mapping between HTTP and handler functions, as API Gateway's HTTP API does it with
//! payload format 2.0: a request becomes an event; what the handler returns (a string,
//! any JSON, or `{statusCode, headers, cookies, body, isBase64Encoded}`) becomes the
//! response.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What of the request the event is built from, besides the request itself.
#[derive(Debug, Clone)]
pub struct EventContext<'a> {
    /// The invocation id (`requestContext.requestId`).
    pub request_id: &'a str,
    /// The app (`requestContext.accountId`, as the ARN uses it).
    pub app: &'a str,
    /// The function name (`requestContext.apiId`).
    pub function: &'a str,
    /// The qualifier as called (`requestContext.stage`), `$default` when unqualified.
    pub stage: &'a str,
    /// The client's address, if known.
    pub source_ip: Option<String>,
    /// Request time in milliseconds since the epoch.
    pub time_epoch_ms: i64,
}

/// Builds the payload 2.0 event of an HTTP request whose prefix is already stripped
/// (`req.uri()` is `/{rest}?query`).
pub fn request_event(parts: &http::request::Parts, body: &[u8], ctx: &EventContext<'_>) -> Bytes {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let raw_query = parts.uri.query().unwrap_or("");
    let path = parts.uri.path();
    let method = parts.method.as_str();
    let time =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ctx.time_epoch_ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(CLF_TIME).ok())
            .unwrap_or_default();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let domain = headers.get("host").cloned().unwrap_or_default();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ctx.app,
            "apiId": ctx.function,
            "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or_default(),
            "http": {
                "method": method,
                "path": path,
                "protocol": format!("{:?}", parts.version),
                "sourceIp": ctx.source_ip.clone().unwrap_or_default(),
                "userAgent": user_agent,
            },
            "requestId": ctx.request_id,
            "routeKey": "$default",
            "stage": ctx.stage,
            "time": time,
            "timeEpoch": ctx.time_epoch_ms,
        },
        "isBase64Encoded": false,
    });
    let obj = event.as_object_mut();
    if let Some(obj) = obj {
        if !cookies.is_empty() {
            obj.insert("cookies".into(), json!(cookies));
        }
        if let Some(q) = query_parameters(raw_query) {
            obj.insert("queryStringParameters".into(), Value::Object(q));
        }
        if !body.is_empty() {
            match std::str::from_utf8(body) {
                Ok(text) if !is_binary_type(&parts.headers) => {
                    obj.insert("body".into(), Value::String(text.to_string()));
                }
                _ => {
                    obj.insert("body".into(), Value::String(B64.encode(body)));
                    obj.insert("isBase64Encoded".into(), Value::Bool(true));
                }
            }
        }
    }
    Bytes::from(event.to_string())
}

const CLF_TIME: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
);

/// Decoded query parameters, repeated names joined with commas (as API Gateway does).
fn query_parameters(raw: &str) -> Option<Map<String, Value>> {
    if raw.is_empty() {
        return None;
    }
    let mut out: Map<String, Value> = Map::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        match out.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                out.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    Some(out)
}

/// Content types whose bodies are passed base64-encoded even when they are valid UTF-8.
fn is_binary_type(headers: &http::HeaderMap) -> bool {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    ct.starts_with("application/octet-stream")
        || ct.starts_with("image/")
        || ct.starts_with("audio/")
        || ct.starts_with("video/")
        || ct.starts_with("application/zip")
        || ct.starts_with("application/pdf")
}

/// Why a handler's result cannot be turned into a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the function returned a malformed response: {0}")]
pub struct MalformedResponse(String);

/// Maps a handler's result to an HTTP response: a JSON object with `statusCode` is a
/// structured response; any other JSON is a 200 `application/json` body (a JSON string
/// is sent as its text).
pub fn result_response(payload: &[u8]) -> Result<http::Response<Bytes>, MalformedResponse> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| MalformedResponse(format!("not JSON: {e}")))?;
    let structured = value
        .as_object()
        .filter(|o| o.contains_key("statusCode"))
        .cloned();
    let Some(obj) = structured else {
        let body = match value {
            Value::String(s) => Bytes::from(s),
            other => Bytes::from(other.to_string()),
        };
        return http::Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| MalformedResponse(e.to_string()));
    };
    structured_response(&obj)
}

fn structured_response(
    obj: &Map<String, Value>,
) -> Result<http::Response<Bytes>, MalformedResponse> {
    let status = match &obj["statusCode"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .and_then(|n| u16::try_from(n).ok())
    .and_then(|n| http::StatusCode::from_u16(n).ok())
    .ok_or_else(|| MalformedResponse("statusCode must be an HTTP status".into()))?;
    let mut builder = http::Response::builder().status(status);
    let mut has_type = false;
    if let Some(headers) = obj.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            has_type |= name.eq_ignore_ascii_case("content-type");
            builder = builder.header(name.as_str(), value);
        }
    }
    if let Some(cookies) = obj.get("cookies").and_then(Value::as_array) {
        for c in cookies.iter().filter_map(Value::as_str) {
            builder = builder.header(http::header::SET_COOKIE, c);
        }
    }
    let base64 = obj
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = match obj.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if base64 => Bytes::from(
            B64.decode(s)
                .map_err(|e| MalformedResponse(format!("body is not base64: {e}")))?,
        ),
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    if !has_type && !body.is_empty() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    builder
        .body(body)
        .map_err(|e| MalformedResponse(e.to_string()))
}

/// Body of the `apigw_event` fuzz target, shared with the stable corpus replay test.
///
/// The input is a request in a line format: the method, the URI, `name: value` header
/// lines, an empty line, then the body. An input `http` refuses to build is skipped;
/// for every other one the event must be valid JSON whose `rawPath` is the URI's path
/// and whose `body` (base64 or text) gives back the request body exactly.
#[doc(hidden)]
pub fn fuzz_request_event(data: &[u8]) {
    let Some((parts, body)) = fuzz_parse_request(data) else {
        return;
    };
    let ctx = EventContext {
        request_id: "fuzz",
        app: "app",
        function: "fn",
        stage: "$default",
        source_ip: None,
        time_epoch_ms: i64::from_le_bytes(
            data.get(..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        ),
    };
    let event: Value = match serde_json::from_slice(&request_event(&parts, body, &ctx)) {
        Ok(v) => v,
        Err(e) => panic!("the event is not JSON: {e}"),
    };
    assert_eq!(event["rawPath"], parts.uri.path());
    let got = match (&event["body"], event["isBase64Encoded"].as_bool()) {
        (Value::Null, _) => Vec::new(),
        (Value::String(b), Some(true)) => B64.decode(b).unwrap_or_default(),
        (Value::String(t), _) => t.as_bytes().to_vec(),
        (other, _) => panic!("body is {other}"),
    };
    assert_eq!(got, body, "the event's body is not the request body");
}

/// Splits a fuzz input into request parts and body (see [`fuzz_request_event`]).
fn fuzz_parse_request(data: &[u8]) -> Option<(http::request::Parts, &[u8])> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let method = http::Method::from_bytes(lines.next()?).ok()?;
    let uri = http::Uri::try_from(lines.next()?).ok()?;
    let mut builder = http::Request::builder().method(method).uri(uri);
    for line in lines {
        let colon = line.iter().position(|b| *b == b':')?;
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        builder = builder.header(&line[..colon], value);
    }
    let (parts, ()) = builder.body(()).ok()?.into_parts();
    Some((parts, body))
}

/// Body of the `apigw_response` fuzz target, shared with the stable corpus replay test:
/// any handler result maps to a response or a [`MalformedResponse`], never a panic, and
/// a non-structured result is always a 200.
#[doc(hidden)]
pub fn fuzz_result_response(data: &[u8]) {
    let structured = serde_json::from_slice::<Value>(data)
        .ok()
        .is_some_and(|v| v.get("statusCode").is_some());
    if let Ok(resp) = result_response(data) {
        assert!(structured || resp.status() == 200, "{}", resp.status());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EventContext<'static> {
        EventContext {
            request_id: "r1",
            app: "shop",
            function: "cart",
            stage: "$default",
            source_ip: Some("127.0.0.1".into()),
            time_epoch_ms: 1_583_348_638_390,
        }
    }

    fn event(req: http::Request<()>, body: &[u8]) -> Value {
        let (parts, ()) = req.into_parts();
        serde_json::from_slice(&request_event(&parts, body, &ctx())).unwrap()
    }

    #[test]
    fn request_becomes_a_v2_event() {
        let req = http::Request::builder()
            .method("POST")
            .uri("/items/1?a=1&a=2&b=x%20y")
            .header("host", "node.example")
            .header("x-multi", "1")
            .header("x-multi", "2")
            .header("cookie", "c1=v1; c2=v2")
            .header("content-type", "text/plain")
            .body(())
            .unwrap();
        let e = event(req, b"hello");
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["rawPath"], "/items/1");
        assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y");
        assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
        assert_eq!(e["headers"]["x-multi"], "1,2");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(e["body"], "hello");
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
        assert_eq!(e["requestContext"]["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(e["requestContext"]["requestId"], "r1");
        assert_eq!(e["requestContext"]["time"], "04/Mar/2020:19:03:58 +0000");
    }

    #[test]
    fn binary_bodies_are_base64_and_empty_ones_absent() {
        let req = http::Request::builder().uri("/").body(()).unwrap();
        let e = event(req, b"");
        assert!(e.get("body").is_none());
        assert!(e.get("queryStringParameters").is_none());
        let req = http::Request::builder().uri("/").body(()).unwrap();
        let e = event(req, &[0xff, 0x00]);
        assert_eq!(e["body"], "/wA=");
        assert_eq!(e["isBase64Encoded"], true);
    }

    #[test]
    fn results_map_like_api_gateway() {
        let r = result_response(br#""plain text""#).unwrap();
        assert_eq!(
            (r.status().as_u16(), r.body().as_ref()),
            (200, &b"plain text"[..])
        );
        let r = result_response(br#"{"a":1}"#).unwrap();
        assert_eq!(r.body().as_ref(), br#"{"a":1}"#);
        assert_eq!(r.headers()["content-type"], "application/json");
        let r = result_response(
            br#"{"statusCode":201,"headers":{"x-a":"b","content-type":"text/plain"},
                "cookies":["s=1","t=2"],"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "b");
        assert_eq!(r.headers()["content-type"], "text/plain");
        let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["s=1", "t=2"]);
        assert_eq!(r.body().as_ref(), b"hi");
        let r = result_response(br#"{"statusCode":"404"}"#).unwrap();
        assert_eq!((r.status().as_u16(), r.body().len()), (404, 0));
    }

    #[test]
    fn malformed_results_are_errors() {
        assert!(result_response(b"not json").is_err());
        assert!(result_response(br#"{"statusCode":99}"#).is_err());
        assert!(
            result_response(br#"{"statusCode":200,"body":"%%","isBase64Encoded":true}"#).is_err()
        );
        assert!(result_response(br#"{"statusCode":200,"headers":{"bad name":"x"}}"#).is_err());
    }
}
