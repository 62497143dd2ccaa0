//! The autoscaler's decision, as Knative's KPA makes it: desired instances from the
//! observed in-flight concurrency averaged over a stable window (default 60 s, node
//! config `autoscale.stable_window_s`) and a panic window (a tenth of it). When the panic window asks for at least twice the ready instances the
//! scaler panics: it follows the panic window and never scales down until the stable
//! window has passed without panic. The result is clamped to `[min, max]`, and reaches
//! zero only once the function has been idle for `keep_alive`.
//!
//! Pure and clock-driven (`tokio::time::Instant`), so tests run it with paused time.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// The default stable averaging window.
pub const STABLE_WINDOW: Duration = Duration::from_secs(60);
/// The panic window is this fraction of the stable window (6 s of 60 s).
pub const PANIC_FRACTION: u32 = 10;
/// Panic when the panic window wants this multiple of the ready instances.
pub const PANIC_THRESHOLD: f64 = 2.0;

/// The settings one decision uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Floor (kept even when idle).
    pub min: u32,
    /// Ceiling (function max, further capped by quotas by the caller).
    pub max: u32,
    /// In-flight requests per instance to aim at (concurrency × target utilisation).
    pub target_per_instance: f64,
    /// Idle time after which the last instances may go (scale to zero / to `min`).
    pub keep_alive: Duration,
}

/// One decision with its inputs, for logging.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Instances wanted now.
    pub desired: u32,
    /// Whether the scaler is in panic mode.
    pub panic: bool,
    /// Average in-flight over the stable window.
    pub stable_avg: f64,
    /// Average in-flight over the panic window.
    pub panic_avg: f64,
}

/// The state of one function's scaler.
#[derive(Debug)]
pub struct Scaler {
    stable_window: Duration,
    panic_window: Duration,
    samples: VecDeque<(Instant, f64)>,
    panic_since: Option<Instant>,
    /// Highest desired count seen during the current panic (panic never scales down).
    panic_peak: u32,
    last_active: Option<Instant>,
}

impl Default for Scaler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scaler {
    /// A scaler with no history and the default windows.
    pub fn new() -> Self {
        Self::with_window(STABLE_WINDOW)
    }

    /// A scaler averaging over `stable_window` (and a tenth of it for panic).
    pub fn with_window(stable_window: Duration) -> Self {
        Self {
            stable_window,
            panic_window: stable_window / PANIC_FRACTION,
            samples: VecDeque::new(),
            panic_since: None,
            panic_peak: 0,
            last_active: None,
        }
    }

    /// Records the in-flight requests (running plus queued) seen at `now`.
    pub fn observe(&mut self, now: Instant, in_flight: f64) {
        if in_flight > 0.0 {
            self.last_active = Some(now);
        }
        self.samples.push_back((now, in_flight));
        while let Some((t, _)) = self.samples.front() {
            if now.duration_since(*t) > self.stable_window {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    fn average(&self, now: Instant, window: Duration) -> f64 {
        let (sum, n) = self
            .samples
            .iter()
            .rev()
            .take_while(|(t, _)| now.duration_since(*t) <= window)
            .fold((0.0, 0u32), |(s, n), (_, v)| (s + v, n + 1));
        if n == 0 { 0.0 } else { sum / f64::from(n) }
    }

    /// Decides how many instances are wanted, given `ready` instances now.
    pub fn decide(&mut self, now: Instant, ready: u32, policy: &Policy) -> Decision {
        let stable_avg = self.average(now, self.stable_window);
        let panic_avg = self.average(now, self.panic_window);
        let want = |avg: f64| -> u32 {
            let n = (avg / policy.target_per_instance).ceil();
            if n >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                n as u32
            }
        };
        let stable_want = want(stable_avg);
        let panic_want = want(panic_avg);
        let panicking_now = f64::from(panic_want) >= PANIC_THRESHOLD * f64::from(ready.max(1))
            && panic_want > ready;
        if panicking_now {
            if self.panic_since.is_none() {
                self.panic_peak = ready;
            }
            self.panic_since = Some(now);
        } else if self
            .panic_since
            .is_some_and(|t| now.duration_since(t) >= self.stable_window)
        {
            self.panic_since = None;
            self.panic_peak = 0;
        }
        let panic = self.panic_since.is_some();
        let mut desired = if panic {
            self.panic_peak = self.panic_peak.max(panic_want);
            self.panic_peak
        } else {
            stable_want
        };
        // Keep one instance until the function has been idle for keep_alive.
        let recently_active = self
            .last_active
            .is_some_and(|t| now.duration_since(t) < policy.keep_alive);
        if desired == 0 && recently_active {
            desired = 1;
        }
        Decision {
            desired: desired.clamp(policy.min, policy.max.max(policy.min)),
            panic,
            stable_avg,
            panic_avg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        min: 0,
        max: 50,
        target_per_instance: 10.0,
        keep_alive: Duration::from_secs(300),
    };

    /// Feeds `seconds` of one sample per second at `load`, then decides.
    async fn run(s: &mut Scaler, seconds: u32, load: f64, ready: u32, p: &Policy) -> Decision {
        let mut d = s.decide(Instant::now(), ready, p);
        for _ in 0..seconds {
            tokio::time::advance(Duration::from_secs(1)).await;
            s.observe(Instant::now(), load);
            d = s.decide(Instant::now(), ready, p);
        }
        d
    }

    #[tokio::test(start_paused = true)]
    async fn ramps_up_with_steady_load() {
        let mut s = Scaler::new();
        let d = run(&mut s, 60, 35.0, 4, &POLICY).await;
        assert_eq!((d.desired, d.panic), (4, false));
        let d = run(&mut s, 60, 60.0, 4, &POLICY).await;
        assert_eq!((d.desired, d.panic), (6, false), "{d:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn panics_when_load_doubles_and_does_not_scale_down_in_panic() {
        let mut s = Scaler::new();
        run(&mut s, 60, 20.0, 2, &POLICY).await;
        // A burst: 200 in flight wants 20 instances in the panic window at once.
        let d = run(&mut s, 3, 200.0, 2, &POLICY).await;
        assert!(d.panic, "{d:?}");
        assert!(d.desired >= 10, "{d:?}");
        let peak = d.desired;
        // The burst stops: still panicking, the count does not drop.
        let d = run(&mut s, 10, 0.0, peak, &POLICY).await;
        assert!(d.panic && d.desired == peak, "{d:?}");
        // After a stable window without panic, it follows the stable average again.
        let d = run(&mut s, 61, 0.0, peak, &POLICY).await;
        assert!(!d.panic, "{d:?}");
        assert_eq!(d.desired, 1, "kept one until keep-alive: {d:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn ramps_down_and_keeps_the_last_instance_for_keep_alive() {
        let mut s = Scaler::new();
        run(&mut s, 60, 50.0, 5, &POLICY).await;
        let d = run(&mut s, 61, 12.0, 5, &POLICY).await;
        assert_eq!(d.desired, 2, "{d:?}");
        let d = run(&mut s, 61, 0.0, 2, &POLICY).await;
        assert_eq!(d.desired, 1, "idle for 61 s < keep-alive: {d:?}");
        let d = run(&mut s, 240, 0.0, 1, &POLICY).await;
        assert_eq!(d.desired, 0, "idle past keep-alive scales to zero: {d:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn never_below_min_nor_above_max() {
        let p = Policy {
            min: 3,
            max: 6,
            ..POLICY
        };
        let mut s = Scaler::new();
        let d = run(&mut s, 400, 0.0, 3, &p).await;
        assert_eq!(d.desired, 3);
        let d = run(&mut s, 60, 1000.0, 3, &p).await;
        assert_eq!(d.desired, 6);
    }
}
