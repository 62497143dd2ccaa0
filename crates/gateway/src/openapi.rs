//! The OpenAPI 3.1 document, generated from the handlers' annotations.

mod common;
mod tagged;

use crate::{access_keys, api, audit, events, logs, observe, secrets, tokens, triggers};
use common::CommonResponses;
use tagged::TaggedVariants;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

/// The REST API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Arcus API", description = "Control plane and invoke API of an Arcus node."),
    paths(
        api::create_app, api::list_apps, api::get_app, api::update_app, api::delete_app,
        api::create_function, api::list_functions, api::get_function, api::update_function, api::delete_function,
        api::put_code, api::publish, api::list_versions, api::get_version, api::delete_version,
        api::put_alias, api::list_aliases, api::get_alias, api::delete_alias, api::rollback_alias,
        api::invoke, api::instances, logs::app_logs, logs::function_logs,
        observe::app_invocations, observe::function_invocations, observe::app_stats, observe::function_stats, observe::usage,
        events::get_invocation, events::async_invocations, events::dead_letters, events::redrive_all, events::redrive_one,
        triggers::create_trigger, triggers::list_triggers, triggers::get_trigger, triggers::update_trigger,
        triggers::delete_trigger, triggers::webhook,
        tokens::create_token, tokens::list_tokens, tokens::delete_token,
        access_keys::create_access_key, access_keys::list_access_keys, access_keys::delete_access_key,
        secrets::put_secret, secrets::list_secrets, secrets::delete_secret,
        audit::list_audit,
    ),
    components(schemas(arcus_core::error::ErrorBody, arcus_core::ErrorCode, api::InvokeMode)),
    modifiers(&BearerAuth, &CommonResponses, &TaggedVariants),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
