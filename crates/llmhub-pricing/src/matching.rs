//! Model matching: which catalog entry prices a call, decided predictably and recorded as a rule.
//!
//! Precedence (first hit wins):
//! 1. **user models** from the configuration (private models, fine-tunes, overrides), then the
//!    shipped catalog — each searched with the steps below;
//! 2. an **Azure deployment name** mapped by configuration is replaced by its model first;
//! 3. for each name candidate, in order —
//!    `exact` the name as reported (lower-cased), or an alias;
//!    `prefix` with gateway prefixes (`openai/`, `bedrock/`, `models/`…), an AWS ARN, a Bedrock
//!    cross-region prefix (`us.`, `eu.`, `apac.`, `global.`) removed; then also without a Bedrock
//!    vendor prefix and version (`anthropic.claude-3-haiku-20240307-v1:0` → `claude-3-haiku-20240307`);
//!    `family` with a date snapshot suffix removed (`gpt-4o-2024-08-06` → `gpt-4o`,
//!    `claude-3-5-sonnet@20240620` → `claude-3-5-sonnet`, `gpt-4-0613` → `gpt-4`) —
//!    the name is looked up under the call's provider; when the provider is absent, or is a host
//!    or gateway (`aws.bedrock`, `azure.ai.openai`, `azure.ai.inference`, `gcp.vertex_ai`,
//!    `gcp.gen_ai`, `openrouter`), also under the vendor the name implies (`claude-` → `anthropic`)
//!    and, for Google hosts, under `gcp.gemini`.

use crate::catalog::{Catalog, PricedModel};
use crate::date::Date;
use llmhub_core::provider::provider_from_model;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

/// How a call's model was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// The name or an alias, as reported.
    Exact,
    /// After removing gateway, ARN, region or vendor prefixes.
    Prefix,
    /// After removing a date snapshot suffix.
    Family,
}

impl MatchKind {
    fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Prefix => "prefix",
            MatchKind::Family => "family",
        }
    }
}

/// A match: the entry and the rule that found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Match<'c> {
    /// The priced model.
    pub model: &'c PricedModel,
    /// Human-readable rule, stored on the record, e.g. `family openai/gpt-4o <- gpt-4o-2024-08-06`.
    pub rule: String,
    /// Whether the entry came from the user's configuration.
    pub user: bool,
}

/// Hosts and gateways that serve other vendors' models.
const HOSTS: &[&str] = &[
    "aws.bedrock",
    "azure.ai.openai",
    "azure.ai.inference",
    "gcp.vertex_ai",
    "gcp.gen_ai",
    "openrouter",
];

/// Gateway prefixes removed from model names.
const GATEWAY_PREFIXES: &[&str] = &[
    "openai/",
    "anthropic/",
    "bedrock/",
    "azure/",
    "vertex_ai/",
    "gemini/",
    "google/",
    "mistral/",
    "mistralai/",
    "deepseek/",
    "xai/",
    "x-ai/",
    "cohere/",
    "groq/",
    "together_ai/",
    "models/",
];

/// Bedrock cross-region inference prefixes.
const REGION_PREFIXES: &[&str] = &["us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au."];

/// Bedrock vendor prefixes.
const BEDROCK_VENDORS: &[(&str, &str)] = &[
    ("anthropic.", "anthropic"),
    ("meta.", "meta"),
    ("mistral.", "mistral_ai"),
    ("cohere.", "cohere"),
    ("deepseek.", "deepseek"),
];

/// A catalog with its (provider, name) → entry index.
type Indexed = (Catalog, HashMap<(String, String), usize>);

/// Indexed catalogs, ready to match.
#[derive(Debug)]
pub struct Matcher {
    user: Option<Indexed>,
    shipped: Indexed,
    deployments: BTreeMap<String, String>,
    /// Every provider some catalog prices (read per call; computed once).
    providers: HashSet<String>,
    /// Matches already worked out, by the name and provider as reported.
    memo: Mutex<Memo>,
}

/// Most (provider, model) pairs whose match is remembered; others are worked out every time.
pub const MEMO_MAX: usize = 4096;

/// A remembered match: the entry as (user catalog?, index in its models, rule), `None` when
/// nothing prices the pair.
type Remembered = Option<(bool, usize, String)>;

/// Remembered matches: by model name as reported, then provider.
#[derive(Debug, Default)]
struct Memo {
    by_name: HashMap<String, Vec<(Option<String>, Remembered)>>,
    len: usize,
}

fn index(c: &Catalog) -> HashMap<(String, String), usize> {
    let mut map = HashMap::new();
    for (i, m) in c.models.iter().enumerate() {
        for name in std::iter::once(&m.model).chain(&m.aliases) {
            map.entry((m.provider.clone(), name.clone())).or_insert(i);
        }
    }
    map
}

/// Removes a trailing date snapshot (`-YYYY-MM-DD`, `-YYYYMMDD`, `@YYYYMMDD`) and returns the family
/// name with the snapshot date. Four-digit `-MMDD` suffixes (`gpt-4-0613`) carry no year and are not
/// stripped: those snapshots were often priced apart and must be listed by name.
pub fn strip_date(name: &str) -> Option<(&str, Date)> {
    if !name.is_ascii() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if name.len() > 11 {
        let (head, tail) = name.split_at(name.len() - 11);
        let t = &tail[1..];
        if tail.starts_with('-')
            && t.len() == 10
            && digits(&t[0..4])
            && &t[4..5] == "-"
            && digits(&t[5..7])
            && &t[7..8] == "-"
            && digits(&t[8..10])
        {
            return Date::parse(t).map(|d| (head, d));
        }
    }
    for sep in ['-', '@'] {
        if let Some((head, tail)) = name.rsplit_once(sep) {
            if digits(tail) && tail.len() == 8 && !head.is_empty() {
                let iso = format!("{}-{}-{}", &tail[0..4], &tail[4..6], &tail[6..8]);
                return Date::parse(&iso).map(|d| (head, d));
            }
        }
    }
    None
}

/// Removes gateway prefixes, ARNs and Bedrock region prefixes.
pub fn strip_prefixes(name: &str) -> String {
    let mut n = name;
    if n.starts_with("arn:") {
        n = n.rsplit('/').next().unwrap_or(n);
    }
    loop {
        let before = n;
        for p in GATEWAY_PREFIXES {
            if let Some(rest) = n.strip_prefix(p) {
                n = rest;
            }
        }
        for p in REGION_PREFIXES {
            if let Some(rest) = n.strip_prefix(p) {
                n = rest;
            }
        }
        if n == before {
            break;
        }
    }
    n.to_owned()
}

/// `anthropic.claude-3-haiku-20240307-v1:0` → (`anthropic`, `claude-3-haiku-20240307`).
pub fn strip_bedrock_vendor(name: &str) -> Option<(&'static str, String)> {
    let (vendor, rest) = BEDROCK_VENDORS
        .iter()
        .find_map(|(p, v)| name.strip_prefix(p).map(|r| (*v, r)))?;
    let rest = match rest.rsplit_once("-v") {
        Some((head, ver)) if ver.split(':').all(|x| x.bytes().all(|b| b.is_ascii_digit())) => head,
        _ => rest.split(':').next().unwrap_or(rest),
    };
    Some((vendor, rest.to_owned()))
}

impl Matcher {
    /// A matcher over the shipped catalog, optional user models and Azure deployment names.
    pub fn new(shipped: Catalog, user: Option<Catalog>, deployments: BTreeMap<String, String>) -> Self {
        let shipped_idx = index(&shipped);
        let providers = shipped
            .models
            .iter()
            .chain(user.iter().flat_map(|u| &u.models))
            .map(|m| m.provider.clone())
            .collect();
        Matcher {
            providers,
            user: user.map(|u| {
                let i = index(&u);
                (u, i)
            }),
            shipped: (shipped, shipped_idx),
            deployments: deployments
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_ascii_lowercase()))
                .collect(),
            memo: Mutex::new(Memo::default()),
        }
    }

    /// The shipped catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.shipped.0
    }

    /// Finds the entry pricing `model` reported under `provider`. The answer depends on nothing
    /// else, so it is worked out once per pair (for up to [`MEMO_MAX`] pairs) and remembered.
    pub fn find(&self, provider: Option<&str>, model: &str) -> Option<Match<'_>> {
        let catalog = |user: bool| match (&self.user, user) {
            (Some((u, _)), true) => u,
            _ => &self.shipped.0,
        };
        let memo = || self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        let known = memo().by_name.get(model).and_then(|list| {
            list.iter()
                .find(|(p, _)| p.as_deref() == provider)
                .map(|(_, f)| f.clone())
        });
        if let Some(found) = known {
            return found.map(|(user, i, rule)| Match {
                model: &catalog(user).models[i],
                rule,
                user,
            });
        }
        // Worked out without the lock held, so other threads' remembered answers never wait on it.
        let found = self.find_uncached(provider, model);
        let entry = found.as_ref().and_then(|m| {
            let i = catalog(m.user).models.iter().position(|x| std::ptr::eq(x, m.model))?;
            Some((m.user, i, m.rule.clone()))
        });
        let mut memo = memo();
        let Memo { by_name, len } = &mut *memo;
        if *len < MEMO_MAX {
            let list = by_name.entry(model.to_owned()).or_default();
            // Another thread may have remembered the same answer meanwhile.
            if !list.iter().any(|(p, _)| p.as_deref() == provider) {
                list.push((provider.map(str::to_owned), entry));
                *len += 1;
            }
        }
        found
    }

    fn find_uncached(&self, provider: Option<&str>, model: &str) -> Option<Match<'_>> {
        let mut name = model.trim().to_ascii_lowercase();
        let mut deployment = None;
        let mapped = self
            .deployments
            .get(&name)
            .or_else(|| self.deployments.get(&strip_prefixes(&name)));
        if let Some(mapped) = mapped {
            deployment = Some(name.clone());
            name = mapped.clone();
        }
        let candidates = candidates(&name);
        // A provider no catalog knows (a framework name, a self-hosted gateway) is treated like a
        // host: the vendor the model name implies is searched too.
        let providers = providers_for(
            provider,
            provider.is_some_and(|p| !self.providers.contains(p)),
            &candidates,
        );
        let catalogs = self
            .user
            .iter()
            .map(|c| (true, c))
            .chain(std::iter::once((false, &self.shipped)));
        for (user, (catalog, idx)) in catalogs {
            for (kind, cand, snapshot) in &candidates {
                let by_provider = providers
                    .iter()
                    .find_map(|p| idx.get(&(p.clone(), cand.clone())).copied());
                // User models are explicit: their name alone identifies them, whatever provider the
                // span reports (a vLLM server says `openai`).
                let by_name = || {
                    user.then(|| {
                        catalog
                            .models
                            .iter()
                            .position(|m| &m.model == cand || m.aliases.contains(cand))
                    })
                    .flatten()
                };
                let Some(i) = by_provider.or_else(by_name) else {
                    continue;
                };
                let m = &catalog.models[i];
                // A dated snapshot older than the family's first price is another, older model.
                if let (Some(day), Some(first)) = (snapshot, m.periods.first()) {
                    if *day < first.from {
                        continue;
                    }
                }
                let mut rule = format!("{} {}/{}", kind.as_str(), m.provider, m.model);
                if model.trim() != m.model {
                    rule.push_str(&format!(" <- {}", model.trim()));
                }
                if let Some(d) = &deployment {
                    rule.push_str(&format!(" (azure deployment {d})"));
                }
                if user {
                    rule.insert_str(0, "user ");
                }
                return Some(Match { model: m, rule, user });
            }
        }
        None
    }
}

/// Name candidates in precedence order: the kind of match, the name, and for a family match the
/// snapshot date that was removed.
fn candidates(name: &str) -> Vec<(MatchKind, String, Option<Date>)> {
    let mut out: Vec<(MatchKind, String, Option<Date>)> = vec![(MatchKind::Exact, name.to_owned(), None)];
    let stripped = strip_prefixes(name);
    let push = |out: &mut Vec<(MatchKind, String, Option<Date>)>, k: MatchKind, n: String, d: Option<Date>| {
        if !n.is_empty() && !out.iter().any(|(_, x, _)| *x == n) {
            out.push((k, n, d));
        }
    };
    push(&mut out, MatchKind::Prefix, stripped.clone(), None);
    if let Some((_, bare)) = strip_bedrock_vendor(&stripped) {
        push(&mut out, MatchKind::Prefix, bare, None);
    }
    let snapshots: Vec<(String, Date)> = out
        .iter()
        .filter_map(|(_, n, _)| strip_date(n).map(|(head, d)| (head.to_owned(), d)))
        .collect();
    for (n, d) in snapshots {
        push(&mut out, MatchKind::Family, n, Some(d));
    }
    out
}

/// Providers to look a name up under, in order.
fn providers_for(
    provider: Option<&str>,
    unknown: bool,
    candidates: &[(MatchKind, String, Option<Date>)],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(p) = provider {
        out.push(p.to_owned());
    }
    let host = unknown || provider.is_none_or(|p| HOSTS.contains(&p));
    if host {
        for (_, n, _) in candidates {
            let vendor = strip_bedrock_vendor(n)
                .map(|(v, _)| v)
                .or_else(|| provider_from_model(n));
            if let Some(v) = vendor {
                if !out.iter().any(|x| x == v) {
                    out.push(v.to_owned());
                }
            }
        }
        if matches!(provider, Some("gcp.vertex_ai" | "gcp.gen_ai") | None) || out.iter().any(|p| p == "gcp.gen_ai") {
            for p in ["gcp.gemini", "gcp.vertex_ai"] {
                if !out.iter().any(|x| x == p) {
                    out.push(p.to_owned());
                }
            }
        }
        if provider == Some("azure.ai.openai") && !out.iter().any(|x| x == "openai") {
            out.push("openai".to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_dates_prefixes_and_vendors() {
        let day = |s: &str| Date::parse(s).unwrap();
        assert_eq!(strip_date("gpt-4o-2024-08-06"), Some(("gpt-4o", day("2024-08-06"))));
        assert_eq!(
            strip_date("claude-3-5-sonnet-20241022"),
            Some(("claude-3-5-sonnet", day("2024-10-22")))
        );
        assert_eq!(
            strip_date("claude-3-5-sonnet@20240620"),
            Some(("claude-3-5-sonnet", day("2024-06-20")))
        );
        assert_eq!(strip_date("gpt-4-0613"), None, "no year: priced by name only");
        assert_eq!(strip_date("gpt-4o"), None);
        assert_eq!(strip_date("gemini-2.5-flash"), None);
        assert_eq!(strip_date("model-2024-99-99"), None);
        // Multibyte characters never split (a panic here would kill a request).
        assert_eq!(strip_date("aé0123456789"), None);
        assert_eq!(strip_date("é-2024-08-06"), None);
        assert_eq!(strip_prefixes("é/ü"), "é/ü");
        assert_eq!(strip_prefixes("openai/gpt-4o"), "gpt-4o");
        assert_eq!(
            strip_prefixes("us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
            "anthropic.claude-3-7-sonnet-20250219-v1:0"
        );
        assert_eq!(
            strip_prefixes(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0"
            ),
            "anthropic.claude-3-haiku-20240307-v1:0"
        );
        assert_eq!(
            strip_bedrock_vendor("anthropic.claude-3-haiku-20240307-v1:0"),
            Some(("anthropic", "claude-3-haiku-20240307".to_owned()))
        );
        assert_eq!(
            strip_bedrock_vendor("meta.llama3-1-70b-instruct-v1:0"),
            Some(("meta", "llama3-1-70b-instruct".to_owned()))
        );
    }

    #[test]
    fn remembered_matches_are_the_matches_worked_out() {
        let shipped = crate::embedded().expect("catalog");
        let deployments = BTreeMap::from([("prod-gpt4o".to_owned(), "gpt-4o".to_owned())]);
        let m = Matcher::new(shipped.clone(), None, deployments);
        let mut names: Vec<String> = shipped.models.iter().take(40).map(|x| x.model.clone()).collect();
        names.extend(
            [
                "gpt-4o-2024-08-06",
                "openai/gpt-4o-mini",
                "us.anthropic.claude-3-5-haiku-20241022-v1:0",
                "prod-gpt4o",
                " GPT-4o ",
                "no-such-model",
                "",
            ]
            .map(str::to_owned),
        );
        names.sort();
        names.dedup();
        let providers = [None, Some("openai"), Some("anthropic"), Some("aws.bedrock"), Some("x")];
        for _ in 0..2 {
            for n in &names {
                for p in providers {
                    let (a, b) = (m.find(p, n), m.find_uncached(p, n));
                    assert_eq!(a, b, "{p:?} {n:?}");
                }
            }
        }
        assert!(names.iter().any(|n| m.find(Some("openai"), n).is_some()));
        assert_eq!(m.memo.lock().unwrap().len, names.len() * providers.len());
    }

    #[test]
    fn the_memo_is_bounded() {
        let m = Matcher::new(crate::embedded().expect("catalog"), None, BTreeMap::new());
        for i in 0..MEMO_MAX + 10 {
            assert_eq!(m.find(Some("openai"), &format!("unknown-{i}")), None);
        }
        assert_eq!(m.memo.lock().unwrap().len, MEMO_MAX);
        assert!(m.find(Some("openai"), "gpt-4o").is_some());
    }
}
