//! The OTLP push side of the metrics state: one OpenTelemetry SDK instrument per catalogue entry
//! (same name, unit, description and histogram buckets), fed with the same admitted labels as the
//! Prometheus family, exported by the meter provider from [`llmhub_exporters::otlp_metrics`].

use super::cardinality::Labels;
use super::{Instrument, Kind};
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use std::collections::HashMap;

/// Counters whose values are fractional (US dollars).
const FRACTIONAL: &[Instrument] = &[Instrument::CostUsd, Instrument::SdkReportedCost];

/// The mirror instruments and their provider.
pub struct OtelMirror {
    provider: SdkMeterProvider,
    counters: HashMap<Instrument, Counter<u64>>,
    fractional: HashMap<Instrument, Counter<f64>>,
    histograms: HashMap<Instrument, Histogram<f64>>,
    /// Prometheus label key → OpenTelemetry attribute key (`gen_ai_request_model` →
    /// `gen_ai.request.model`).
    keys: HashMap<String, &'static str>,
}

impl OtelMirror {
    /// Creates an instrument for every one of `instruments`; `buckets` gives a histogram's
    /// boundaries.
    pub fn new(
        provider: SdkMeterProvider,
        instruments: &[Instrument],
        buckets: impl Fn(Instrument) -> Vec<f64>,
    ) -> OtelMirror {
        let meter = provider.meter("llmhub");
        let mut m = OtelMirror {
            provider: provider.clone(),
            counters: HashMap::new(),
            fractional: HashMap::new(),
            histograms: HashMap::new(),
            keys: HashMap::new(),
        };
        for &i in instruments {
            let def = i.def();
            for a in def.attributes {
                m.keys.insert(a.replace('.', "_"), a);
            }
            match def.kind {
                Kind::Counter if FRACTIONAL.contains(&i) => {
                    let c = meter
                        .f64_counter(def.name)
                        .with_unit(def.unit)
                        .with_description(def.help)
                        .build();
                    m.fractional.insert(i, c);
                }
                Kind::Counter => {
                    let c = meter
                        .u64_counter(def.name)
                        .with_unit(def.unit)
                        .with_description(def.help)
                        .build();
                    m.counters.insert(i, c);
                }
                Kind::Histogram => {
                    let h = meter
                        .f64_histogram(def.name)
                        .with_unit(def.unit)
                        .with_description(def.help)
                        .with_boundaries(buckets(i))
                        .build();
                    m.histograms.insert(i, h);
                }
                Kind::Gauge => {}
            }
        }
        m
    }

    fn attributes(&self, labels: &Labels) -> Vec<KeyValue> {
        labels
            .iter()
            .map(|(k, v)| {
                let key = self.keys.get(*k).copied().unwrap_or(k);
                KeyValue::new(key, v.clone())
            })
            .collect()
    }

    /// Adds to a counter.
    pub fn add(&self, metric: Instrument, labels: &Labels, n: u64) {
        if let Some(c) = self.counters.get(&metric) {
            c.add(n, &self.attributes(labels));
        }
    }

    /// Adds to a fractional counter.
    pub fn add_f(&self, metric: Instrument, labels: &Labels, v: f64) {
        if let Some(c) = self.fractional.get(&metric) {
            c.add(v, &self.attributes(labels));
        }
    }

    /// Records into a histogram.
    pub fn record(&self, metric: Instrument, labels: &Labels, v: f64) {
        if let Some(h) = self.histograms.get(&metric) {
            h.record(v, &self.attributes(labels));
        }
    }

    /// Exports what is pending and stops the periodic export.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "final OTLP metrics export failed");
        }
        let _ = self.provider.shutdown();
    }
}
