//! `/api/v1/tokens`: create (the plain token is shown once), list and revoke scoped
//! tokens. Admin manages every token; a token with `app:<a>:manage` manages the tokens
//! whose scopes are all within apps it manages, and can never grant a scope it does not
//! cover. Tokens it may not manage look like tokens that do not exist.

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath};
use arcus_core::ErrorCode;
use arcus_core::api::List;
use arcus_core::error::ErrorBody;
use arcus_core::tokens::{
    CreateToken, CreatedToken, Identity, MAX_TOKENS_PER_APP, StoredToken, TOKEN_PREFIX, TokenView,
};
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

type Res<T> = Result<T, ApiError>;

/// 64 hex characters of the OS's random generator (two v4 UUIDs: 244 random bits).
fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Creates a token; the answer holds the plain token, which is never shown again.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_token(
    State(s): State<AppState>,
    Extension(identity): Extension<Identity>,
    ApiJson(req): ApiJson<CreateToken>,
) -> Res<(StatusCode, Json<CreatedToken>)> {
    let now = OffsetDateTime::now_utc();
    let (scopes, expires_at) = req.validate(now)?;
    if let Some(s) = scopes.iter().find(|s| !identity.may_grant(s)) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this token may not grant the scope `{s}`"),
        ));
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let secret = random_secret();
    let view = TokenView {
        id: id.clone(),
        name: req.name,
        scopes,
        created_at: now,
        expires_at,
        last_used_at: None,
    };
    let stored = StoredToken {
        view: view.clone(),
        secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
    };
    s.engine
        .store()
        .create_token(&stored, MAX_TOKENS_PER_APP)
        .await?;
    let token = format!("{TOKEN_PREFIX}{id}_{secret}");
    Ok((StatusCode::CREATED, Json(CreatedToken { token, view })))
}

/// Lists the tokens the caller may manage (never their secrets or hashes).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = List<TokenView>), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    State(s): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Res<Json<List<TokenView>>> {
    let items = s
        .engine
        .store()
        .list_tokens()
        .await?
        .into_iter()
        .filter(|t| identity.may_administer(&t.scopes))
        .collect();
    Ok(Json(List { items }))
}

/// Revokes a token at once; 404 for a token the caller may not manage, as for one that
/// does not exist.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_token(
    State(s): State<AppState>,
    Extension(identity): Extension<Identity>,
    ApiPath(id): ApiPath<String>,
) -> Res<StatusCode> {
    let store = s.engine.store();
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("token `{id}` not found"));
    let token = match store.get_token(&id).await {
        Ok(t) => t,
        Err(e) if e.code == ErrorCode::NotFound => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if !identity.may_administer(&token.view.scopes) {
        return Err(not_found());
    }
    store.delete_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
