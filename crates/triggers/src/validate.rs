//! Validation of trigger API input: parsing with errors that name the field, and the
//! checks that need more than serde (cron expressions, time zones, URLs, batch sizes).

use crate::cron::CronSchedule;
use arcus_core::names::{Qualifier, validate_name};
use arcus_core::trigger::{CreateTrigger, TriggerConfig, UpdateTrigger};
use arcus_core::{Error, Result};
use serde::de::DeserializeOwned;

/// Parses a JSON body, turning serde's message into one that names the field
/// (`config: missing field `queue``). Unknown keys are errors.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("the body is not valid JSON: {e}")))?;
    if let Some(config) = value.get("config")
        && let Err(e) = serde_json::from_value::<TriggerConfig>(config.clone())
    {
        return Err(Error::invalid(format!("config: {}", strip_position(&e))));
    }
    serde_json::from_value(value).map_err(|e| Error::invalid(strip_position(&e)))
}

fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

/// Parses and validates a `POST .../triggers` body.
pub fn parse_create(body: &[u8]) -> Result<CreateTrigger> {
    let req: CreateTrigger = parse(body)?;
    validate_name("trigger", &req.name)?;
    if let Some(q) = &req.qualifier {
        Qualifier::parse(q).map_err(|e| Error::invalid(format!("qualifier: {}", e.message)))?;
    }
    validate_config(&req.config)?;
    Ok(req)
}

/// Parses and validates a `PATCH .../triggers/{name}` body.
pub fn parse_update(body: &[u8]) -> Result<UpdateTrigger> {
    let req: UpdateTrigger = parse(body)?;
    if let Some(q) = &req.qualifier {
        Qualifier::parse(q).map_err(|e| Error::invalid(format!("qualifier: {}", e.message)))?;
    }
    if let Some(c) = &req.config {
        validate_config(c)?;
    }
    Ok(req)
}

/// Checks what serde cannot: the cron expression and time zone, broker URLs (scheme,
/// no embedded credentials) and batching ranges.
pub fn validate_config(config: &TriggerConfig) -> Result<()> {
    match config {
        TriggerConfig::Cron(c) => CronSchedule::parse(&c.schedule, &c.timezone).map(|_| ()),
        TriggerConfig::Nats(c) => {
            check_url(&c.url, &["nats", "tls"])?;
            non_empty("stream", &c.stream)?;
            non_empty("consumer", &c.consumer)
        }
        TriggerConfig::Amqp(c) => {
            check_url(&c.url, &["amqp", "amqps"])?;
            non_empty("queue", &c.queue)
        }
        TriggerConfig::Mqtt(c) => {
            check_url(&c.url, &["mqtt", "mqtts", "tcp", "ssl"])?;
            non_empty("topic", &c.topic)
        }
        TriggerConfig::Redis(c) => {
            check_url(&c.url, &["redis", "rediss"])?;
            non_empty("stream", &c.stream)?;
            non_empty("group", &c.group)
        }
        TriggerConfig::Webhook(c) => match &c.secret {
            Some(s) if s.is_empty() => Err(Error::invalid("config.secret may not be empty")),
            _ => Ok(()),
        },
    }?;
    if let Some(b) = config.batching() {
        b.validate()?;
    }
    Ok(())
}

fn non_empty(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(format!("config.{field} may not be empty")));
    }
    Ok(())
}

fn check_url(raw: &str, schemes: &[&str]) -> Result<()> {
    let url = url::Url::parse(raw)
        .map_err(|e| Error::invalid(format!("config.url: {raw:?} is not a URL: {e}")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(Error::invalid(format!(
            "config.url: scheme must be one of {}",
            schemes.join(", ")
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            "config.url may not carry credentials; put them in config.username and \
             config.password",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("config.url has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(v: serde_json::Value) -> Result<CreateTrigger> {
        parse_create(v.to_string().as_bytes())
    }

    fn err(v: serde_json::Value) -> String {
        let e = create(v).unwrap_err();
        assert_eq!(e.code, arcus_core::ErrorCode::InvalidRequest, "{e}");
        e.message
    }

    #[test]
    fn good_configs_pass() {
        let c = create(serde_json::json!({"name": "tick",
            "config": {"type": "cron", "schedule": "*/5 * * * *", "timezone": "Europe/Berlin"}}))
        .unwrap();
        assert!(matches!(c.config, TriggerConfig::Cron(_)));
        create(serde_json::json!({"name": "q", "config": {"type": "nats",
            "url": "nats://127.0.0.1:4222", "stream": "s", "consumer": "c",
            "username": "u", "password": "p", "batch_size": 10}}))
        .unwrap();
        create(serde_json::json!({"name": "h", "config": {"type": "webhook"}})).unwrap();
    }

    #[test]
    fn bad_input_names_the_field() {
        let cron = |s: &str, tz: &str| {
            err(serde_json::json!({"name": "t",
                "config": {"type": "cron", "schedule": s, "timezone": tz}}))
        };
        assert!(cron("61 * * * *", "UTC").contains("config.schedule"));
        assert!(cron("* * *", "UTC").contains("config.schedule"));
        assert!(cron("* * * * *", "Mars/Olympus").contains("config.timezone"));
        let m = err(serde_json::json!({"name": "t", "config": {"type": "kafka"}}));
        assert!(m.contains("kafka"), "{m}");
        let m = err(serde_json::json!({"name": "t",
            "config": {"type": "amqp", "url": "amqp://h:5672"}}));
        assert!(m.contains("config") && m.contains("queue"), "{m}");
        let m = err(serde_json::json!({"name": "t", "config": {"type": "amqp",
            "url": "amqp://guest:secret@h:5672", "queue": "q"}}));
        assert!(m.contains("credentials"), "{m}");
        let m = err(serde_json::json!({"name": "t", "config": {"type": "redis",
            "url": "redis://h", "stream": "s", "group": "g", "batch_size": 0}}));
        assert!(m.contains("batch_size"), "{m}");
        let e = create(serde_json::json!({"name": "Bad Name", "config": {"type": "webhook"}}));
        assert_eq!(e.unwrap_err().code, arcus_core::ErrorCode::InvalidName);
    }

    #[test]
    fn unknown_keys_are_errors() {
        for config in [
            serde_json::json!({"type": "cron", "schedule": "* * * * *", "colour": 1}),
            serde_json::json!({"type": "webhook", "colour": 1}),
            serde_json::json!({"type": "nats", "url": "nats://h", "stream": "s",
                "consumer": "c", "colour": 1}),
            serde_json::json!({"type": "amqp", "url": "amqp://h", "queue": "q", "colour": 1}),
            serde_json::json!({"type": "mqtt", "url": "mqtt://h", "topic": "t", "colour": 1}),
            serde_json::json!({"type": "redis", "url": "redis://h", "stream": "s",
                "group": "g", "colour": 1}),
        ] {
            let m = err(serde_json::json!({"name": "t", "config": config}));
            assert!(m.contains("colour"), "{m}");
        }
        let m = err(serde_json::json!({"name": "t", "config": {"type": "webhook"}, "x": 1}));
        assert!(m.contains('x'), "{m}");
    }
}
