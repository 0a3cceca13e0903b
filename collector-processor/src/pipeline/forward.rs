//! The span forwarder as an exporter: the request as received, its content policy applied,
//! enriched with its records; a full queue drops the request from forwarding or refuses it, as
//! `on_full` says.

use super::exporter::{Batch, Delivery, Exporter};
use llmhub_exporters::forward::Forwarder;
use llmhub_exporters::queue::{OnFull, PushError};
use llmhub_server::budget::MemoryBudget;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

impl Exporter for Forwarder {
    fn name(&self) -> &'static str {
        "otlp forwarder"
    }

    fn on_full(&self) -> OnFull {
        Forwarder::on_full(self)
    }

    fn admit(&self) -> Result<(), PushError> {
        Forwarder::admit(self)
    }

    fn count_dropped(&self, why: &PushError) {
        Forwarder::count_dropped(self, why);
    }

    fn prepare(self: Arc<Self>, batch: &Batch<'_>) -> Result<Option<Delivery>, PushError> {
        let Some(original) = batch.original else {
            return Ok(None);
        };
        let prepared = Forwarder::prepare(&self, original, batch.records, batch.content, batch.tenant);
        Ok(prepared.map(|item| -> Delivery { Box::pin(async move { self.push(item).await }) }))
    }

    fn use_budget(&self, budget: Arc<MemoryBudget>) {
        Forwarder::use_budget(self, budget);
    }

    fn problem(&self) -> Option<String> {
        Forwarder::problem(self)
    }

    fn shutdown(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(Forwarder::shutdown(self, deadline))
    }
}
