//! Cron source tests, on paused tokio time with a clock that follows it.

use super::*;
use crate::sink::EventSink;
use crate::source::{Invoker, StatusHandle};
use arcus_core::record::TriggerKind;
use arcus_core::trigger::{Trigger, TriggerState};
use arcus_engine::Target;
use std::collections::BTreeMap;
use std::sync::Mutex;
use time::macros::datetime;
use tokio_util::sync::CancellationToken;

/// Records enqueued events.
#[derive(Default)]
struct FakeSink {
    events: Mutex<Vec<(serde_json::Value, Option<String>)>>,
}

#[async_trait]
impl EventSink for FakeSink {
    async fn invoke(&self, _: &Target, _: TriggerKind, _: Bytes) -> Result<Bytes> {
        Err(Error::internal("not used"))
    }
    async fn enqueue(
        &self,
        _: &Target,
        kind: TriggerKind,
        payload: Bytes,
        key: Option<String>,
    ) -> Result<String> {
        assert_eq!(kind, TriggerKind::Cron);
        let v = serde_json::from_slice(&payload).map_err(|_| Error::internal("json"))?;
        let mut events = self.events.lock().unwrap();
        events.push((v, key));
        Ok(format!("inv-{}", events.len()))
    }
}

/// Claims in memory, with the store's compare-and-set semantics.
#[derive(Default)]
struct FakeTicks(Mutex<BTreeMap<String, Timestamp>>);

#[async_trait]
impl Ticks for FakeTicks {
    async fn claim(&self, id: &str, tick: Timestamp) -> Result<bool> {
        let mut m = self.0.lock().unwrap();
        match m.get(id) {
            Some(last) if *last >= tick => Ok(false),
            _ => {
                m.insert(id.to_string(), tick);
                Ok(true)
            }
        }
    }
    async fn last(&self, id: &str) -> Result<Option<Timestamp>> {
        Ok(self.0.lock().unwrap().get(id).copied())
    }
}

/// A wall clock starting at `start` that moves with (paused) tokio time.
fn tokio_clock(start: Timestamp) -> Clock {
    let base = tokio::time::Instant::now();
    Arc::new(move || start + (tokio::time::Instant::now() - base))
}

fn trigger(schedule: &str, missed: MissedTicks, created: Timestamp) -> Trigger {
    Trigger {
        id: "trg1".into(),
        app: "shop".into(),
        function: "cart".into(),
        name: "tick".into(),
        qualifier: "live".into(),
        enabled: true,
        config: TriggerConfig::Cron(CronConfig {
            schedule: schedule.into(),
            timezone: "UTC".into(),
            missed,
            payload: Some(serde_json::json!({"k": 1})),
        }),
        created_at: created,
        updated_at: created,
    }
}

struct Run {
    sink: Arc<FakeSink>,
    status: StatusHandle,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(t: Trigger, ticks: Arc<FakeTicks>, clock: Clock, sink: Arc<FakeSink>) -> Run {
    let status = StatusHandle::new();
    let cancel = CancellationToken::new();
    let target = Target {
        app: t.app.clone(),
        function: t.function.clone(),
        qualifier: arcus_core::names::Qualifier::live(),
    };
    let ctx = SourceCtx {
        trigger: Arc::new(t),
        invoker: Invoker::new(sink.clone(), target, TriggerKind::Cron),
        status: status.clone(),
        cancel: cancel.clone(),
        concurrency: 1,
    };
    let source = Box::new(CronSource::with_ticks(ticks, clock));
    let task = tokio::spawn(source.run(ctx));
    Run {
        sink,
        status,
        cancel,
        task,
    }
}

async fn stop(run: Run) -> Vec<(serde_json::Value, Option<String>)> {
    run.cancel.cancel();
    run.task.await.unwrap();
    run.sink.events.lock().unwrap().clone()
}

#[test]
fn schedules_parse_with_five_six_and_seven_fields() {
    let five = CronSchedule::parse("*/15 * * * *", "UTC").unwrap();
    let t = datetime!(2030-01-01 10:07:30 UTC);
    assert_eq!(five.next_after(t), Some(datetime!(2030-01-01 10:15:00 UTC)));
    let six = CronSchedule::parse("*/10 * * * * *", "UTC").unwrap();
    assert_eq!(six.next_after(t), Some(datetime!(2030-01-01 10:07:40 UTC)));
    let seven = CronSchedule::parse("0 0 12 * * * 2031", "UTC").unwrap();
    assert_eq!(
        seven.next_after(t),
        Some(datetime!(2031-01-01 12:00:00 UTC))
    );
    // 09:00 in Berlin (UTC+1 in winter) is 08:00 UTC.
    let berlin = CronSchedule::parse("0 9 * * *", "Europe/Berlin").unwrap();
    assert_eq!(
        berlin.next_after(t),
        Some(datetime!(2030-01-02 08:00:00 UTC))
    );
    assert_eq!(
        six.latest_in(datetime!(2030-01-01 10:00:00 UTC), t),
        Some(datetime!(2030-01-01 10:07:30 UTC))
    );
    assert_eq!(five.latest_in(datetime!(2030-01-01 10:00:00 UTC), t), None);
    assert!(
        CronSchedule::parse("0 0 12 * * * 2020", "UTC")
            .unwrap()
            .next_after(t)
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn fires_each_tick_with_the_documented_event() {
    let start_at = datetime!(2030-01-01 10:00:00.500 UTC);
    let clock = tokio_clock(start_at);
    let run = start(
        trigger("*/10 * * * * *", MissedTicks::Skip, start_at),
        Arc::default(),
        clock,
        Arc::default(),
    );
    tokio::time::sleep(Duration::from_secs(35)).await;
    let snap = run.status.snapshot();
    assert_eq!(snap.state, TriggerState::Connected);
    assert_eq!(snap.delivered, 3);
    assert_eq!(snap.next_fire_at, Some(datetime!(2030-01-01 10:00:40 UTC)));
    let events = stop(run).await;
    let times: Vec<&str> = events
        .iter()
        .map(|(e, _)| e["scheduled_time"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2030-01-01T10:00:10Z",
            "2030-01-01T10:00:20Z",
            "2030-01-01T10:00:30Z"
        ]
    );
    let (first, key) = &events[0];
    assert_eq!(first["type"], "cron");
    assert_eq!(first["trigger"], "tick");
    assert_eq!(first["payload"], serde_json::json!({"k": 1}));
    assert!(
        first["fired_at"]
            .as_str()
            .unwrap()
            .starts_with("2030-01-01T10:00:10")
    );
    let unix = datetime!(2030-01-01 10:00:10 UTC).unix_timestamp();
    assert_eq!(key.as_deref(), Some(format!("cron:trg1:{unix}").as_str()));
}

#[tokio::test(start_paused = true)]
async fn a_claimed_tick_is_not_fired_again() {
    let start_at = datetime!(2030-01-01 10:00:05 UTC);
    let ticks = Arc::new(FakeTicks::default());
    // Another node (or an earlier run) already fired 10:00:10.
    ticks
        .claim("trg1", datetime!(2030-01-01 10:00:10 UTC))
        .await
        .unwrap();
    let run = start(
        trigger("*/10 * * * * *", MissedTicks::Skip, start_at),
        ticks,
        tokio_clock(start_at),
        Arc::default(),
    );
    tokio::time::sleep(Duration::from_secs(16)).await;
    let events = stop(run).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0["scheduled_time"], "2030-01-01T10:00:20Z");
}

#[tokio::test(start_paused = true)]
async fn missed_ticks_skip_or_fire_once() {
    let created = datetime!(2030-01-01 09:00:00 UTC);
    let now = datetime!(2030-01-01 10:00:05 UTC);
    for (missed, expected) in [
        (MissedTicks::Skip, vec![]),
        (MissedTicks::FireOnce, vec!["2030-01-01T10:00:00Z"]),
    ] {
        let ticks = Arc::new(FakeTicks::default());
        ticks
            .claim("trg1", datetime!(2030-01-01 09:30:00 UTC))
            .await
            .unwrap();
        let run = start(
            trigger("*/5 * * * *", missed, created),
            ticks.clone(),
            tokio_clock(now),
            Arc::default(),
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        let events = stop(run).await;
        let times: Vec<String> = events
            .iter()
            .map(|(e, _)| e["scheduled_time"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(times, expected, "{missed:?}");
        // A restart right after does not fire the caught-up tick again.
        if missed == MissedTicks::FireOnce {
            let again = start(
                trigger("*/5 * * * *", missed, created),
                ticks,
                tokio_clock(now),
                Arc::default(),
            );
            tokio::time::sleep(Duration::from_secs(10)).await;
            assert!(stop(again).await.is_empty());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_bad_schedule_reports_connecting_with_the_error() {
    let at = datetime!(2030-01-01 10:00:00 UTC);
    let run = start(
        trigger("nope", MissedTicks::Skip, at),
        Arc::default(),
        tokio_clock(at),
        Arc::default(),
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    let snap = run.status.snapshot();
    assert_eq!(snap.state, TriggerState::Connecting);
    assert!(snap.last_error.unwrap().contains("config.schedule"));
    assert!(stop(run).await.is_empty());
}
