//! The bundled Grafana dashboards, defined once in code and written as import-ready JSON
//! (`llmhub dashboards --out dashboards/`): panels with their queries, units and descriptions, a
//! grid layout computed so panels never overlap, template variables, links between the dashboards,
//! `__inputs`/`__requires` for import, and `dashboards/README.md` listing every panel.
//!
//! Queries filter only on llmhub's own normalized labels and columns (service, provider, model,
//! environment, tenant), never on an SDK's name, so every emitter's data shows.

mod defs;
mod render;

pub use defs::all;
pub use render::{readme, to_json};

/// Where a panel's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Prometheus datasource scraping llmhub's `/metrics`.
    Prometheus,
    /// A PostgreSQL datasource on a database with the `llm_analytics` extension.
    Postgres,
}

/// How a panel draws its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viz {
    /// Lines over time.
    TimeSeries,
    /// One number.
    Stat,
    /// Rows.
    Table,
    /// Horizontal bars, one per series.
    BarGauge,
}

/// One query of a panel.
#[derive(Debug, Clone)]
pub struct Query {
    /// PromQL or SQL, with Grafana's variables and macros.
    pub expr: String,
    /// Legend (PromQL) — empty for SQL.
    pub legend: &'static str,
}

/// One panel.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title.
    pub title: &'static str,
    /// What the panel answers (shown as the panel description).
    pub description: &'static str,
    /// Drawing.
    pub viz: Viz,
    /// Grafana unit id (`short`, `s`, `currencyUSD`, `percentunit`, `reqps`...).
    pub unit: &'static str,
    /// Data source.
    pub source: Source,
    /// Width in grid columns (of 24).
    pub width: u32,
    /// Height in grid rows.
    pub height: u32,
    /// Queries.
    pub queries: Vec<Query>,
}

/// One dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Stable uid (links and provisioning use it).
    pub uid: &'static str,
    /// File name under `dashboards/`.
    pub file: &'static str,
    /// Title.
    pub title: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Default time range (`now-6h`...).
    pub from: &'static str,
    /// Panels, laid out left to right, top to bottom.
    pub panels: Vec<Panel>,
}

impl Dashboard {
    /// The data sources its panels use.
    pub fn sources(&self) -> Vec<Source> {
        let mut s: Vec<Source> = Vec::new();
        for p in &self.panels {
            if !s.contains(&p.source) {
                s.push(p.source);
            }
        }
        s
    }
}

/// Writes every dashboard and the README into `dir`.
pub fn write(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for d in all() {
        let text = serde_json::to_string_pretty(&to_json(&d)).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(d.file), text + "\n")?;
    }
    std::fs::write(dir.join("README.md"), readme())
}
