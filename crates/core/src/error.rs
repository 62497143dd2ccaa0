//! The one error type of the platform and its closed set of codes.

use serde::{Deserialize, Serialize};

/// Result alias used across Arcus crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Machine-readable error codes; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was malformed: bad JSON, a missing field, an out-of-range value.
    InvalidRequest,
    /// A name (app, function, alias) does not match its pattern or is reserved.
    InvalidName,
    /// Uploaded code is unusable: not a valid component, a broken or unsafe zip, a
    /// missing handler or bootstrap.
    InvalidCode,
    /// Installing the code's dependencies failed; the message carries the build log.
    BuildFailed,
    /// No credentials, or credentials that are not valid.
    Unauthorized,
    /// Valid credentials that may not do this.
    Forbidden,
    /// The route or resource does not exist.
    NotFound,
    /// The app does not exist.
    AppNotFound,
    /// The function does not exist.
    FunctionNotFound,
    /// The version does not exist.
    VersionNotFound,
    /// The alias does not exist.
    AliasNotFound,
    /// The invocation does not exist (or is no longer kept).
    InvocationNotFound,
    /// The secret does not exist (or a function or trigger refers to one that does not).
    SecretNotFound,
    /// The function has no `live` alias (unqualified call) or no code.
    NotDeployed,
    /// The route exists but not with this HTTP method.
    MethodNotAllowed,
    /// A resource with that name already exists.
    AlreadyExists,
    /// The operation conflicts with the current state (e.g. deleting a version an alias uses).
    Conflict,
    /// A payload or upload is over its limit.
    PayloadTooLarge,
    /// The request's content type is not accepted here.
    UnsupportedMediaType,
    /// A concurrency quota or `max_instances` is reached.
    Throttled,
    /// A request-rate limit is reached.
    RateLimited,
    /// The function failed (trap, crash, unhandled error).
    FunctionError,
    /// The function's runtime failed to start (import error, bootstrap exited, …).
    InitError,
    /// The function used more memory than its `memory_mb`.
    OutOfMemory,
    /// The function's synchronous response is over its limit (6 MiB).
    ResponseTooLarge,
    /// No capacity could be found in time.
    NoCapacity,
    /// The function ran past its timeout.
    FunctionTimeout,
    /// An unexpected server-side failure.
    Internal,
    /// The server is shutting down or not ready.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status this code is returned with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidRequest | InvalidName | InvalidCode | BuildFailed => 400,
            Unauthorized => 401,
            Forbidden => 403,
            NotFound | AppNotFound | FunctionNotFound | VersionNotFound | AliasNotFound
            | InvocationNotFound | SecretNotFound | NotDeployed => 404,
            MethodNotAllowed => 405,
            AlreadyExists | Conflict => 409,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            Throttled | RateLimited => 429,
            Internal => 500,
            FunctionError | InitError | OutOfMemory | ResponseTooLarge => 502,
            NoCapacity | Unavailable => 503,
            FunctionTimeout => 504,
        }
    }

    /// The snake_case string form used on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidName => "invalid_name",
            InvalidCode => "invalid_code",
            BuildFailed => "build_failed",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            NotFound => "not_found",
            AppNotFound => "app_not_found",
            FunctionNotFound => "function_not_found",
            VersionNotFound => "version_not_found",
            AliasNotFound => "alias_not_found",
            InvocationNotFound => "invocation_not_found",
            SecretNotFound => "secret_not_found",
            NotDeployed => "not_deployed",
            MethodNotAllowed => "method_not_allowed",
            AlreadyExists => "already_exists",
            Conflict => "conflict",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            Throttled => "throttled",
            RateLimited => "rate_limited",
            FunctionError => "function_error",
            InitError => "init_error",
            OutOfMemory => "out_of_memory",
            ResponseTooLarge => "response_too_large",
            NoCapacity => "no_capacity",
            FunctionTimeout => "function_timeout",
            Internal => "internal",
            Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a code and a human-readable message, safe to show to API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// A message for humans; never contains secrets.
    pub message: String,
}

impl Error {
    /// Builds an error from a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// A 500 `internal`; the message should not leak internals the client cannot act on.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

/// The JSON body of every API error: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// The fields of an API error.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `function_not_found`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// The request id, also sent as `x-arcus-request-id`.
    pub request_id: String,
}
