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
    /// Columns (fields) drawn otherwise than the panel's defaults.
    pub fields: Vec<Field>,
}

/// One column (field) of a panel drawn its own way: a unit of its own (a count in a table of
/// seconds), thresholds that color it, a link out, a band.
#[derive(Debug, Clone, Default)]
pub struct Field {
    /// The column's name in the query's result.
    pub name: &'static str,
    /// Its unit, if not the panel's.
    pub unit: Option<&'static str>,
    /// Colors from each value up (`(value, color)`, the first from minus infinity): the cell or
    /// stat turns that color.
    pub thresholds: Vec<(f64, &'static str)>,
    /// A link on each value: (title, URL with Grafana's `${__value.raw}` and variables).
    pub link: Option<(&'static str, &'static str)>,
    /// Fill the area between this series and the named one (an interval as a band).
    pub fill_to: Option<&'static str>,
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

/// SQL that fills the `llm_analytics` rollups (not `llm_calls`) of a fresh database with `days`
/// days up to now at the equivalent of `calls_per_day` model calls per day: 3 tenants × 3 services
/// × 2 environments × 6 models per hour, quantile summaries of 500 values each, each hour's 100
/// costliest traces and conversations per tenant, agent runs and a runaway loop per tenant and
/// day, calls by outcome (stop, length, a rate-limit error), and stored budgets (all tenants,
/// each tenant, one service and model). For the dashboards' speed benchmark and plan test: the
/// rollups a month of real traffic would leave, without inserting its raw rows.
pub fn synthetic_rollups_sql(days: u32, calls_per_day: u64) -> String {
    let per_hour = calls_per_day / 24 / 108;
    format!(
        "CREATE TEMP TABLE syn_groups AS
         SELECT t.tenant, s.service, e.env, m.provider, m.model
           FROM unnest(ARRAY['acme', 'globex', 'initech']) t(tenant),
                unnest(ARRAY['chat-api', 'search', 'agent-runner']) s(service),
                unnest(ARRAY['prod', 'staging']) e(env),
                (VALUES ('openai', 'gpt-4o'), ('openai', 'gpt-4o-mini'), ('openai', 'o3'), ('anthropic', 'claude-sonnet-4-5'),
                        ('anthropic', 'claude-haiku-4-5'), ('google', 'gemini-2.5-pro')) m(provider, model);
         CREATE TEMP TABLE syn_summaries AS
         SELECT g.model, quantile_summary_agg(exp(-0.5 + 0.9 * sqrt(-2 * ln(random() + 1e-9)) * cos(2 * pi() * random()))) AS d,
                quantile_summary_agg(0.05 + random() * 2) AS ttft, quantile_summary_agg(20 + random() * 80) AS tps,
                quantile_summary_agg(500 + random() * 3000) AS tok
           FROM (SELECT DISTINCT model FROM syn_groups) g, generate_series(1, 500) GROUP BY g.model;
         CREATE TEMP TABLE syn_hours AS
         SELECT h FROM generate_series(date_trunc('hour', now(), 'UTC') - interval '{days} days', date_trunc('hour', now(), 'UTC'), interval '1 hour') h;
         INSERT INTO llm_rollup_1h
         SELECT h, g.tenant, g.service, g.env, g.provider, g.model, 'chat', 'model_call', {per_hour}, {per_hour} / 50, 0, 0, {per_hour} * 1200,
                {per_hour} * 300, 0, 0, {per_hour} * 400, 0, {per_hour} * 0.004, {per_hour} * 1.5, s.d, s.ttft, s.tps, s.tok
           FROM syn_hours, syn_groups g JOIN syn_summaries s USING (model);
         INSERT INTO llm_rollup_1m
         SELECT m, g.tenant, g.service, g.env, g.provider, g.model, 'chat', 'model_call', {per_hour} / 60 + 1, ({per_hour} / 60 + 1) / 50, 0, 0,
                ({per_hour} / 60 + 1) * 1200, 0, 0, 0, ({per_hour} / 60 + 1) * 400, 0, ({per_hour} / 60 + 1) * 0.004, 1.5, s.d, s.ttft, s.tps, s.tok
           FROM generate_series(date_trunc('minute', now(), 'UTC') - interval '2 hours', date_trunc('minute', now(), 'UTC'), interval '1 minute') m,
                syn_groups g JOIN syn_summaries s USING (model);
         INSERT INTO llm_rollup_1d
         SELECT dd.day, g.tenant, g.service, g.env, g.provider, g.model, 'chat', 'model_call', {per_hour} * 24, {per_hour} * 24 / 50, 0, 0,
                {per_hour} * 24 * 1200, 0, 0, 0, {per_hour} * 24 * 400, 0, {per_hour} * 24 * 0.004, {per_hour} * 36, s.d, s.ttft, s.tps, s.tok
           FROM generate_series(date_trunc('day', now(), 'UTC') - interval '{days} days', date_trunc('day', now(), 'UTC'), interval '24 hours') dd(day),
                syn_groups g JOIN syn_summaries s USING (model);
         INSERT INTO llm_rollup_top_traces_1h
         SELECT h, decode(md5(h::text || t || r), 'hex'), t, 'chat-api', 'prod', h, 5, 0.01 + r * 0.001
           FROM syn_hours, unnest(ARRAY['acme', 'globex', 'initech']) t, generate_series(1, 100) r;
         INSERT INTO llm_rollup_top_conversations_1h
         SELECT h, 'conv-' || md5(h::text || t || r), t, 'chat-api', 'prod', h, 12, 0.02 + r * 0.001
           FROM syn_hours, unnest(ARRAY['acme', 'globex', 'initech']) t, generate_series(1, 100) r;
         INSERT INTO llm_rollup_agents_1h
         SELECT h, t, 'agent-runner', 'prod', a, 40, 160, 9, 240, 14, 1.2
           FROM syn_hours, unnest(ARRAY['acme', 'globex', 'initech']) t, unnest(ARRAY['planner', 'researcher', 'support-agent']) a;
         INSERT INTO llm_agent_runaways
         SELECT h, decode(md5('run' || h::text || t), 'hex'), decode(substr(md5(h::text || t), 1, 16), 'hex'), t, 'agent-runner', 'prod',
                'researcher', 12, 30, 0.9
           FROM syn_hours, unnest(ARRAY['acme', 'globex', 'initech']) t WHERE extract(hour FROM h) = 12;
         INSERT INTO llm_rollup_outcomes_1h
         SELECT h, g.tenant, g.service, g.env, g.provider, g.model, 'model_call', o.status, o.err, o.reason,
                ({per_hour} * o.share)::bigint, ({per_hour} * o.share * 400)::bigint, {per_hour} * o.share * 0.004
           FROM syn_hours, syn_groups g,
                (VALUES ('ok', NULL, 'stop', 0.9), ('ok', NULL, 'length', 0.08), ('error', '429', NULL, 0.02)) o(status, err, reason, share);
         SELECT llm_set_budget(100000), llm_set_budget(40000, 'acme'), llm_set_budget(40000, 'globex'),
                llm_set_budget(40000, 'initech'), llm_set_budget(5000, 'acme', 'chat-api', 'gpt-4o');
         ANALYZE llm_rollup_1m; ANALYZE llm_rollup_1h; ANALYZE llm_rollup_1d; ANALYZE llm_rollup_top_traces_1h;
         ANALYZE llm_rollup_top_conversations_1h; ANALYZE llm_rollup_agents_1h; ANALYZE llm_agent_runaways; ANALYZE llm_rollup_outcomes_1h;"
    )
}

/// RFC 3339 (UTC) of Unix seconds, as Grafana writes times into SQL macros.
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d) = llmhub_core::timefmt::civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Expands Grafana's PostgreSQL macros (`$__timeFilter`, `$__timeGroupAlias`, `$__timeFrom()`,
/// `$__timeTo()`) as Grafana does, with every variable at its default ([`SQL_VARIABLES`]: the
/// filters at "All", the budget at 1000, the objective at 0.99), for `from..to` (Unix seconds).
/// For tests and benchmarks.
pub fn expand_sql(sql: &str, from: u64, to: u64) -> Result<String, String> {
    expand_sql_selecting(sql, from, to, &[])
}

/// Every template variable the SQL panels use, with its default value ("All" for the filters).
pub const SQL_VARIABLES: &[(&str, &str)] = &[
    ("tenant", ".*"),
    ("service", ".*"),
    ("provider", ".*"),
    ("model", ".*"),
    ("environment", ".*"),
    ("budget", "1000"),
    ("objective", "0.99"),
];

/// [`expand_sql`] with one value selected for some variables (`(name, value)`), formatted as
/// Grafana formats a single selected value: the `regex` format escapes the regex metacharacters,
/// `sqlstring` quotes it as an SQL string literal (quotes doubled), `raw` inserts it as is.
pub fn expand_sql_selecting(sql: &str, from: u64, to: u64, selected: &[(&str, &str)]) -> Result<String, String> {
    let mut s = sql.to_owned();
    // Selected values go in last, through placeholders, so the check for unexpanded variables
    // below sees the query text, not the values.
    let mut values = Vec::new();
    for &(v, default) in SQL_VARIABLES {
        let value = selected.iter().find(|(name, _)| *name == v).map(|(_, value)| *value);
        // Grafana inserts the custom "All" value as is, whatever the format.
        let all = value.is_none() && default == ".*";
        let value = value.unwrap_or(default);
        let formatted = [
            (
                "regex",
                if all {
                    value.to_owned()
                } else {
                    grafana_regex_escape(value)
                },
            ),
            (
                "sqlstring",
                if all {
                    value.to_owned()
                } else {
                    grafana_sqlstring(value)
                },
            ),
            ("raw", value.to_owned()),
        ];
        for (format, value) in formatted {
            let placeholder = format!("\u{1}{}\u{1}", values.len());
            s = s.replace(&format!("${{{v}:{format}}}"), &placeholder);
            values.push((placeholder, value));
        }
        // `$name` without a format: Grafana inserts a single value as is.
        let placeholder = format!("\u{1}{}\u{1}", values.len());
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        let bare = format!("${v}");
        while let Some(i) = rest.find(&bare) {
            let after = &rest[i + bare.len()..];
            out.push_str(&rest[..i]);
            if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                out.push_str(&bare);
            } else {
                out.push_str(&placeholder);
            }
            rest = after;
        }
        out.push_str(rest);
        s = out;
        values.push((placeholder, value.to_owned()));
    }
    s = s.replace("$__timeFrom()", &format!("'{}'", rfc3339(from)));
    s = s.replace("$__timeTo()", &format!("'{}'", rfc3339(to)));
    let unclosed = |m: &str| format!("{m} without its closing parenthesis");
    while let Some(i) = s.find("$__timeFilter(") {
        let end = i + s[i..].find(')').ok_or_else(|| unclosed("$__timeFilter("))?;
        let col = s[i + 14..end].trim().to_owned();
        s.replace_range(
            i..=end,
            &format!("{col} BETWEEN '{}' AND '{}'", rfc3339(from), rfc3339(to)),
        );
    }
    while let Some(i) = s.find("$__timeGroupAlias(") {
        let end = i + s[i..].find(')').ok_or_else(|| unclosed("$__timeGroupAlias("))?;
        let args: Vec<String> = s[i + 18..end].split(',').map(|a| a.trim().to_owned()).collect();
        let secs = match args.get(1).map(|a| a.trim_matches('\'')) {
            Some("1m") => 60,
            Some("1h") => 3600,
            Some("1d") => 86_400,
            other => {
                return Err(format!(
                    "$__timeGroupAlias interval {other:?} is not one of '1m', '1h', '1d'"
                ))
            }
        };
        s.replace_range(
            i..=end,
            &format!("floor(extract(epoch from {})/{secs})*{secs} AS \"time\"", args[0]),
        );
    }
    // A `$` left before a name or a brace is a variable or macro not expanded (a regex anchor `$`
    // is followed by a parenthesis or quote, a dollar quote `$$` by the value it quotes).
    let b = s.as_bytes();
    if s.contains("${")
        || s.contains("$__")
        || (1..b.len()).any(|i| b[i - 1] == b'$' && (i < 2 || b[i - 2] != b'$') && b[i].is_ascii_alphabetic())
    {
        return Err(format!("unexpanded variable or macro in:\n{s}"));
    }
    for (placeholder, value) in values {
        s = s.replace(&placeholder, &value);
    }
    Ok(s)
}

/// Grafana's `sqlstring` format of one value: in single quotes, each quote doubled.
fn grafana_sqlstring(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Grafana's `regex` format of one value: the regex metacharacters escaped with a backslash.
fn grafana_regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        if "\\^$*+?.()|[]{}/".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
