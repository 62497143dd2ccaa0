//! Broker sources and destination publishers against the real brokers of this machine
//! (NATS JetStream :4222, RabbitMQ :5672, Mosquitto :1883, Redis :6379), published to
//! with the real client crates; connections are cut with a TCP proxy, never by
//! restarting a broker.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "brokers/common.rs"]
mod common;

#[cfg(feature = "amqp")]
#[path = "brokers/amqp.rs"]
mod amqp;
#[cfg(feature = "mqtt")]
#[path = "brokers/mqtt.rs"]
mod mqtt;
#[cfg(feature = "nats")]
#[path = "brokers/nats.rs"]
mod nats;
#[path = "brokers/publish.rs"]
mod publish;
#[cfg(feature = "redis")]
#[path = "brokers/redis.rs"]
mod redis;
