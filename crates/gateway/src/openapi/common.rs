//! What every operation of the document shares, added in one place instead of on each
//! handler's annotation (found missing by schemathesis, see docs/security.md): the path
//! parameters named in the path template (with the patterns the server checks names
//! against), the 401/403 every route layer can answer with, the 400 of a malformed path
//! parameter, and the 415 of a non-JSON body.

use utoipa::Modify;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Ref, Type};
use utoipa::openapi::{Content, RefOr, Required, Response};

/// The [`Modify`] that completes every operation.
pub(super) struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let names = template_params(path);
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                complete(op, &names);
            }
        }
    }
}

/// The pattern a path parameter's value must match, where the server checks one
/// (`arcus_core::names`: apps and functions, and aliases, which start with a letter).
fn param_pattern(name: &str) -> Option<&'static str> {
    match name {
        "app" | "function" => Some("^[a-z0-9][a-z0-9-]{0,62}$"),
        "alias" => Some("^[a-z][a-z0-9-]{0,62}$"),
        _ => None,
    }
}

/// The `{name}` parts of a path template.
fn template_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(String::from)
        .collect()
}

fn complete(op: &mut Operation, names: &[String]) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    for name in names {
        let declared = params.iter().any(|p| match p {
            RefOr::T(p) => p.name == *name && p.parameter_in == ParameterIn::Path,
            RefOr::Ref(_) => false,
        });
        if !declared {
            let mut p = Parameter::new(name.as_str());
            p.parameter_in = ParameterIn::Path;
            p.required = Required::True;
            p.schema = Some(RefOr::T(Object::with_type(Type::String).into()));
            params.push(RefOr::T(p));
        }
    }
    for p in params.iter_mut() {
        if let RefOr::T(p) = p
            && p.parameter_in == ParameterIn::Path
            && let Some(pattern) = param_pattern(&p.name)
        {
            let schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
                .build();
            p.schema = Some(RefOr::T(schema.into()));
        }
    }
    let mut add = |code: &str, why: &str| {
        op.responses
            .responses
            .entry(code.to_string())
            .or_insert_with(|| RefOr::T(error_response(why)));
    };
    add(
        "401",
        "No valid token (missing, unknown, expired or revoked)",
    );
    add("403", "The token may not do this");
    if !names.is_empty() {
        add("400", "A path parameter is not a valid name");
    }
    if op.request_body.is_some() {
        add("415", "The body is not of the documented content type");
    }
}

fn error_response(description: &str) -> Response {
    let mut r = Response::new(description);
    r.content.insert(
        "application/json".into(),
        RefOr::T(Content::new(Some(Ref::from_schema_name("ErrorBody")))),
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::openapi::ApiDoc;
    use utoipa::OpenApi as _;

    #[test]
    fn every_operation_declares_its_path_params_and_auth_errors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let text = doc.to_string();
        for r in text.split("\"#/components/schemas/").skip(1) {
            let name = r.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling $ref {name}"
            );
        }
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() > 10);
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                for name in super::template_params(path) {
                    assert!(declared.contains(&name.as_str()), "{method} {path}: {name}");
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap();
                    if p["in"] == "path" && matches!(name, "app" | "function") {
                        assert_eq!(
                            p["schema"]["pattern"], "^[a-z0-9][a-z0-9-]{0,62}$",
                            "{method} {path}: {name}"
                        );
                    }
                }
                for code in ["401", "403"] {
                    assert!(
                        op["responses"].get(code).is_some(),
                        "{method} {path}: {code}"
                    );
                }
            }
        }
    }
}
