//! `type: redis`: a Redis Streams consumer group (created at the stream's end with
//! `XGROUP CREATE … $ MKSTREAM` if missing), read with `XREADGROUP` as consumer
//! `arcus-<trigger id>`, asking for at most the free capacity. An entry is `XACK`ed
//! after its invocation succeeded; after a failure it stays pending, and once it has
//! been idle 5 s `XAUTOCLAIM` hands it to this consumer again, so failures are retried
//! (as are entries another consumer of the group left pending). Lag is `XINFO GROUPS`'s
//! `lag`.

use crate::batch::{self, Batcher, Pipeline, Session, Settle};
use crate::source::{Source, SourceCtx};
use arcus_core::trigger::{RedisConfig, TriggerConfig};
use async_trait::async_trait;
use futures::future::BoxFuture;
use redis::AsyncCommands as _;
use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamInfoGroupsReply,
    StreamReadOptions, StreamReadReply,
};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one `XREADGROUP` blocks.
const BLOCK_MS: usize = 1000;
/// How long a failed or abandoned entry stays pending before it is claimed again.
const MIN_IDLE_MS: usize = 5000;
/// How often pending entries are looked for.
const CLAIM_EVERY: Duration = Duration::from_secs(1);

/// The Redis Streams trigger source; reads its [`RedisConfig`] from the trigger.
pub struct RedisSource;

/// The source for `type: redis` triggers.
pub(crate) fn source() -> Box<dyn Source> {
    Box::new(RedisSource)
}

#[async_trait]
impl Source for RedisSource {
    async fn run(self: Box<Self>, ctx: SourceCtx) {
        let TriggerConfig::Redis(config) = &ctx.trigger.config else {
            ctx.status.connecting("not a redis trigger");
            return;
        };
        let b = config.batching;
        let pipeline = Pipeline::new(&ctx, b.batch_size, b.batch_window_ms, false);
        let session = RedisSession {
            settle: Arc::new(RedisSettle {
                conn: Mutex::new(None),
                stream: config.stream.clone(),
                group: config.group.clone(),
                held: Mutex::new(HashSet::new()),
            }),
            config: config.clone(),
            consumer: format!("arcus-{}", ctx.trigger.id),
        };
        batch::run_source(session, pipeline).await;
    }
}

struct RedisSession {
    config: RedisConfig,
    consumer: String,
    /// Shared by all sessions: acks after a reconnect go over the new connection.
    settle: Arc<RedisSettle>,
}

type ReadFuture = BoxFuture<'static, redis::RedisResult<Option<StreamReadReply>>>;

impl RedisSession {
    fn read(&self, mut conn: MultiplexedConnection, count: usize) -> ReadFuture {
        let (stream, group, consumer) = (
            self.config.stream.clone(),
            self.config.group.clone(),
            self.consumer.clone(),
        );
        Box::pin(async move {
            let opts = StreamReadOptions::default()
                .group(&group, &consumer)
                .count(count)
                .block(BLOCK_MS);
            conn.xread_options(&[&stream], &[">"], &opts).await
        })
    }
}

#[async_trait]
impl Session for RedisSession {
    async fn session(&mut self, p: &mut Pipeline) -> Result<(), String> {
        let url = batch::url_with_credentials(&self.config.url, &self.config.auth)?;
        let client = redis::Client::open(url).map_err(|e| format!("redis url: {e}"))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_millis(BLOCK_MS as u64 + 5000)));
        let connect = || async {
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| format!("redis connect: {e}"))
        };
        let read_conn = connect().await?;
        let mut ctl = connect().await?;
        let (stream, group) = (self.config.stream.clone(), self.config.group.clone());
        match ctl
            .xgroup_create_mkstream::<_, _, _, ()>(&stream, &group, "$")
            .await
        {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(format!("redis XGROUP CREATE {stream} {group}: {e}")),
        }
        *lock(&self.settle.conn) = Some(ctl.clone());
        p.set_connected();
        let lag_conn = ctl.clone();
        let (lag_stream, lag_group) = (stream.clone(), group.clone());
        let _lag = batch::spawn_lag(p.status.clone(), &p.cancel, move || {
            let (mut c, s, g) = (lag_conn.clone(), lag_stream.clone(), lag_group.clone());
            async move {
                let reply: StreamInfoGroupsReply = c.xinfo_groups(&s).await.ok()?;
                let group = reply.groups.into_iter().find(|x| x.name == g)?;
                group.lag.map(|l| l as u64)
            }
        });
        let mut batcher = Batcher::new(self.settle.clone());
        let mut read: Option<ReadFuture> = None;
        let mut claim_tick = tokio::time::interval(CLAIM_EVERY);
        let mut cursor = "0-0".to_string();
        loop {
            let free = p.free();
            if read.is_none() && free > 0 {
                read = Some(self.read(read_conn.clone(), free));
            }
            tokio::select! {
                biased;
                _ = p.cancel.cancelled() => return Ok(()),
                r = async { match read.as_mut() { Some(f) => f.await, None => std::future::pending().await } } => {
                    read = None;
                    let reply = r.map_err(|e| format!("redis XREADGROUP: {e}"))?;
                    for key in reply.map(|r| r.keys).unwrap_or_default() {
                        for entry in key.ids {
                            self.push(p, &mut batcher, entry).await;
                        }
                    }
                }
                _ = batcher.due() => p.flush(&mut batcher).await,
                _ = claim_tick.tick(), if p.free() > 0 => {
                    let opts = StreamAutoClaimOptions::default().count(p.free());
                    let reply: StreamAutoClaimReply = ctl
                        .xautoclaim_options(&stream, &group, &self.consumer, MIN_IDLE_MS, &cursor, opts)
                        .await
                        .map_err(|e| format!("redis XAUTOCLAIM: {e}"))?;
                    cursor = reply.next_stream_id;
                    for entry in reply.claimed {
                        self.push(p, &mut batcher, entry).await;
                    }
                }
                _ = p.freed(), if read.is_none() => {}
            }
        }
    }
}

impl RedisSession {
    /// Hands an entry to the pipeline unless it is already held (being delivered).
    async fn push(&self, p: &mut Pipeline, batcher: &mut Batcher<RedisSettle>, entry: StreamId) {
        if !lock(&self.settle.held).insert(entry.id.clone()) {
            return;
        }
        let record = record(&self.config, &entry);
        p.push(batcher, record, entry.id).await;
    }
}

/// The event record of one entry (see docs/triggers.md).
fn record(config: &RedisConfig, e: &StreamId) -> Value {
    let mut r = Map::new();
    r.insert("type".into(), "redis".into());
    r.insert("stream".into(), config.stream.as_str().into());
    r.insert("group".into(), config.group.as_str().into());
    r.insert("id".into(), e.id.as_str().into());
    let mut fields = Map::new();
    let mut names: Vec<&String> = e.map.keys().collect();
    names.sort();
    for k in names {
        let v = match &e.map[k] {
            redis::Value::BulkString(b) => batch::text_or_base64(b),
            redis::Value::SimpleString(s) => s.as_str().into(),
            redis::Value::Int(n) => n.to_string().into(),
            other => format!("{other:?}").into(),
        };
        fields.insert(k.clone(), v);
    }
    r.insert("fields".into(), Value::Object(fields));
    Value::Object(r)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic while holding the lock cannot leave it inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct RedisSettle {
    conn: Mutex<Option<MultiplexedConnection>>,
    stream: String,
    group: String,
    /// Entry ids handed to the pipeline and not yet settled.
    held: Mutex<HashSet<String>>,
}

#[async_trait]
impl Settle for RedisSettle {
    type Handle = String;

    async fn ack(&self, ids: Vec<String>) {
        let conn = lock(&self.conn).clone();
        if let Some(mut c) = conn {
            let r: redis::RedisResult<usize> = c.xack(&self.stream, &self.group, &ids).await;
            if let Err(e) = r {
                tracing::debug!(error = %e, "redis XACK failed (the entries will be claimed again)");
            }
        }
        let mut held = lock(&self.held);
        for id in &ids {
            held.remove(id);
        }
    }

    async fn nack(&self, ids: Vec<String>) {
        // Left pending: XAUTOCLAIM picks them up once idle.
        self.dropped(ids);
    }

    fn dropped(&self, ids: Vec<String>) {
        let mut held = lock(&self.held);
        for id in &ids {
            held.remove(id);
        }
    }
}
