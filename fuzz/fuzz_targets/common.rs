//! The processor every OTLP target feeds: default configuration, built-in catalog, metrics into a
//! registry nobody scrapes.

use llmhub::config::GenAiProcessor as GenAiConfig;
use llmhub::metrics::Metrics;
use llmhub::processors::genai::GenAiProcessor;
use std::sync::{Arc, OnceLock};

pub fn processor() -> &'static GenAiProcessor {
    static P: OnceLock<GenAiProcessor> = OnceLock::new();
    P.get_or_init(|| {
        let cfg = GenAiConfig::default();
        let matcher = llmhub::processors::pricing::matcher(&cfg.pricing).expect("built-in catalog");
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(Metrics::new(&mut registry, 1000, 100));
        GenAiProcessor::new(&cfg, matcher, metrics)
    })
}
