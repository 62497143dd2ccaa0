//! The response of `POST .../invoke`: the function's own HTTP response.

use crate::{
    ClientError, INVOCATION_ID_HEADER, REQUEST_ID_HEADER, Result, VERSION_HEADER, error_from_parts,
    header_str,
};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::borrow::Cow;

/// What a function answered to an invocation through the API.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    /// HTTP status the function answered with.
    pub status: u16,
    /// The invocation id (`x-arcus-invocation-id`), usable with the logs endpoint.
    pub invocation_id: Option<String>,
    /// The version that ran (`x-arcus-version`); `None` for the draft.
    pub version: Option<u32>,
    /// The request id (`x-arcus-request-id`).
    pub request_id: Option<String>,
    /// The response's `content-type`, if any.
    pub content_type: Option<String>,
    /// The response body as sent by the function.
    pub body: Bytes,
}

impl InvokeResponse {
    /// Reads a whole response.
    pub(crate) async fn read(resp: reqwest::Response) -> Result<Self> {
        let headers = resp.headers();
        let status = resp.status().as_u16();
        let invocation_id = header_str(headers, INVOCATION_ID_HEADER);
        let version = header_str(headers, VERSION_HEADER).and_then(|v| v.trim().parse().ok());
        let request_id = header_str(headers, REQUEST_ID_HEADER);
        let content_type = header_str(headers, reqwest::header::CONTENT_TYPE.as_str());
        let body = resp.bytes().await?;
        Ok(Self {
            status,
            invocation_id,
            version,
            request_id,
            content_type,
            body,
        })
    }

    /// Whether the function answered with a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The platform error this response carries: an error status with a JSON body in
    /// the API's error shape.
    pub(crate) fn platform_error(&self) -> Option<ClientError> {
        let is_json = self
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
        if self.is_success() || !is_json {
            return None;
        }
        match error_from_parts(self.status, self.request_id.clone(), &self.body) {
            err @ ClientError::Api { .. } => Some(err),
            _ => None,
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode {
            status: self.status,
            reason: e.to_string(),
        })
    }
}
