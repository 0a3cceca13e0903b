//! What every exporter of the fan-out does with a request: admit it, prepare what it will queue,
//! queue it, and stop.

use llmhub_content::ContentPolicy;
use llmhub_core::LlmCall;
use llmhub_exporters::forward::enrich::TenantStamp;
use llmhub_exporters::forward::Original;
use llmhub_exporters::queue::{OnFull, PushError};
use llmhub_server::budget::MemoryBudget;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// One processed export request, as every exporter sees it.
pub struct Batch<'a> {
    /// The trace request as received (the forwarder sends it on); `None` for a logs request,
    /// whose records only the record exporters take.
    pub original: Option<Original<'a>>,
    /// The records the processor made of it.
    pub records: &'a [LlmCall],
    /// The conversation-content policy.
    pub content: &'a ContentPolicy,
    /// The API key's tenant, to write over the request's tenant attributes.
    pub tenant: Option<TenantStamp<'a>>,
}

/// A prepared request: awaited, it queues what [`Exporter::prepare`] encoded (with
/// `durability: wal`, it ends once that is on disk).
pub type Delivery = Pin<Box<dyn Future<Output = Result<(), PushError>> + Send>>;

/// An exporter of the fan-out.
pub trait Exporter: Send + Sync {
    /// Its name in `/readyz`.
    fn name(&self) -> &'static str;

    /// What becomes of a request it cannot take: refused whole (the client retries it), or
    /// skipped by this exporter alone.
    fn on_full(&self) -> OnFull;

    /// Whether its queue can take another request; asked before the request is processed, so a
    /// refused request leaves no trace.
    fn admit(&self) -> Result<(), PushError>;

    /// Counts a request skipped under [`OnFull::Drop`].
    fn count_dropped(&self, why: &PushError);

    /// Encodes what it will queue of `batch`; `Ok(None)`: nothing. An error refuses the request.
    fn prepare(self: Arc<Self>, batch: &Batch<'_>) -> Result<Option<Delivery>, PushError>;

    /// Counts its memory queue against the process-wide `budget`.
    fn use_budget(&self, budget: Arc<MemoryBudget>);

    /// Why `/readyz` should say it is not ready; `None` while it is.
    fn problem(&self) -> Option<String>;

    /// Stops taking requests and writes out its queue within `deadline`.
    fn shutdown(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}
