//! The error type of the client.

/// Everything that can go wrong talking to an Arcus server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL given to [`crate::Client::new`] is not a usable `http(s)` URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The request could not be sent or the response could not be read
    /// (connection refused, reset, timeout, ...).
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered with an error in the API's error shape
    /// (`{"error":{"code","message","request_id"}}`).
    #[error("{code}: {message}")]
    Api {
        /// HTTP status of the response.
        status: u16,
        /// Machine-readable code, e.g. `function_not_found`.
        code: String,
        /// Human-readable message.
        message: String,
        /// The request id the server assigned (for its logs).
        request_id: String,
    },
    /// The server answered with an error status whose body is not in the API's
    /// error shape (e.g. a proxy in between, or an unknown route).
    #[error("unexpected HTTP {status} from the server: {body}")]
    UnexpectedStatus {
        /// HTTP status of the response.
        status: u16,
        /// The start of the body, as text.
        body: String,
        /// The `x-arcus-request-id` header, if present.
        request_id: Option<String>,
    },
    /// A successful response whose body is not the JSON the API documents.
    #[error("cannot decode the server's response (HTTP {status}): {reason}")]
    Decode {
        /// HTTP status of the response.
        status: u16,
        /// What failed to parse.
        reason: String,
    },
}

impl ClientError {
    /// The API error code (`function_not_found`, ...) if this is an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of the response, if a response was received.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. }
            | ClientError::UnexpectedStatus { status, .. }
            | ClientError::Decode { status, .. } => Some(*status),
            ClientError::Transport(e) => e.status().map(|s| s.as_u16()),
            ClientError::InvalidUrl { .. } => None,
        }
    }

    /// The request id of the failed request, if the server sent one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClientError::Api { request_id, .. } => Some(request_id),
            ClientError::UnexpectedStatus { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Whether this is an API error with the given code.
    pub fn is_code(&self, code: arcus_core::ErrorCode) -> bool {
        self.code() == Some(code.as_str())
    }
}
