//! How the binary reports failures: `error: <code>: <message>` on stderr, plus a
//! `hint:` line where the next step is clear.

use arcus_client::ClientError;
use arcus_core::ErrorCode;
use std::fmt;

/// An API error with a hint on how to fix it.
#[derive(Debug)]
pub struct Hinted {
    /// The error.
    pub error: ClientError,
    /// What to do about it.
    pub hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

// No `source()`: the message is the inner error's, printed once.
impl std::error::Error for Hinted {}

/// Whether the error (or one it wraps) is a closed stdout, e.g. `arcus ... | head`.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The text printed after `error: `: the chain of causes joined by `: `, leaving out
/// causes whose text the previous ones already contain.
pub fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// A hint for well-known failures.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    if let Some(h) = err.chain().find_map(|e| e.downcast_ref::<Hinted>()) {
        return Some(h.hint.clone());
    }
    let client = err.chain().find_map(|e| e.downcast_ref::<ClientError>())?;
    match client {
        ClientError::Transport(e) if e.is_connect() => {
            Some("is the server running? Point at it with --server or ARCUS_URL".to_string())
        }
        e if e.is_code(ErrorCode::Unauthorized) => Some(
            "pass a token with --token or ARCUS_TOKEN, or --data-dir of a local server".to_string(),
        ),
        _ => None,
    }
}

/// Prints the error and its hint to stderr.
pub fn report(err: &anyhow::Error) {
    eprintln!("error: {}", message(err));
    if let Some(hint) = hint(err) {
        eprintln!("hint: {hint}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn api(code: &str) -> ClientError {
        ClientError::Api {
            status: 404,
            code: code.into(),
            message: "no such app".into(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn messages() {
        let err = anyhow::Error::from(api("app_not_found"));
        assert_eq!(message(&err), "app_not_found: no such app");
        assert_eq!(hint(&err), None);
        let err = anyhow::Error::from(Hinted {
            error: api("app_not_found"),
            hint: "h".into(),
        });
        assert_eq!(message(&err), "app_not_found: no such app");
        assert_eq!(hint(&err).as_deref(), Some("h"));
        let err = Err::<(), _>(std::io::Error::other("boom"))
            .context("cannot read x")
            .unwrap_err();
        assert_eq!(message(&err), "cannot read x: boom");
        assert!(!is_broken_pipe(&err));
    }
}
