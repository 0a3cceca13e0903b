//! Catalog lint: every period has a source and a date, periods of a model never overlap, units are
//! consistent, names are unique. Run by the tests on the shipped catalog and by
//! `llmhub prices check`.

use crate::catalog::{Catalog, Components, PriceUnit};
use std::collections::HashMap;

/// Every problem of a parsed catalog, one sentence each; empty when the catalog is clean.
pub fn lint(c: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    if c.version.trim().is_empty() {
        problems.push("catalog_version is empty".to_owned());
    }
    let mut names: HashMap<(&str, &str), &str> = HashMap::new();
    for m in &c.models {
        let id = format!("{}/{}", m.provider, m.model);
        if m.provider.is_empty() || m.model.is_empty() {
            problems.push(format!("{id}: provider and model must not be empty"));
        }
        for name in std::iter::once(&m.model).chain(&m.aliases) {
            if let Some(other) = names.insert((m.provider.as_str(), name.as_str()), m.model.as_str()) {
                problems.push(format!("{id}: name {name:?} is also used by {}/{other}", m.provider));
            }
        }
        if m.periods.is_empty() {
            problems.push(format!("{id}: no price period"));
        }
        for (i, p) in m.periods.iter().enumerate() {
            let at = format!("{id} period from {}", p.from);
            if p.source.trim().is_empty() {
                problems.push(format!("{at}: no source"));
            }
            if let Some(to) = p.to {
                if to <= p.from {
                    problems.push(format!("{at}: effective_to {to} is not after effective_from"));
                }
            }
            if let Some(next) = m.periods.get(i + 1) {
                match p.to {
                    None => problems.push(format!("{at}: open-ended but a later period starts {}", next.from)),
                    Some(to) if to > next.from => {
                        problems.push(format!("{at}: overlaps the period starting {} (ends {to})", next.from))
                    }
                    _ => {}
                }
            }
            let all = std::iter::once(&p.base)
                .chain(p.tiers.iter().map(|(_, c)| c))
                .chain(p.service_tiers.values());
            for comps in all {
                check_components(&at, p.unit, comps, &p.base, &mut problems);
            }
            let mut thresholds: Vec<u64> = p.tiers.iter().map(|(n, _)| *n).collect();
            thresholds.dedup();
            if thresholds.len() != p.tiers.len() {
                problems.push(format!("{at}: two tiers share a threshold"));
            }
        }
    }
    problems
}

fn check_components(at: &str, unit: PriceUnit, c: &Components, base: &Components, problems: &mut Vec<String>) {
    let c = c.over(base);
    match unit {
        PriceUnit::PerMillionTokens => {
            if c.input.is_none() && c.output.is_none() {
                problems.push(format!("{at}: per_million_tokens needs an input or output price"));
            }
            if let (Some(read), Some(input)) = (c.cache_read, c.input) {
                if read > input {
                    problems.push(format!(
                        "{at}: cache_read price {} is above the input price {}",
                        read, input
                    ));
                }
            }
        }
        PriceUnit::PerRequest => {
            if c.per_request.is_none() {
                problems.push(format!("{at}: unit per_request needs a per_request price"));
            }
        }
        PriceUnit::PerHour => {}
    }
}
