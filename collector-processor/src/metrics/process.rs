//! The process's own health, under the names every Prometheus client library uses
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...), read from `/proc` at
//! each scrape, and `llmhub_build_info`, which says which llmhub runs.

use super::{register, Kind, MetricDef};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};

/// The process metrics and the build info.
pub static METRICS: &[MetricDef] = &[
    MetricDef { name: "llmhub.build_info", unit: "1", kind: Kind::Gauge, attributes: &["version", "revision"],
        help: "Always 1; its labels say which llmhub runs: the release version and the git revision it was built from (unknown when built outside a checkout)." },
    MetricDef { name: "process.cpu", unit: "s", kind: Kind::Counter, attributes: &[],
        help: "CPU time the process has used, user and system (Linux; read from /proc at each scrape)." },
    MetricDef { name: "process.resident_memory_bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
        help: "Resident memory of the process." },
    MetricDef { name: "process.virtual_memory_bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
        help: "Virtual memory size of the process." },
    MetricDef { name: "process.open_fds", unit: "{file}", kind: Kind::Gauge, attributes: &[],
        help: "Open file descriptors (sockets, queue segments, the dead-letter file)." },
    MetricDef { name: "process.max_fds", unit: "{file}", kind: Kind::Gauge, attributes: &[],
        help: "The open-file limit (soft RLIMIT_NOFILE): connections past it are refused." },
    MetricDef { name: "process.start_time", unit: "s", kind: Kind::Gauge, attributes: &[],
        help: "When the process started, Unix seconds: a change means a restart." },
];

/// Registers the build info (set to 1 now) and the process collector.
pub fn register_all(registry: &mut Registry) {
    let info: Family<Vec<(String, String)>, Gauge> = Family::default();
    info.get_or_create(&vec![
        ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        ("revision".to_owned(), env!("LLMHUB_REVISION").to_owned()),
    ])
    .set(1);
    register(registry, &METRICS[0], info);
    registry.register_collector(Box::new(ProcessCollector));
}

/// One reading of `/proc/self`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU seconds.
    pub cpu_seconds: f64,
    /// Resident set, bytes.
    pub resident_bytes: u64,
    /// Virtual size, bytes.
    pub virtual_bytes: u64,
    /// Start, Unix seconds.
    pub start_time: f64,
    /// Open descriptors.
    pub open_fds: u64,
    /// Soft open-file limit (`None`: unlimited).
    pub max_fds: Option<u64>,
}

impl ProcessStats {
    /// Reads this process's figures; `None` off Linux (or where `/proc` is not mounted).
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let ticks = llmhub_sys::clock_ticks_per_second()?;
        let page = llmhub_sys::page_size()?;
        parse(&stat, &boot, &limits, open_fds, ticks, page)
    }
}

/// The figures from the texts of `/proc/self/stat`, `/proc/stat` and `/proc/self/limits`.
fn parse(stat: &str, boot: &str, limits: &str, open_fds: u64, ticks: u64, page: u64) -> Option<ProcessStats> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: the
    // fields that follow start after the last ')', at field 3 (the state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { f.get(n - 3)?.parse().ok() };
    let (utime, stime, start_ticks) = (field(14)?, field(15)?, field(22)?);
    let (vsize, rss) = (field(23)?, field(24)?);
    let btime: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    let max_fds = if soft == "unlimited" {
        None
    } else {
        Some(soft.parse().ok()?)
    };
    let ticks_f = ticks as f64;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / ticks_f,
        resident_bytes: rss * page,
        virtual_bytes: vsize,
        start_time: btime as f64 + start_ticks as f64 / ticks_f,
        open_fds,
        max_fds,
    })
}

/// Encodes [`ProcessStats`] at each scrape.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = ProcessStats::read() else {
            return Ok(());
        };
        let [_, cpu, resident, virt, open, max, start] = METRICS else {
            return Ok(());
        };
        counter(&mut encoder, cpu, s.cpu_seconds)?;
        gauge(&mut encoder, resident, s.resident_bytes as f64)?;
        gauge(&mut encoder, virt, s.virtual_bytes as f64)?;
        gauge(&mut encoder, open, s.open_fds as f64)?;
        if let Some(m) = s.max_fds {
            gauge(&mut encoder, max, m as f64)?;
        }
        gauge(&mut encoder, start, s.start_time)
    }
}

/// The name and unit a definition is registered under (see [`register`]).
fn descriptor(def: &MetricDef) -> (String, Option<Unit>) {
    let unit = (def.unit == "s").then_some(Unit::Seconds);
    (def.name.replace('.', "_"), unit)
}

fn counter(encoder: &mut DescriptorEncoder, def: &MetricDef, value: f64) -> Result<(), std::fmt::Error> {
    let (name, unit) = descriptor(def);
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(&name, def.help, unit.as_ref(), c.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, def: &MetricDef, value: f64) -> Result<(), std::fmt::Error> {
    let (name, unit) = descriptor(def);
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(&name, def.help, unit.as_ref(), g.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_are_read_field_by_field() {
        // A command name with a space and a parenthesis; utime 250, stime 50 ticks; started 1234
        // ticks after boot; 1 GiB virtual; 2500 resident pages.
        let stat = "4242 (llm hub) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1234 1073741824 2500 18446744073709551615";
        let boot = "cpu  1 2 3\nbtime 1795132800\nprocesses 9\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            1024                 524288               files\n";
        let s = parse(stat, boot, limits, 17, 100, 4096).expect("parses");
        assert_eq!(
            s,
            ProcessStats {
                cpu_seconds: 3.0,
                resident_bytes: 2500 * 4096,
                virtual_bytes: 1_073_741_824,
                start_time: 1_795_132_812.34,
                open_fds: 17,
                max_fds: Some(1024),
            }
        );
        let unlimited = limits.replace("1024                 524288", "unlimited            unlimited");
        assert_eq!(
            parse(stat, boot, &unlimited, 17, 100, 4096).expect("parses").max_fds,
            None
        );
        assert_eq!(parse("4242 (cut", boot, limits, 17, 100, 4096), None);
    }
}
