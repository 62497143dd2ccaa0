//! Parsing of command-line values: `<app>/<fn>[@qualifier]` targets, names and
//! `K=V` pairs. Each parser gives a message clap shows after `invalid value ...`.

use arcus_core::names::{Qualifier, validate_alias, validate_name};
use std::fmt;
use std::str::FromStr;

/// A function named as `<app>/<fn>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnRef {
    /// App name.
    pub app: String,
    /// Function name.
    pub function: String,
}

impl FromStr for FnRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.contains('@') {
            return Err(format!(
                "{s:?}: a qualifier (@...) is not accepted here; expected <app>/<fn>"
            ));
        }
        let Some((app, function)) = s.split_once('/') else {
            return Err(format!("{s:?}: expected <app>/<fn>, e.g. shop/checkout"));
        };
        if function.contains('/') {
            return Err(format!("{s:?}: expected <app>/<fn> with a single '/'"));
        }
        validate_name("app", app).map_err(|e| e.message)?;
        validate_name("function", function).map_err(|e| e.message)?;
        Ok(Self {
            app: app.to_string(),
            function: function.to_string(),
        })
    }
}

impl fmt::Display for FnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.function)
    }
}

/// What to invoke: `<app>/<fn>[@qualifier]`, the qualifier being a version number,
/// an alias name or `draft`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The function.
    pub function: FnRef,
    /// The qualifier after `@`, if any.
    pub qualifier: Option<Qualifier>,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, qualifier) = match s.split_once('@') {
            None => (s, None),
            Some((name, "")) => {
                return Err(format!(
                    "{name:?}: empty qualifier after '@'; expected a version, an alias or draft"
                ));
            }
            Some((name, q)) => {
                let q = Qualifier::parse(q).map_err(|e| format!("{s:?}: {}", e.message))?;
                (name, Some(q))
            }
        };
        Ok(Self {
            function: name.parse()?,
            qualifier,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.qualifier {
            Some(q) => write!(f, "{}@{q}", self.function),
            None => write!(f, "{}", self.function),
        }
    }
}

/// Parses an app name.
pub fn parse_app(s: &str) -> Result<String, String> {
    validate_name("app", s).map_err(|e| e.message)?;
    Ok(s.to_string())
}

/// Parses an alias name.
pub fn parse_alias(s: &str) -> Result<String, String> {
    validate_alias(s).map_err(|e| e.message)?;
    Ok(s.to_string())
}

/// Parses `K=V` (the value may be empty and may contain `=`).
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!("{s:?}: expected K=V"));
    };
    let valid = key
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!(
            "{key:?}: an env name must match [A-Za-z_][A-Za-z0-9_]*"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fn_ref(app: &str, function: &str) -> FnRef {
        FnRef {
            app: app.into(),
            function: function.into(),
        }
    }

    #[test]
    fn fn_refs() {
        assert_eq!(
            "shop/checkout".parse::<FnRef>().unwrap(),
            fn_ref("shop", "checkout")
        );
        assert_eq!("a-1/0".parse::<FnRef>().unwrap().to_string(), "a-1/0");
        for bad in [
            "", "shop", "/f", "a/", "a/b/c", "A/b", "a/b_c", "a/b@live", " a/b",
        ] {
            assert!(bad.parse::<FnRef>().is_err(), "{bad}");
        }
        let err = "shop".parse::<FnRef>().unwrap_err();
        assert!(err.contains("expected <app>/<fn>"), "{err}");
        let err = "a/b@3".parse::<FnRef>().unwrap_err();
        assert!(err.contains("qualifier"), "{err}");
    }

    #[test]
    fn targets() {
        let t: Target = "a/f".parse().unwrap();
        assert_eq!((t.function, t.qualifier), (fn_ref("a", "f"), None));
        let t: Target = "a/f@live".parse().unwrap();
        assert_eq!(t.qualifier, Some(Qualifier::Alias("live".into())));
        let t: Target = "a/f@12".parse().unwrap();
        assert_eq!(t.qualifier, Some(Qualifier::Version(12)));
        assert_eq!(t.to_string(), "a/f@12");
        for draft in ["a/f@draft", "a/f@latest", "a/f@$LATEST"] {
            assert_eq!(
                draft.parse::<Target>().unwrap().qualifier,
                Some(Qualifier::Draft)
            );
        }
        for bad in [
            "a/f@", "a/f@0", "a/f@Live", "a/f@1x", "a@live", "a/f@x@y", "a/b/c@1",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
        assert!(
            "a/f@"
                .parse::<Target>()
                .unwrap_err()
                .contains("empty qualifier")
        );
    }

    #[test]
    fn env_pairs() {
        assert_eq!(parse_env("K=V").unwrap(), ("K".into(), "V".into()));
        assert_eq!(parse_env("_k1=").unwrap(), ("_k1".into(), String::new()));
        assert_eq!(parse_env("URL=a=b").unwrap(), ("URL".into(), "a=b".into()));
        for bad in ["K", "=V", "1K=V", "K-1=V", "K V=x", ""] {
            assert!(parse_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(parse_app("shop").is_ok());
        assert!(parse_app("Shop").is_err());
        assert!(parse_alias("live").is_ok());
        assert!(parse_alias("draft").is_err());
        assert!(parse_alias("1x").is_err());
    }
}
