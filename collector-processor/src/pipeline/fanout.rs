//! The fan-out: every exporter of the traces pipeline, asked in turn whether it can take a
//! request, then given it at once.

use super::exporter::{Batch, Delivery, Exporter};
use llmhub_exporters::queue::{OnFull, PushError};
use llmhub_server::budget::MemoryBudget;
use std::sync::Arc;
use std::time::Duration;

/// The exporters of the traces pipeline, in delivery order.
#[derive(Clone, Default)]
pub struct Fanout {
    exporters: Vec<Arc<dyn Exporter>>,
}

/// A request prepared for the exporters that take it.
pub struct Prepared {
    deliveries: Vec<(Arc<dyn Exporter>, Delivery)>,
}

impl Fanout {
    /// A fan-out to `exporters`.
    pub fn new(exporters: Vec<Arc<dyn Exporter>>) -> Self {
        Fanout { exporters }
    }

    /// Its exporters.
    pub fn exporters(&self) -> &[Arc<dyn Exporter>] {
        &self.exporters
    }

    /// How many exporters queue what a request produces.
    pub fn queues(&self) -> usize {
        self.exporters.len()
    }

    /// Counts every exporter's memory queue against `budget`.
    pub fn use_budget(&self, budget: &Arc<MemoryBudget>) {
        for e in &self.exporters {
            e.use_budget(budget.clone());
        }
    }

    /// The exporters that take the next request. An exporter that cannot and refuses
    /// ([`OnFull::Refuse`]) refuses the request: its error, before any exporter that would drop
    /// it counts a drop. One that drops is left out, its drop counted.
    pub fn admit(&self) -> Result<Vec<Arc<dyn Exporter>>, PushError> {
        let mut dropped = Vec::new();
        let mut taking = Vec::with_capacity(self.exporters.len());
        for e in &self.exporters {
            match e.admit() {
                Ok(()) => taking.push(e.clone()),
                Err(why) => match e.on_full() {
                    OnFull::Refuse => return Err(why),
                    OnFull::Drop => dropped.push((e, why)),
                },
            }
        }
        for (e, why) in dropped {
            e.count_dropped(&why);
        }
        Ok(taking)
    }

    /// Prepares `batch` for each of `taking`; the first exporter that cannot refuses it.
    pub fn prepare(taking: Vec<Arc<dyn Exporter>>, batch: &Batch<'_>) -> Result<Prepared, PushError> {
        let mut deliveries = Vec::with_capacity(taking.len());
        for e in taking {
            if let Some(d) = e.clone().prepare(batch)? {
                deliveries.push((e, d));
            }
        }
        Ok(Prepared { deliveries })
    }

    /// Stops every exporter, each writing out its queue within `deadline`, all at once.
    pub async fn shutdown(&self, deadline: Duration) {
        futures_util::future::join_all(self.exporters.iter().map(|e| e.shutdown(deadline))).await;
    }
}

impl Prepared {
    /// Queues the request on every exporter at once. An exporter under [`OnFull::Drop`] that
    /// cannot take it after all skips it (counted); any other failure refuses the request (the
    /// first exporter's error, in delivery order).
    pub async fn deliver(self) -> Result<(), PushError> {
        let results = futures_util::future::join_all(self.deliveries.into_iter().map(|(e, d)| async move {
            match (d.await, e.on_full()) {
                (Err(why), OnFull::Drop) => {
                    e.count_dropped(&why);
                    Ok(())
                }
                (r, _) => r,
            }
        }))
        .await;
        results.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmhub_content::ContentPolicy;
    use llmhub_exporters::forward::Original;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// An exporter whose queue is full (`admit` fails) or whose push fails, as told; it writes
    /// down what happened to it.
    struct Probe {
        name: &'static str,
        on_full: OnFull,
        full: bool,
        push_fails: bool,
        dropped: AtomicU32,
        log: Arc<Mutex<Vec<String>>>,
    }

    fn probe(
        name: &'static str,
        on_full: OnFull,
        full: bool,
        push_fails: bool,
        log: &Arc<Mutex<Vec<String>>>,
    ) -> Arc<Probe> {
        Arc::new(Probe {
            name,
            on_full,
            full,
            push_fails,
            dropped: AtomicU32::new(0),
            log: log.clone(),
        })
    }

    fn full(name: &str) -> PushError {
        PushError::Full {
            queue: name.to_owned(),
            bytes: 1,
            limit: 1,
        }
    }

    impl Exporter for Probe {
        fn name(&self) -> &'static str {
            self.name
        }
        fn on_full(&self) -> OnFull {
            self.on_full
        }
        fn admit(&self) -> Result<(), PushError> {
            if self.full {
                Err(full(self.name))
            } else {
                Ok(())
            }
        }
        fn count_dropped(&self, _why: &PushError) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
        fn prepare(self: Arc<Self>, batch: &Batch<'_>) -> Result<Option<Delivery>, PushError> {
            let n = batch.records.len();
            Ok(Some(Box::pin(async move {
                self.log.lock().expect("log").push(format!("{} {n}", self.name));
                if self.push_fails {
                    Err(PushError::Closed(self.name.to_owned()))
                } else {
                    Ok(())
                }
            })))
        }
        fn use_budget(&self, _budget: Arc<MemoryBudget>) {}
        fn problem(&self) -> Option<String> {
            None
        }
        fn shutdown(&self, _deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            Box::pin(async {})
        }
    }

    fn batch(policy: &ContentPolicy) -> Batch<'_> {
        Batch {
            original: Some(Original::Protobuf(&[])),
            records: &[],
            content: policy,
            tenant: None,
        }
    }

    #[tokio::test]
    async fn a_refusing_exporter_refuses_the_request_before_any_drop_is_counted() {
        let log = Arc::default();
        let dropping = probe("forwarder", OnFull::Drop, true, false, &log);
        let refusing = probe("sink", OnFull::Refuse, true, false, &log);
        let fanout = Fanout::new(vec![dropping.clone(), refusing.clone()]);
        let e = fanout.admit().err().expect("refused");
        assert_eq!(e.to_string(), full("sink").to_string());
        assert_eq!(
            dropping.dropped.load(Ordering::SeqCst),
            0,
            "a refused request is not a drop"
        );
    }

    #[tokio::test]
    async fn a_dropping_exporter_is_skipped_and_counted_and_the_others_take_the_request() {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let dropping = probe("forwarder", OnFull::Drop, true, false, &log);
        let sink = probe("sink", OnFull::Refuse, false, false, &log);
        let fanout = Fanout::new(vec![sink.clone(), dropping.clone()]);
        let taking = fanout.admit().expect("admitted");
        assert_eq!(taking.iter().map(|e| e.name()).collect::<Vec<_>>(), ["sink"]);
        assert_eq!(dropping.dropped.load(Ordering::SeqCst), 1);
        let policy = ContentPolicy::default();
        Fanout::prepare(taking, &batch(&policy))
            .expect("prepared")
            .deliver()
            .await
            .expect("delivered");
        assert_eq!(*log.lock().expect("log"), ["sink 0"]);
    }

    #[tokio::test]
    async fn a_failed_push_refuses_unless_its_exporter_drops() {
        let policy = ContentPolicy::default();
        let log = Arc::default();
        let dropping = probe("forwarder", OnFull::Drop, false, true, &log);
        let sink = probe("sink", OnFull::Refuse, false, false, &log);
        let fanout = Fanout::new(vec![sink, dropping.clone()]);
        let taking = fanout.admit().expect("admitted");
        let delivered = Fanout::prepare(taking, &batch(&policy))
            .expect("prepared")
            .deliver()
            .await;
        assert!(delivered.is_ok(), "{delivered:?}");
        assert_eq!(dropping.dropped.load(Ordering::SeqCst), 1);

        let refusing = probe("sink", OnFull::Refuse, false, true, &log);
        let fanout = Fanout::new(vec![refusing, probe("forwarder", OnFull::Drop, false, false, &log)]);
        let taking = fanout.admit().expect("admitted");
        let e = Fanout::prepare(taking, &batch(&policy))
            .expect("prepared")
            .deliver()
            .await
            .expect_err("refused");
        assert_eq!(e.to_string(), PushError::Closed("sink".into()).to_string());
    }
}
