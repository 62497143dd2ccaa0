//! Names of apps, functions and aliases, and the qualifier that picks what to invoke.

use crate::{Error, ErrorCode, Result};
use std::fmt;

/// Checks an app or function name: `[a-z0-9][a-z0-9-]{0,62}`.
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidName,
            format!("{kind} name {name:?} must match [a-z0-9][a-z0-9-]{{0,62}}"),
        ))
    }
}

/// Names that can never be aliases because they mean something else as a qualifier.
pub const RESERVED_QUALIFIERS: [&str; 3] = ["draft", "latest", "$LATEST"];

/// Checks an alias name: `[a-z][a-z0-9-]{0,62}` and not reserved.
pub fn validate_alias(name: &str) -> Result<()> {
    if RESERVED_QUALIFIERS.contains(&name) {
        return Err(Error::new(
            ErrorCode::InvalidName,
            format!("alias name {name:?} is reserved"),
        ));
    }
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidName,
            format!("alias name {name:?} must match [a-z][a-z0-9-]{{0,62}}"),
        ))
    }
}

/// What an invocation targets: the draft, a numbered version, or an alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// The mutable draft (`draft`, `latest`, `$LATEST`).
    Draft,
    /// An immutable published version.
    Version(u32),
    /// A named alias such as `live`.
    Alias(String),
}

impl Qualifier {
    /// The alias unqualified `/fn/...` calls go to.
    pub const DEFAULT_ALIAS: &'static str = "live";

    /// Parses `draft`, `latest`, `$LATEST`, an all-digit version or an alias name.
    pub fn parse(s: &str) -> Result<Self> {
        if RESERVED_QUALIFIERS.contains(&s) {
            return Ok(Qualifier::Draft);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<u32>() {
                Ok(n) if n > 0 => Ok(Qualifier::Version(n)),
                _ => Err(Error::new(
                    ErrorCode::InvalidName,
                    format!("version {s:?} is not a valid version number"),
                )),
            };
        }
        validate_alias(s)?;
        Ok(Qualifier::Alias(s.to_string()))
    }

    /// The default qualifier of `/fn/...` routes: alias `live`.
    pub fn live() -> Self {
        Qualifier::Alias(Self::DEFAULT_ALIAS.to_string())
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Draft => f.write_str("draft"),
            Qualifier::Version(n) => write!(f, "{n}"),
            Qualifier::Alias(a) => f.write_str(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "0", "hello-world", "a1", &"a".repeat(63)] {
            assert!(validate_name("function", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a_b", "a.b", "a/b", &"a".repeat(64), "héllo"] {
            let err = validate_name("function", bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidName, "{bad}");
        }
    }

    #[test]
    fn qualifiers() {
        assert_eq!(Qualifier::parse("draft").unwrap(), Qualifier::Draft);
        assert_eq!(Qualifier::parse("$LATEST").unwrap(), Qualifier::Draft);
        assert_eq!(Qualifier::parse("latest").unwrap(), Qualifier::Draft);
        assert_eq!(Qualifier::parse("12").unwrap(), Qualifier::Version(12));
        assert_eq!(Qualifier::parse("live").unwrap(), Qualifier::live());
        assert!(Qualifier::parse("0").is_err());
        assert!(Qualifier::parse("99999999999").is_err());
        assert!(Qualifier::parse("1abc").is_err());
        assert!(Qualifier::parse("Live").is_err());
        assert!(validate_alias("draft").is_err());
        assert!(validate_alias("9x").is_err());
    }
}
