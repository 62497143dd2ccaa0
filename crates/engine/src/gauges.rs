//! Gauges of the node's state, sampled when `/metrics` is scraped and rendered in the
//! Prometheus text format: invocations running and waiting, instances by state, the
//! async queue's depth and age. Sampling at scrape time keeps them exact and leaves no
//! stale series behind when a function goes away.

use crate::Engine;
use arcus_core::api::InstanceState;
use arcus_core::events::{EventStatus, QueueDepth};
use arcus_core::model::Timestamp;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Prometheus text of gauge families.
#[derive(Default)]
struct Text(String);

impl Text {
    /// Writes one gauge family; each sample is its labels and value.
    fn family(&mut self, name: &str, help: &str, samples: Vec<(Vec<(&str, &str)>, f64)>) {
        let out = &mut self.0;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

/// Escapes a label value (names are validated, but the format must hold regardless).
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn state_name(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Starting => "starting",
        InstanceState::Idle => "idle",
        InstanceState::Busy => "busy",
        InstanceState::Draining => "draining",
    }
}

/// The app and function of a process instance's ARN
/// (`arn:aws:lambda:<region>:<app>:function:<fn>[:<qualifier>]`).
fn arn_names(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':').skip(4);
    let app = parts.next()?;
    (parts.next()? == "function").then_some(())?;
    Some((app, parts.next()?))
}

/// Depth by (app, function, status) and the age in seconds of each function's oldest
/// waiting (queued or retry-scheduled) event.
type QueueSamples = (Vec<QueueDepth>, BTreeMap<(String, String), f64>);

fn queue_samples(depths: Vec<QueueDepth>, now: Timestamp) -> QueueSamples {
    let mut ages = BTreeMap::new();
    for d in depths.iter().filter(|d| d.status != EventStatus::Running) {
        let age = (now - d.oldest).as_seconds_f64().max(0.0);
        let slot = ages
            .entry((d.app.clone(), d.function.clone()))
            .or_insert(0.0_f64);
        *slot = slot.max(age);
    }
    (depths, ages)
}

impl Engine {
    /// The node's gauges in the Prometheus text format (appended to the exporter's
    /// counters and histograms by `/metrics`). A store failure leaves out the queue
    /// gauges rather than the whole scrape.
    pub async fn gauges(&self) -> String {
        let mut t = Text::default();
        let loads = self.inner.activator.loads(|_| true);
        let per_fn = |value: fn(&crate::activator::GateLoad) -> u32| {
            loads
                .iter()
                .map(|l| {
                    let labels = vec![("app", l.app.as_str()), ("function", l.function.as_str())];
                    (labels, f64::from(value(l)))
                })
                .collect()
        };
        t.family(
            "arcus_in_flight",
            "Invocations running on this node.",
            per_fn(|l| l.running),
        );
        t.family(
            "arcus_waiting",
            "Invocations waiting for a free slot on this node.",
            per_fn(|l| l.waiting),
        );
        self.instance_gauges(&mut t);
        match self.inner.store.queue_depths().await {
            Ok(depths) => queue_gauges(&mut t, depths),
            Err(e) => tracing::warn!("cannot read the async queue depth: {e}"),
        }
        t.0
    }

    fn instance_gauges(&self, t: &mut Text) {
        let mut by_state: BTreeMap<(String, String, &'static str), u32> = BTreeMap::new();
        for i in self.inner.process.iter().flat_map(|p| p.instances()) {
            if let Some((app, function)) = arn_names(&i.function_arn) {
                let key = (app.to_string(), function.to_string(), state_name(i.state));
                *by_state.entry(key).or_default() += 1;
            }
        }
        let samples = by_state
            .iter()
            .map(|((app, function, state), n)| {
                let labels = vec![
                    ("app", app.as_str()),
                    ("function", function.as_str()),
                    ("state", state),
                ];
                (labels, f64::from(*n))
            })
            .collect();
        t.family(
            "arcus_instances",
            "Process instances on this node, by app, function and state.",
            samples,
        );
        let c = self.inner.components.counts();
        let samples = [("idle", c.idle), ("busy", c.busy), ("loading", c.loading)]
            .into_iter()
            .map(|(state, n)| (vec![("state", state)], f64::from(n)))
            .collect();
        t.family(
            "arcus_wasm_components",
            "Wasm components loaded on this node (shared by functions with the same code), by state.",
            samples,
        );
    }
}

fn queue_gauges(t: &mut Text, depths: Vec<QueueDepth>) {
    let (depths, ages) = queue_samples(depths, Timestamp::now_utc());
    let samples = depths
        .iter()
        .map(|d| {
            let labels = vec![
                ("app", d.app.as_str()),
                ("function", d.function.as_str()),
                ("status", d.status.as_str()),
            ];
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            (labels, d.count as f64)
        })
        .collect();
    t.family(
        "arcus_queue_depth",
        "Unfinished async events, by app, function and status (queued, failed: retry scheduled, running).",
        samples,
    );
    let samples = ages
        .iter()
        .map(|((app, function), age)| {
            (
                vec![("app", app.as_str()), ("function", function.as_str())],
                *age,
            )
        })
        .collect();
    t.family(
        "arcus_queue_oldest_age_seconds",
        "Age of the oldest async event waiting for an attempt, by app and function.",
        samples,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_in_the_prometheus_text_format() {
        let mut t = Text::default();
        t.family(
            "g",
            "Help.",
            vec![(vec![("app", "a\"b"), ("state", "idle")], 2.0)],
        );
        t.family("empty", "None.", Vec::new());
        assert_eq!(
            t.0,
            "# HELP g Help.\n# TYPE g gauge\ng{app=\"a\\\"b\",state=\"idle\"} 2\n\
             # HELP empty None.\n# TYPE empty gauge\n"
        );
    }

    #[test]
    fn arns_name_app_and_function() {
        let arn = crate::process::function_arn("shop", "cart", Some("live"));
        assert_eq!(arn_names(&arn), Some(("shop", "cart")));
        assert_eq!(arn_names("nonsense"), None);
    }

    #[test]
    fn queue_age_is_the_oldest_waiting_event_not_running_ones() {
        let now = Timestamp::UNIX_EPOCH + time::Duration::seconds(100);
        let depth = |status, secs| QueueDepth {
            app: "a".into(),
            function: "f".into(),
            status,
            count: 1,
            oldest: Timestamp::UNIX_EPOCH + time::Duration::seconds(secs),
        };
        let (_, ages) = queue_samples(
            vec![
                depth(EventStatus::Queued, 90),
                depth(EventStatus::Failed, 40),
                depth(EventStatus::Running, 1),
            ],
            now,
        );
        assert_eq!(ages[&("a".to_string(), "f".to_string())], 60.0);
    }
}
