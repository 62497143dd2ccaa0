//! Read side of observability: invocation queries, stats and usage from rollups.

use crate::Engine;
use arcus_core::model::Timestamp;
use arcus_core::record::InvocationRecord;
use arcus_core::stats::{
    InvocationQuery, Page, Resolution, RollupQuery, StatsView, StatsWindow, UsageView,
};
use arcus_core::{Error, ErrorCode, Result};

/// The longest range one usage query may cover, hours (31 days).
pub const MAX_USAGE_HOURS: i64 = 744;

impl Engine {
    /// An app's invocation records matching `q`, newest first, one page.
    pub async fn query_invocations(
        &self,
        app: &str,
        q: &InvocationQuery,
    ) -> Result<Page<InvocationRecord>> {
        self.inner.store.query_invocations(app, q).await
    }

    /// Stats of an app, or one of its functions, over `window` ending now.
    pub async fn stats(
        &self,
        app: &str,
        function: Option<&str>,
        window: StatsWindow,
    ) -> Result<StatsView> {
        let now = Timestamp::now_utc();
        let (from, to) = window.range(now);
        let query = RollupQuery {
            function: function.map(str::to_string),
            resolution: window.resolution(),
            from,
            to,
        };
        let rows = self.inner.store.rollups(app, &query).await?;
        Ok(StatsView::build(app, function, window, now, &rows))
    }

    /// Metered use of an app per function and hour in `[from, to)`, both rounded down
    /// to the hour; defaults to the last 24 hours (the current one included).
    pub async fn usage(
        &self,
        app: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<UsageView> {
        let hour = Resolution::Hour;
        let to = to.map_or_else(
            || hour.bucket_of(Timestamp::now_utc()) + hour.seconds(),
            |t| hour.bucket_of(t),
        );
        let from = from.map_or(to - 24 * hour.seconds(), |t| hour.bucket_of(t));
        if from >= to || to - from > MAX_USAGE_HOURS * hour.seconds() {
            return Err(Error::new(
                ErrorCode::InvalidRequest,
                format!(
                    "usage range must cover 1 to {MAX_USAGE_HOURS} whole hours (from < to, rounded down to the hour)"
                ),
            ));
        }
        let query = RollupQuery {
            function: None,
            resolution: hour,
            from,
            to,
        };
        let rows = self.inner.store.rollups(app, &query).await?;
        Ok(UsageView::build(app, from, to, &rows))
    }
}
