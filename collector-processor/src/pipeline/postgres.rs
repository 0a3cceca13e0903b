//! The PostgreSQL sink as an exporter: rows of the records; a full queue refuses the request.

use super::exporter::{Batch, Delivery, Exporter};
use llmhub_exporters::postgres::PostgresSink;
use llmhub_exporters::queue::{OnFull, PushError};
use llmhub_server::budget::MemoryBudget;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

impl Exporter for PostgresSink {
    fn name(&self) -> &'static str {
        "postgres sink"
    }

    fn on_full(&self) -> OnFull {
        OnFull::Refuse
    }

    fn admit(&self) -> Result<(), PushError> {
        PostgresSink::admit(self)
    }

    fn count_dropped(&self, _why: &PushError) {
        // Never called: a request the sink cannot take is refused, not dropped.
    }

    fn prepare(self: Arc<Self>, batch: &Batch<'_>) -> Result<Option<Delivery>, PushError> {
        let rows = self.encode(batch.records)?;
        Ok(Some(Box::pin(async move { self.push(rows).await })))
    }

    fn use_budget(&self, budget: Arc<MemoryBudget>) {
        PostgresSink::use_budget(self, budget);
    }

    fn problem(&self) -> Option<String> {
        PostgresSink::problem(self)
    }

    fn shutdown(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(PostgresSink::shutdown(self, deadline))
    }
}
