//! `${env:VAR}` and `${env:VAR:-default}` expansion in string values, as the OpenTelemetry Collector
//! does it. A value that is exactly one reference is re-read as a YAML scalar, so `${env:PORT}` can
//! fill a number. `$$` stands for a literal `$`.

use super::ConfigError;
use serde_yaml_ng::Value;

/// Expands every string in the document in place. `lookup` returns a variable's value.
pub fn expand_env(doc: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    match doc {
        Value::String(s) => {
            if s.contains('$') {
                let whole = is_single_reference(s);
                let expanded = expand_str(s, lookup)?;
                *doc = if whole {
                    serde_yaml_ng::from_str::<Value>(&expanded)
                        .ok()
                        .filter(|v| !matches!(v, Value::Mapping(_) | Value::Sequence(_)))
                        .unwrap_or(Value::String(expanded))
                } else {
                    Value::String(expanded)
                };
            }
            Ok(())
        }
        Value::Sequence(items) => items.iter_mut().try_for_each(|v| expand_env(v, lookup)),
        Value::Mapping(map) => map.iter_mut().try_for_each(|(_, v)| expand_env(v, lookup)),
        Value::Tagged(t) => expand_env(&mut t.value, lookup),
        _ => Ok(()),
    }
}

fn is_single_reference(s: &str) -> bool {
    s.starts_with("${env:") && s.ends_with('}') && s[2..].find('}') == Some(s.len() - 3)
}

/// Expands the references in one string.
pub fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(r) = after.strip_prefix("$$") {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix("${env:") {
            let Some(end) = body.find('}') else {
                return Err(ConfigError::Env(format!(
                    "unterminated reference in {s:?}: expected ${{env:NAME}}"
                )));
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ConfigError::Env(format!(
                    "invalid environment variable name {name:?} in {s:?}: use letters, digits and _, e.g. ${{env:OTLP_PORT}}"
                )));
            }
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(ConfigError::Env(format!(
                        "environment variable {name} is not set (referenced as ${{env:{name}}}); set it or give a default: ${{env:{name}:-value}}"
                    )))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}
