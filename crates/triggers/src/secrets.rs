//! `${secret:NAME}` references in broker trigger configs (`url`, `username`,
//! `password`): checked against the app's secrets when a trigger is created or
//! changed, expanded only in the copy a running source gets — the stored config and
//! the API's views keep the reference, never the value.

use crate::sink::EventSink;
use arcus_core::Result;
use arcus_core::secret::secret_refs;
use arcus_core::trigger::{Credentials, TriggerConfig};

fn broker_fields<'a>(url: &'a mut String, auth: &'a mut Credentials) -> Vec<&'a mut String> {
    let mut fields = vec![url];
    fields.extend(auth.username.as_mut());
    fields.extend(auth.password.as_mut());
    fields
}

/// The config's strings that may refer to secrets.
fn fields_mut(config: &mut TriggerConfig) -> Vec<&mut String> {
    match config {
        TriggerConfig::Nats(c) => broker_fields(&mut c.url, &mut c.auth),
        TriggerConfig::Amqp(c) => broker_fields(&mut c.url, &mut c.auth),
        TriggerConfig::Mqtt(c) => broker_fields(&mut c.url, &mut c.auth),
        TriggerConfig::Redis(c) => broker_fields(&mut c.url, &mut c.auth),
        _ => Vec::new(),
    }
}

/// The secret names a config refers to; `invalid_request` for a malformed reference.
pub(crate) fn referenced(config: &TriggerConfig) -> Result<Vec<String>> {
    let mut copy = config.clone();
    let mut names = Vec::new();
    for field in fields_mut(&mut copy) {
        names.extend(secret_refs(field)?.into_iter().map(str::to_string));
    }
    Ok(names)
}

/// `secret_not_found` unless every secret the config refers to exists in `app`.
pub(crate) async fn check(sink: &dyn EventSink, app: &str, config: &TriggerConfig) -> Result<()> {
    let names = referenced(config)?;
    if names.is_empty() {
        return Ok(());
    }
    sink.check_secrets(app, &names).await
}

/// Replaces the references in `config` with the app's secret values.
pub(crate) async fn expand(
    sink: &dyn EventSink,
    app: &str,
    config: &mut TriggerConfig,
) -> Result<()> {
    for field in fields_mut(config) {
        if field.contains("${secret:") {
            *field = sink.expand_secrets(app, field).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcus_core::trigger::{AmqpConfig, Batching};

    fn amqp(url: &str, password: Option<&str>) -> TriggerConfig {
        TriggerConfig::Amqp(AmqpConfig {
            url: url.into(),
            queue: "q".into(),
            auth: Credentials {
                username: Some("guest".into()),
                password: password.map(Into::into),
            },
            batching: Batching::default(),
        })
    }

    #[test]
    fn references_in_broker_fields_are_found() {
        let c = amqp(
            "amqp://127.0.0.1:5672/${secret:VHOST}",
            Some("${secret:MQ_PASS}"),
        );
        assert_eq!(referenced(&c).unwrap(), ["VHOST", "MQ_PASS"]);
        assert!(
            referenced(&amqp("amqp://h", Some("plain")))
                .unwrap()
                .is_empty()
        );
        assert!(referenced(&amqp("amqp://h", Some("${secret:open"))).is_err());
    }
}
