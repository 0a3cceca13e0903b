//! A borrowed, transport-neutral view of one OTLP log record, the input of event reading
//! ([`crate::events`]). Receivers build it from protobuf or JSON without copying strings.

use crate::span::{find, Attribute, Value};

/// One log record, borrowed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogView<'a> {
    /// `time_unix_nano`: when the event happened; 0 when the emitter left it unset.
    pub time_unix_nano: u64,
    /// `observed_time_unix_nano`: when the SDK saw it.
    pub observed_time_unix_nano: u64,
    /// The `event_name` field (OTLP 1.5+); empty when unset.
    pub event_name: &'a str,
    /// The body, when it is a string.
    pub body: Option<&'a str>,
    /// Trace id bytes as received (empty when the record has no trace context).
    pub trace_id: &'a [u8],
    /// Span id bytes as received.
    pub span_id: &'a [u8],
    /// Attributes.
    pub attributes: Vec<Attribute<'a>>,
}

impl<'a> LogView<'a> {
    /// When the event happened: `time_unix_nano`, or the observed time when that is unset (some
    /// SDKs set only the observed time).
    pub fn time(&self) -> u64 {
        if self.time_unix_nano != 0 {
            self.time_unix_nano
        } else {
            self.observed_time_unix_nano
        }
    }

    /// The names the record may go by, most specific first: the `event_name` field, the
    /// `event.name` attribute (the older convention, and the one some emitters fill correctly while
    /// their field holds something else), and a string body (Claude Code names its events there).
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        let attribute = find(&self.attributes, "event.name").and_then(Value::as_str);
        [Some(self.event_name), attribute, self.body]
            .into_iter()
            .flatten()
            .filter(|n| !n.is_empty())
    }

    /// The string value of `key`.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        find(&self.attributes, key).and_then(Value::as_str)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        find(&self.attributes, key)
    }
}
