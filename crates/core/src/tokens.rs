//! Identities of API callers: scoped tokens, their scopes and what each scope permits.
//!
//! A token carries one or more [`Scope`]s. A route asks for a [`Permission`] (manage an
//! app, invoke a function, or admin); [`Identity::allows`] answers from the scopes alone,
//! before anything is looked up, so a refusal never depends on what exists.

use crate::model::Timestamp;
use crate::names::validate_name;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::Duration;
use utoipa::ToSchema;

/// Prefix of every token Arcus issues: `arcus_<id>_<secret>`.
pub const TOKEN_PREFIX: &str = "arcus_";
/// Length of a token id (lowercase hex).
pub const TOKEN_ID_LEN: usize = 16;
/// Length of a token secret (lowercase hex of 32 random bytes).
pub const TOKEN_SECRET_LEN: usize = 64;
/// Most scopes one token may carry.
pub const MAX_TOKEN_SCOPES: usize = 16;
/// Longest token name in bytes.
pub const MAX_TOKEN_NAME_BYTES: usize = 128;
/// Most tokens with a scope in one app (tokens with scopes in several apps count for each).
pub const MAX_TOKENS_PER_APP: usize = 1000;
/// Longest lifetime a token may be given (10 years); without an expiry it never expires.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::days(3650);

/// What a token may do. The wire form is a string (see [`Scope::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Everything, on every app (`admin`).
    Admin,
    /// The control plane of one app and invoking its functions (`app:<app>:manage`).
    AppManage(String),
    /// Invoking any function of one app (`app:<app>:invoke`).
    AppInvoke(String),
    /// Invoking one function (`function:<app>/<fn>:invoke`).
    FunctionInvoke {
        /// The function's app.
        app: String,
        /// The function's name.
        function: String,
    },
}

impl Scope {
    /// Parses `admin`, `app:<app>:manage`, `app:<app>:invoke` or
    /// `function:<app>/<fn>:invoke`; names must be valid app and function names.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "scope {s:?} must be `admin`, `app:<app>:manage`, `app:<app>:invoke` or \
                 `function:<app>/<function>:invoke`"
            ))
        };
        if s == "admin" {
            return Ok(Scope::Admin);
        }
        if let Some(rest) = s.strip_prefix("app:") {
            let (app, action) = rest.rsplit_once(':').ok_or_else(bad)?;
            validate_name("app", app)?;
            return match action {
                "manage" => Ok(Scope::AppManage(app.to_string())),
                "invoke" => Ok(Scope::AppInvoke(app.to_string())),
                _ => Err(bad()),
            };
        }
        if let Some(rest) = s.strip_prefix("function:") {
            let target = rest.strip_suffix(":invoke").ok_or_else(bad)?;
            let (app, function) = target.split_once('/').ok_or_else(bad)?;
            validate_name("app", app)?;
            validate_name("function", function)?;
            return Ok(Scope::FunctionInvoke {
                app: app.to_string(),
                function: function.to_string(),
            });
        }
        Err(bad())
    }

    /// The app this scope is confined to (`None` for admin).
    pub fn app(&self) -> Option<&str> {
        match self {
            Scope::Admin => None,
            Scope::AppManage(a) | Scope::AppInvoke(a) => Some(a),
            Scope::FunctionInvoke { app, .. } => Some(app),
        }
    }

    /// Whether this scope alone grants `p`.
    pub fn grants(&self, p: &Permission<'_>) -> bool {
        match (self, p) {
            (Scope::Admin, _) => true,
            (Scope::AppManage(a), Permission::Manage { app })
            | (Scope::AppManage(a), Permission::Invoke { app, .. })
            | (Scope::AppInvoke(a), Permission::Invoke { app, .. }) => a == app,
            (
                Scope::FunctionInvoke {
                    app: a,
                    function: f,
                },
                Permission::Invoke { app, function },
            ) => a == app && f == function,
            _ => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::AppManage(a) => write!(f, "app:{a}:manage"),
            Scope::AppInvoke(a) => write!(f, "app:{a}:invoke"),
            Scope::FunctionInvoke { app, function } => {
                write!(f, "function:{app}/{function}:invoke")
            }
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission<'a> {
    /// Node-wide operations: creating apps, `/metrics`.
    Admin,
    /// The control plane of one app (read or change anything in it).
    Manage {
        /// The app in the route's path.
        app: &'a str,
    },
    /// Invoking one function.
    Invoke {
        /// The app in the route's path.
        app: &'a str,
        /// The function in the route's path.
        function: &'a str,
    },
}

/// Who is calling: the bootstrap admin (the config's admin token) or a stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The stored token's id; `None` for the bootstrap admin token.
    pub token_id: Option<String>,
    /// What the caller may do.
    pub scopes: Vec<Scope>,
}

impl Identity {
    /// The bootstrap admin identity (the admin token of the node's config).
    pub fn bootstrap_admin() -> Self {
        Self {
            token_id: None,
            scopes: vec![Scope::Admin],
        }
    }

    /// Whether any scope grants `p`.
    pub fn allows(&self, p: &Permission<'_>) -> bool {
        self.scopes.iter().any(|s| s.grants(p))
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.allows(&Permission::Admin)
    }

    /// Whether the caller may give a token `scope`: admin may give any; otherwise only a
    /// scope within an app the caller manages (never `admin`), so no token can mint a
    /// scope wider than its own.
    pub fn may_grant(&self, scope: &Scope) -> bool {
        match scope.app() {
            None => self.is_admin(),
            Some(app) => self.allows(&Permission::Manage { app }),
        }
    }

    /// Whether the caller may see and revoke a token with these scopes: only if it may
    /// grant every one of them.
    pub fn may_administer(&self, scopes: &[Scope]) -> bool {
        scopes.iter().all(|s| self.may_grant(s))
    }
}

/// A token as stored: never the secret itself, only its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// What the caller sees.
    pub view: TokenView,
    /// Hex sha256 of the secret part of the token.
    pub secret_sha256: String,
}

/// A token as the API shows it (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// The token's id (the middle part of `arcus_<id>_<secret>`).
    pub id: String,
    /// Free text naming what the token is for.
    pub name: String,
    /// What the token may do.
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it stops working (none: never).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// When it was last used, to the minute (none: never).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
}

impl TokenView {
    /// Whether the token has expired at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// One or more scopes, e.g. `app:shop:invoke`.
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    /// Free text naming what the token is for (≤ 128 bytes).
    #[serde(default)]
    pub name: String,
    /// Lifetime from now: a number with a unit `s`, `m`, `h` or `d` (`30d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    /// Expiry as an RFC 3339 time (instead of `expires_in`).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

impl CreateToken {
    /// Validates the request and returns its scopes (sorted, without duplicates) and
    /// its expiry, relative to `now`.
    pub fn validate(&self, now: Timestamp) -> Result<(Vec<Scope>, Option<Timestamp>)> {
        if self.scopes.is_empty() {
            return Err(Error::invalid("a token needs at least one scope"));
        }
        if self.scopes.len() > MAX_TOKEN_SCOPES {
            return Err(Error::invalid(format!(
                "a token has at most {MAX_TOKEN_SCOPES} scopes"
            )));
        }
        if self.name.len() > MAX_TOKEN_NAME_BYTES || self.name.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "name must be at most {MAX_TOKEN_NAME_BYTES} bytes without control characters"
            )));
        }
        let mut scopes = self.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let expires_at = match (&self.expires_in, self.expires_at) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "give either expires_in or expires_at, not both",
                ));
            }
            (Some(d), None) => Some(now + parse_lifetime(d)?),
            (None, Some(at)) => {
                if at <= now {
                    return Err(Error::invalid("expires_at must be in the future"));
                }
                if at - now > MAX_TOKEN_LIFETIME {
                    return Err(Error::invalid(format!(
                        "expires_at is more than {} days away",
                        MAX_TOKEN_LIFETIME.whole_days()
                    )));
                }
                Some(at)
            }
            (None, None) => None,
        };
        Ok((scopes, expires_at))
    }
}

/// Parses a lifetime such as `90s`, `15m`, `12h` or `30d` (1 s up to 3650 days).
pub fn parse_lifetime(s: &str) -> Result<Duration> {
    let bad = || {
        Error::invalid(format!(
            "lifetime {s:?} must be a number with a unit s, m, h or d (e.g. 30d), \
             from 1s to {}d",
            MAX_TOKEN_LIFETIME.whole_days()
        ))
    };
    let s = s.trim();
    let split = s.len().checked_sub(1).ok_or_else(bad)?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 9 {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(bad()),
    };
    if n == 0 || d > MAX_TOKEN_LIFETIME {
        return Err(bad());
    }
    Ok(d)
}

/// The answer to `POST /api/v1/tokens`: the token's view and, this once, its plain form.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token (`arcus_<id>_<secret>`); shown only now, never stored.
    pub token: String,
    /// What is stored about it.
    #[serde(flatten)]
    pub view: TokenView,
}

/// Splits a presented token `arcus_<id>_<secret>` into its id and secret; `None` when it
/// does not have that form (it may still be the bootstrap admin token).
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (hex(id, TOKEN_ID_LEN) && hex(secret, TOKEN_SECRET_LEN)).then_some((id, secret))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for s in [
            "admin",
            "app:shop:manage",
            "app:shop:invoke",
            "function:shop/cart:invoke",
        ] {
            assert_eq!(scope(s).to_string(), s);
        }
        assert_eq!(
            scope("function:a-1/f-2:invoke"),
            Scope::FunctionInvoke {
                app: "a-1".into(),
                function: "f-2".into()
            }
        );
        for bad in [
            "",
            "Admin",
            "app:shop",
            "app:shop:delete",
            "app::manage",
            "app:Shop:manage",
            "app:shop:manage:x",
            "app:a/b:invoke",
            "function:shop:invoke",
            "function:shop/cart:manage",
            "function:shop/cart",
            "function:/cart:invoke",
            "function:shop/:invoke",
            "function:shop/c/d:invoke",
            "function:shop/cart:invoke ",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn scopes_serialize_as_strings() {
        let v: Vec<Scope> = serde_json::from_str(r#"["admin","app:a:invoke"]"#).unwrap();
        assert_eq!(v, vec![Scope::Admin, scope("app:a:invoke")]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"["admin","app:a:invoke"]"#
        );
        assert!(serde_json::from_str::<Vec<Scope>>(r#"["app:a"]"#).is_err());
    }

    #[test]
    fn scopes_grant_what_they_name() {
        let manage_a = Permission::Manage { app: "a" };
        let manage_b = Permission::Manage { app: "b" };
        let invoke_af = Permission::Invoke {
            app: "a",
            function: "f",
        };
        let invoke_ag = Permission::Invoke {
            app: "a",
            function: "g",
        };
        let invoke_bf = Permission::Invoke {
            app: "b",
            function: "f",
        };
        let table: [(&str, [bool; 6]); 4] = [
            // admin, manage a, manage b, invoke a/f, invoke a/g, invoke b/f
            ("admin", [true, true, true, true, true, true]),
            ("app:a:manage", [false, true, false, true, true, false]),
            ("app:a:invoke", [false, false, false, true, true, false]),
            (
                "function:a/f:invoke",
                [false, false, false, true, false, false],
            ),
        ];
        let perms = [
            Permission::Admin,
            manage_a,
            manage_b,
            invoke_af,
            invoke_ag,
            invoke_bf,
        ];
        for (s, expected) in table {
            let got: Vec<bool> = perms.iter().map(|p| scope(s).grants(p)).collect();
            assert_eq!(got, expected, "{s}");
        }
        // A function scope never matches another app's function of the same name.
        assert!(!scope("function:a/f:invoke").grants(&invoke_bf));
    }

    #[test]
    fn only_managers_grant_and_never_wider_than_they_hold() {
        let admin = Identity::bootstrap_admin();
        let manager = Identity {
            token_id: Some("x".into()),
            scopes: vec![scope("app:a:manage")],
        };
        let invoker = Identity {
            token_id: Some("y".into()),
            scopes: vec![scope("app:a:invoke")],
        };
        for s in [
            "admin",
            "app:a:manage",
            "app:b:invoke",
            "function:b/f:invoke",
        ] {
            assert!(admin.may_grant(&scope(s)), "{s}");
        }
        for s in ["app:a:manage", "app:a:invoke", "function:a/f:invoke"] {
            assert!(manager.may_grant(&scope(s)), "{s}");
            assert!(!invoker.may_grant(&scope(s)), "{s}");
        }
        for s in [
            "admin",
            "app:b:manage",
            "app:b:invoke",
            "function:b/f:invoke",
        ] {
            assert!(!manager.may_grant(&scope(s)), "{s}");
        }
        assert!(manager.may_administer(&[scope("app:a:invoke"), scope("function:a/f:invoke")]));
        assert!(!manager.may_administer(&[scope("app:a:invoke"), scope("app:b:invoke")]));
        assert!(admin.is_admin() && !manager.is_admin());
    }

    #[test]
    fn lifetimes_and_expiry_are_validated() {
        assert_eq!(parse_lifetime("30d").unwrap(), Duration::days(30));
        assert_eq!(parse_lifetime("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_lifetime("15m").unwrap(), Duration::minutes(15));
        assert_eq!(parse_lifetime("12h").unwrap(), Duration::hours(12));
        assert_eq!(parse_lifetime("3650d").unwrap(), MAX_TOKEN_LIFETIME);
        for bad in [
            "",
            "d",
            "0s",
            "-1d",
            "1.5h",
            "10w",
            "3651d",
            "1e3s",
            "9999999999d",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let req = |expires_in: Option<&str>, expires_at: Option<Timestamp>| CreateToken {
            scopes: vec![scope("app:a:invoke"), scope("app:a:invoke")],
            name: "ci".into(),
            expires_in: expires_in.map(String::from),
            expires_at,
        };
        let (scopes, at) = req(Some("1h"), None).validate(now).unwrap();
        assert_eq!(scopes, vec![scope("app:a:invoke")]);
        assert_eq!(at, Some(now + Duration::hours(1)));
        assert_eq!(req(None, None).validate(now).unwrap().1, None);
        assert!(req(Some("1h"), Some(now)).validate(now).is_err());
        assert!(req(None, Some(now)).validate(now).is_err());
        assert!(
            req(None, Some(now + Duration::days(3651)))
                .validate(now)
                .is_err()
        );
        let empty = CreateToken::default();
        assert!(empty.validate(now).is_err());
        let long = CreateToken {
            name: "x".repeat(MAX_TOKEN_NAME_BYTES + 1),
            ..req(None, None)
        };
        assert!(long.validate(now).is_err());
        let many = CreateToken {
            scopes: (0..=MAX_TOKEN_SCOPES)
                .map(|i| scope(&format!("app:a{i}:invoke")))
                .collect(),
            ..req(None, None)
        };
        assert!(many.validate(now).is_err());
        let view = TokenView {
            id: "x".into(),
            name: String::new(),
            scopes: vec![],
            created_at: now,
            expires_at: Some(now),
            last_used_at: None,
        };
        assert!(view.expired(now) && !view.expired(now - Duration::seconds(1)));
    }

    #[test]
    fn tokens_split_into_id_and_secret() {
        let id = "0123456789abcdef";
        let secret = "ab".repeat(32);
        let token = format!("arcus_{id}_{secret}");
        assert_eq!(split_token(&token), Some((id, secret.as_str())));
        for bad in [
            "arcus_".to_string(),
            format!("arcus_{id}"),
            format!("arcus_{id}_{}", &secret[1..]),
            format!("arcus_{}_{secret}", &id[1..]),
            format!("arcus_{}_{secret}", id.to_uppercase()),
            format!("other_{id}_{secret}"),
            format!("arcus_{id}_{secret}_x"),
        ] {
            assert!(split_token(&bad).is_none(), "{bad}");
        }
    }
}
