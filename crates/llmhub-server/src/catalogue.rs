//! The catalogue format shared by every component's metrics: one [`MetricDef`] per metric (name,
//! unit, type, attributes, help), which registers the instrument and feeds `docs/metrics.md`.

use prometheus_client::registry::{Metric, Registry, Unit};

/// Instrument type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter (Prometheus adds `_total`).
    Counter,
    /// Histogram.
    Histogram,
    /// A value that goes up and down (queue depth, bytes on disk).
    Gauge,
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// OpenTelemetry name (dotted).
    pub name: &'static str,
    /// UCUM unit.
    pub unit: &'static str,
    /// Instrument type.
    pub kind: Kind,
    /// Attribute keys, OpenTelemetry spelling.
    pub attributes: &'static [&'static str],
    /// What it measures.
    pub help: &'static str,
}

impl MetricDef {
    /// The name Prometheus shows: dots to underscores, unit suffix for seconds, `_total` for counters.
    pub fn prometheus_name(&self) -> String {
        let mut n = self.name.replace('.', "_");
        // Curly-brace units are annotations and are dropped; seconds get their suffix.
        if self.unit == "s" {
            n.push_str("_seconds");
        }
        if self.kind == Kind::Counter {
            n.push_str("_total");
        }
        n
    }
}

/// Registers `metric` under the definition's name (dots become underscores; seconds get their
/// unit suffix).
pub fn register(registry: &mut Registry, def: &MetricDef, metric: impl Metric) {
    let base = def.name.replace('.', "_");
    if def.unit == "s" {
        registry.register_with_unit(base, def.help, Unit::Seconds, metric);
    } else {
        registry.register(base, def.help, metric);
    }
}

/// Declares a metric table and, from the same lines, an enum with one variant per entry in the
/// table's order, so that code registers and selects instruments by variant (an exhaustive
/// `match`), never by the text of their names.
///
/// ```ignore
/// instruments! {
///     /// The sink's instruments.
///     pub enum SinkInstrument in METRICS {
///         RowsWritten => MetricDef { name: "llmhub.postgres.rows.written", .. },
///     }
/// }
/// ```
#[macro_export]
macro_rules! instruments {
    ($(#[$meta:meta])* $vis:vis enum $enum:ident in $table:ident { $($variant:ident => $def:expr,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $enum {
            $(#[allow(missing_docs)] $variant,)*
        }

        impl $enum {
            /// Every instrument, in the table's order.
            pub const ALL: &'static [$enum] = &[$($enum::$variant,)*];

            /// Its entry in the table.
            pub fn def(self) -> &'static $crate::catalogue::MetricDef {
                &$table[self as usize]
            }

            /// Its OpenTelemetry name.
            pub fn name(self) -> &'static str {
                self.def().name
            }
        }

        #[doc = concat!("The table of [`", stringify!($enum), "`], one entry per variant in its order.")]
        $vis static $table: &[$crate::catalogue::MetricDef] = &[$($def,)*];
    };
}
