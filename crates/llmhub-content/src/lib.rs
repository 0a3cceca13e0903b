//! Conversation content in GenAI spans: which attributes and events carry it in each dialect
//! ([`keys`]), and what happens to it before any exporter sees it ([`ContentPolicy`]).
//!
//! By default content is not captured: every content attribute and content event is removed.
//! With `capture: true` it is kept, after the redaction rules ran over it in order:
//!
//! - a rule matches with a built-in pattern (`email`, `phone`, `card`, `api_key`) or the user's own
//!   regular expression; with neither it matches the whole value;
//! - it applies to content attributes, or to the attributes named in its `keys` (exact keys, or
//!   prefixes ending in `*`) instead;
//! - `mask` replaces each match with `[REDACTED:<name>]`, `hash` with `<name>:sha256:<16 hex>` (of
//!   the salt and the match, so equal values stay joinable), `drop` removes the attribute when
//!   anything matches.
//!
//! No I/O: the exporters apply the verdicts to their own representation of a span.

pub mod keys;

pub use keys::{is_content_event, is_content_key};

use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// `processors.genai.content` in the configuration.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentConfig {
    /// Keep content attributes (after redaction) instead of removing them.
    pub capture: bool,
    /// Redaction rules, applied in order to captured content.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<RedactRule>,
    /// Salt for `hash`: give it as `${env:VAR}`; printed configurations show `<redacted>`.
    #[serde(skip_serializing_if = "String::is_empty", serialize_with = "redacted")]
    pub hash_salt: String,
}

impl std::fmt::Debug for ContentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentConfig")
            .field("capture", &self.capture)
            .field("redact", &self.redact)
            .field("hash_salt", &if self.hash_salt.is_empty() { "" } else { "<redacted>" })
            .finish()
    }
}

fn redacted<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

/// One redaction rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedactRule {
    /// A built-in pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<Builtin>,
    /// The user's own regular expression (Rust `regex` syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Name used in masks and hashes of `pattern` matches (default `pattern`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Attributes the rule applies to instead of the content attributes: exact keys, or prefixes
    /// ending in `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// What to do with a match.
    pub action: Action,
}

/// Built-in patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// E-mail addresses.
    Email,
    /// Telephone numbers: `+` and 8 to 15 digits, or digit groups with separators.
    Phone,
    /// Payment card numbers: 13 to 19 digits (spaces or dashes allowed) passing the Luhn check.
    Card,
    /// API keys and tokens of common providers (OpenAI, Anthropic, AWS, Google, GitHub, Slack,
    /// Hugging Face, GitLab) and `Bearer` tokens.
    ApiKey,
}

impl Builtin {
    fn name(self) -> &'static str {
        match self {
            Builtin::Email => "email",
            Builtin::Phone => "phone",
            Builtin::Card => "card",
            Builtin::ApiKey => "api_key",
        }
    }

    fn regex(self) -> &'static str {
        match self {
            Builtin::Email => r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            Builtin::Phone => {
                r"\+[0-9]{8,15}\b|(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{2,4}\)|\b[0-9]{2,4})[ .-][0-9]{3,4}[ .-][0-9]{3,4}\b"
            }
            Builtin::Card => r"\b[0-9](?:[ -]?[0-9]){12,18}\b",
            Builtin::ApiKey => concat!(
                r"\bsk-(?:proj-|ant-(?:api03-)?|live_|test_)?[A-Za-z0-9_-]{20,}",
                r"|\bAKIA[0-9A-Z]{16}\b",
                r"|\bAIza[0-9A-Za-z_-]{35}",
                r"|\bgh[pousr]_[A-Za-z0-9]{36,}",
                r"|\bxox[abposr]-[A-Za-z0-9-]{10,}",
                r"|\bhf_[A-Za-z0-9]{30,}",
                r"|\bglpat-[A-Za-z0-9_-]{20,}",
                r"|\bBearer\s+[A-Za-z0-9._~+/-]{20,}=*",
            ),
        }
    }
}

/// What a rule does with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Replace each match with `[REDACTED:<name>]`.
    Mask,
    /// Replace each match with `<name>:sha256:<first 16 hex digits>`.
    Hash,
    /// Remove the attribute.
    Drop,
}

struct Rule {
    name: String,
    regex: Option<Regex>,
    luhn: bool,
    /// Skip a match that is part of a longer run of digit groups (a phone pattern inside a card
    /// number or an id).
    standalone: bool,
    keys: Vec<String>,
    action: Action,
}

impl Rule {
    fn applies_to(&self, key: &str) -> bool {
        if self.keys.is_empty() {
            return is_content_key(key);
        }
        self.keys.iter().any(|k| match k.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => k == key,
        })
    }
}

/// What becomes of one string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Kept, possibly redacted.
    Keep(Cow<'a, str>),
    /// The attribute is removed.
    Drop,
}

/// What the redactions of one value came to, for counting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Matches masked or hashed, by rule name.
    pub redacted: Vec<(String, u64)>,
}

impl Tally {
    fn add(&mut self, name: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.redacted.iter_mut().find(|(k, _)| k == name) {
            Some((_, m)) => *m += n,
            None => self.redacted.push((name.to_owned(), n)),
        }
    }
}

/// The compiled content policy.
pub struct ContentPolicy {
    capture: bool,
    rules: Vec<Rule>,
    salt: String,
}

impl std::fmt::Debug for ContentPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentPolicy")
            .field("capture", &self.capture)
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl Default for ContentPolicy {
    /// Content is not captured.
    fn default() -> Self {
        ContentPolicy {
            capture: false,
            rules: Vec::new(),
            salt: String::new(),
        }
    }
}

impl ContentPolicy {
    /// Compiles a configuration; an error names the rule (`redact[i]`) and the problem, under
    /// `path`.
    pub fn new(cfg: &ContentConfig, path: &str) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for (i, r) in cfg.redact.iter().enumerate() {
            let at = format!("{path}.redact[{i}]");
            let (name, source, luhn) = match (r.builtin, &r.pattern) {
                (Some(_), Some(_)) => {
                    problems.push(format!("{at}: give builtin or pattern, not both"));
                    continue;
                }
                (Some(b), None) => (b.name().to_owned(), Some(b.regex().to_owned()), b == Builtin::Card),
                (None, Some(p)) => (
                    r.name.clone().unwrap_or_else(|| "pattern".to_owned()),
                    Some(p.clone()),
                    false,
                ),
                (None, None) => (r.name.clone().unwrap_or_else(|| "value".to_owned()), None, false),
            };
            if source.is_none() && r.keys.is_empty() && r.action == Action::Mask {
                problems.push(format!(
                    "{at}: a rule without builtin or pattern matches whole values; give it keys, or use drop or hash"
                ));
                continue;
            }
            let regex = match source.map(|s| Regex::new(&s)) {
                Some(Err(e)) => {
                    problems.push(format!("{at}.pattern: not a valid regular expression: {e}"));
                    continue;
                }
                Some(Ok(re)) => {
                    if re.is_match("") {
                        problems.push(format!("{at}.pattern: matches the empty string"));
                        continue;
                    }
                    Some(re)
                }
                None => None,
            };
            if let Some(k) = r.keys.iter().find(|k| k.is_empty() || k.as_str() == "*") {
                problems.push(format!(
                    "{at}.keys: {k:?} would match every attribute; name keys or prefixes"
                ));
                continue;
            }
            rules.push(Rule {
                name,
                regex,
                luhn,
                standalone: r.builtin == Some(Builtin::Phone),
                keys: r.keys.clone(),
                action: r.action,
            });
        }
        if !cfg.capture && !cfg.redact.is_empty() {
            problems.push(format!(
                "{path}.redact: rules run on captured content only; set {path}.capture: true or remove them"
            ));
        }
        if problems.is_empty() {
            Ok(ContentPolicy {
                capture: cfg.capture,
                rules,
                salt: cfg.hash_salt.clone(),
            })
        } else {
            Err(problems)
        }
    }

    /// Whether content is kept (after redaction).
    pub fn captures(&self) -> bool {
        self.capture
    }

    /// Whether this policy can change a span: it removes content, or has rules.
    pub fn changes_spans(&self) -> bool {
        !self.capture || !self.rules.is_empty()
    }

    /// Whether an attribute with this key is looked at (removed, or its strings redacted).
    pub fn touches(&self, key: &str) -> bool {
        if !self.capture {
            return is_content_key(key);
        }
        self.rules.iter().any(|r| r.applies_to(key))
    }

    /// Whether a span event with this name is removed whole.
    pub fn drops_event(&self, name: &str) -> bool {
        !self.capture && is_content_event(name)
    }

    /// The verdict on one string value of attribute `key` (a value nested in an array counts as
    /// the attribute's). Matches redacted are added to `tally`.
    pub fn string<'a>(&self, key: &str, value: &'a str, tally: &mut Tally) -> Verdict<'a> {
        if !self.capture {
            return if is_content_key(key) {
                Verdict::Drop
            } else {
                Verdict::Keep(Cow::Borrowed(value))
            };
        }
        let mut out: Cow<'a, str> = Cow::Borrowed(value);
        for rule in self.rules.iter().filter(|r| r.applies_to(key)) {
            let Some(re) = &rule.regex else {
                match rule.action {
                    Action::Drop => return Verdict::Drop,
                    Action::Hash => {
                        tally.add(&rule.name, 1);
                        out = Cow::Owned(self.hashed(&rule.name, &out));
                    }
                    Action::Mask => {
                        tally.add(&rule.name, 1);
                        out = Cow::Owned(format!("[REDACTED:{}]", rule.name));
                    }
                }
                continue;
            };
            let mut n = 0u64;
            let text: &str = &out;
            let replaced = re.replace_all(text, |c: &Captures<'_>| {
                let whole = c.get(0).expect("group 0 always matches");
                let m = whole.as_str();
                if (rule.luhn && !luhn_valid(m)) || (rule.standalone && in_digit_run(text, whole.start(), whole.end()))
                {
                    return m.to_owned();
                }
                n += 1;
                match rule.action {
                    Action::Mask | Action::Drop => format!("[REDACTED:{}]", rule.name),
                    Action::Hash => self.hashed(&rule.name, m),
                }
            });
            if n == 0 {
                continue;
            }
            if rule.action == Action::Drop {
                return Verdict::Drop;
            }
            tally.add(&rule.name, n);
            out = Cow::Owned(replaced.into_owned());
        }
        Verdict::Keep(out)
    }

    fn hashed(&self, name: &str, s: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.salt.as_bytes());
        h.update([0]);
        h.update(s.as_bytes());
        let digest = h.finalize();
        format!("{name}:sha256:{}", hex::encode(&digest[..8]))
    }
}

/// Whether `text[start..end]` continues a run of digit groups: a digit right before or after it,
/// or one separator (space, dash, dot) and then a digit.
fn in_digit_run(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().rev();
    let after = text[end..].chars();
    let touches = |mut it: Box<dyn Iterator<Item = char> + '_>| match it.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some(' ' | '-' | '.') => it.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    };
    touches(Box::new(before)) || touches(Box::new(after))
}

/// The Luhn check of a card number written with optional spaces or dashes.
fn luhn_valid(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests;
