//! Dashboards as Grafana JSON (schema version 39, Grafana 10.4 and later) and the README table.

use super::{all, Dashboard, Panel, Source, Viz};
use serde_json::{json, Value};

/// Grafana plugin id of each source.
fn plugin(s: Source) -> &'static str {
    match s {
        Source::Prometheus => "prometheus",
        Source::Postgres => "grafana-postgresql-datasource",
    }
}

/// The datasource template variable of each source.
pub(crate) fn ds_var(s: Source) -> &'static str {
    match s {
        Source::Prometheus => "prometheus",
        Source::Postgres => "postgres",
    }
}

fn input_name(s: Source) -> &'static str {
    match s {
        Source::Prometheus => "DS_PROMETHEUS",
        Source::Postgres => "DS_POSTGRES",
    }
}

fn viz_id(v: Viz) -> (&'static str, &'static str) {
    match v {
        Viz::TimeSeries => ("timeseries", "Time series"),
        Viz::Stat => ("stat", "Stat"),
        Viz::Table => ("table", "Table"),
        Viz::BarGauge => ("bargauge", "Bar gauge"),
    }
}

fn datasource(s: Source) -> Value {
    json!({ "type": plugin(s), "uid": format!("${{{}}}", ds_var(s)) })
}

/// Template variables: the data sources, then the filters the queries use.
/// Whether a panel's links use the variable `var` (written `${var}`), which the dashboard then
/// needs.
fn links_use(d: &Dashboard, var: &str) -> bool {
    let written = format!("${{{var}}}");
    d.panels.iter().any(|p| {
        p.fields
            .iter()
            .any(|f| f.link.is_some_and(|(_, url)| url.contains(&written)))
    })
}

fn variables(d: &Dashboard) -> Vec<Value> {
    let sources = d.sources();
    let mut vars: Vec<Value> = sources
        .iter()
        .map(|s| {
            json!({
                "name": ds_var(*s),
                "label": match s { Source::Prometheus => "Prometheus", Source::Postgres => "PostgreSQL" },
                "type": "datasource",
                "query": plugin(*s),
                "current": { "text": format!("${{{}}}", input_name(*s)), "value": format!("${{{}}}", input_name(*s)) },
                "hide": 0,
                "refresh": 1,
                "options": [],
            })
        })
        .collect();
    let text: String = d
        .panels
        .iter()
        .flat_map(|p| p.queries.iter().map(|q| q.expr.as_str()))
        .collect();
    // Filter variables: from PostgreSQL when the dashboard has it (it knows tenants), else from
    // Prometheus labels. "All" is ".*", which Grafana inserts as is: a regex in PromQL, compared as
    // a dollar-quoted string in SQL (defs.rs `var_sql`).
    let filters: [(&str, &str, &str, &str); 5] = [
        (
            "tenant",
            "Tenant",
            "label_values(llmhub_requests_total, llmhub_tenant)",
            "SELECT DISTINCT tenant FROM llm_rollup_1d WHERE tenant IS NOT NULL ORDER BY 1",
        ),
        (
            "service",
            "Service",
            "label_values(llmhub_requests_total, service_name)",
            "SELECT DISTINCT service_name FROM llm_rollup_1d ORDER BY 1",
        ),
        (
            "provider",
            "Provider",
            "label_values(llmhub_requests_total, gen_ai_provider_name)",
            "SELECT DISTINCT provider FROM llm_rollup_1d WHERE provider IS NOT NULL ORDER BY 1",
        ),
        (
            "model",
            "Model",
            "label_values(llmhub_requests_total, gen_ai_request_model)",
            "SELECT DISTINCT model FROM llm_rollup_1d WHERE model IS NOT NULL ORDER BY 1",
        ),
        (
            "environment",
            "Environment",
            "label_values(llmhub_requests_total, deployment_environment_name)",
            "SELECT DISTINCT environment FROM llm_rollup_1d WHERE environment IS NOT NULL ORDER BY 1",
        ),
    ];
    for (name, label, promql, sql) in filters {
        if !text.contains(&format!("${name}")) && !text.contains(&format!("${{{name}")) {
            continue;
        }
        let (source, query) = if sources.contains(&Source::Postgres) {
            (Source::Postgres, json!(sql))
        } else {
            (
                Source::Prometheus,
                json!({ "query": promql, "refId": "PrometheusVariableQueryEditor-VariableQuery" }),
            )
        };
        vars.push(json!({
            "name": name,
            "label": label,
            "type": "query",
            "datasource": datasource(source),
            "query": query,
            "multi": true,
            "includeAll": true,
            "allValue": ".*",
            "current": { "text": "All", "value": "$__all" },
            "refresh": 2,
            "sort": 1,
            "hide": 0,
            "options": [],
        }));
    }
    if text.contains("${budget") {
        vars.push(json!({
            "name": "budget", "label": "Monthly budget (USD)", "type": "textbox", "query": "1000",
            "current": { "text": "1000", "value": "1000" }, "hide": 0, "options": [],
        }));
    }
    let textbox = |name: &str, label: &str, value: &str| {
        json!({
            "name": name, "label": label, "type": "textbox", "query": value,
            "current": { "text": value, "value": value }, "hide": 0, "options": [],
        })
    };
    if links_use(d, "trace_url") {
        vars.push(textbox(
            "trace_url",
            "Trace URL (the trace id is appended)",
            "http://localhost:16686/trace/",
        ));
    }
    if links_use(d, "model_url") {
        // Jaeger's search for the gen_ai.request.model tag: {"gen_ai.request.model":"<model>"}.
        vars.push(textbox(
            "model_url",
            "Model search URL (before the model name)",
            "http://localhost:16686/search?limit=20&lookback=1h&tags=%7B%22gen_ai.request.model%22%3A%22",
        ));
        vars.push(textbox(
            "model_url_end",
            "Model search URL (after the model name)",
            "%22%7D",
        ));
    }
    if text.contains("${objective") {
        vars.push(json!({
            "name": "objective", "label": "Success objective", "type": "custom",
            "query": "0.99,0.995,0.999", "current": { "text": "0.99", "value": "0.99" }, "hide": 0,
            "multi": false, "includeAll": false,
            "options": [
                { "text": "0.99", "value": "0.99", "selected": true },
                { "text": "0.995", "value": "0.995", "selected": false },
                { "text": "0.999", "value": "0.999", "selected": false },
            ],
        }));
    }
    vars
}

fn panel_json(p: &Panel, id: usize, x: u32, y: u32) -> Value {
    let targets: Vec<Value> = p
        .queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let ref_id = ((b'A' + i as u8) as char).to_string();
            match p.source {
                Source::Prometheus => json!({
                    "refId": ref_id, "datasource": datasource(p.source), "expr": q.expr,
                    "legendFormat": if q.legend.is_empty() { "__auto" } else { q.legend },
                    "range": p.viz == Viz::TimeSeries, "instant": p.viz != Viz::TimeSeries, "editorMode": "code",
                }),
                Source::Postgres => json!({
                    "refId": ref_id, "datasource": datasource(p.source), "rawSql": q.expr, "rawQuery": true,
                    "editorMode": "code", "format": if p.viz == Viz::TimeSeries { "time_series" } else { "table" },
                }),
            }
        })
        .collect();
    let options = match p.viz {
        Viz::TimeSeries => {
            json!({ "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true }, "tooltip": { "mode": "multi", "sort": "desc" } })
        }
        Viz::Stat => {
            json!({ "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false }, "colorMode": "value", "graphMode": "none", "textMode": "auto" })
        }
        Viz::Table => {
            json!({ "showHeader": true, "cellHeight": "sm", "footer": { "show": false, "reducer": ["sum"], "fields": "" } })
        }
        Viz::BarGauge => {
            json!({ "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": p.source == Source::Postgres }, "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": true })
        }
    };
    let overrides: Vec<Value> = p
        .fields
        .iter()
        .map(|f| {
            let mut properties = Vec::new();
            if let Some(u) = f.unit {
                properties.push(json!({ "id": "unit", "value": u }));
            }
            if !f.thresholds.is_empty() {
                let steps: Vec<Value> = f
                    .thresholds
                    .iter()
                    .map(|(v, color)| json!({ "color": color, "value": if v.is_finite() { json!(v) } else { Value::Null } }))
                    .collect();
                properties.push(json!({ "id": "thresholds", "value": { "mode": "absolute", "steps": steps } }));
                properties.push(json!({ "id": "color", "value": { "mode": "thresholds" } }));
                if p.viz == Viz::Table {
                    properties.push(json!({ "id": "custom.cellOptions", "value": { "type": "color-background" } }));
                }
            }
            if let Some((title, url)) = f.link {
                properties.push(json!({ "id": "links", "value": [{ "title": title, "url": url, "targetBlank": true }] }));
            }
            if let Some(to) = f.fill_to {
                properties.push(json!({ "id": "custom.fillBelowTo", "value": to }));
                properties.push(json!({ "id": "custom.lineWidth", "value": 0 }));
            }
            json!({ "matcher": { "id": "byName", "options": f.name }, "properties": properties })
        })
        .collect();
    // The other end of each band: no line of its own.
    let band_ends: Vec<Value> = p
        .fields
        .iter()
        .filter_map(|f| f.fill_to)
        .map(|to| {
            json!({ "matcher": { "id": "byName", "options": to }, "properties": [
                { "id": "custom.lineWidth", "value": 0 }, { "id": "custom.hideFrom", "value": { "legend": true, "tooltip": false, "viz": false } },
            ] })
        })
        .collect();
    let overrides: Vec<Value> = overrides.into_iter().chain(band_ends).collect();
    json!({
        "id": id,
        "type": viz_id(p.viz).0,
        "title": p.title,
        "description": p.description,
        "datasource": datasource(p.source),
        "gridPos": { "h": p.height, "w": p.width, "x": x, "y": y },
        "fieldConfig": { "defaults": { "unit": p.unit, "color": { "mode": "palette-classic" } }, "overrides": overrides },
        "options": options,
        "targets": targets,
    })
}

/// Grafana JSON of one dashboard.
pub fn to_json(d: &Dashboard) -> Value {
    let (mut x, mut y, mut row_h) = (0u32, 0u32, 0u32);
    let mut panels = Vec::new();
    for (i, p) in d.panels.iter().enumerate() {
        if x + p.width > 24 {
            x = 0;
            y += row_h;
            row_h = 0;
        }
        panels.push(panel_json(p, i + 1, x, y));
        x += p.width;
        row_h = row_h.max(p.height);
    }
    let sources = d.sources();
    let inputs: Vec<Value> = sources
        .iter()
        .map(|s| {
            json!({
                "name": input_name(*s), "label": match s { Source::Prometheus => "Prometheus", Source::Postgres => "PostgreSQL" },
                "description": match s {
                    Source::Prometheus => "A Prometheus scraping llmhub's /metrics",
                    Source::Postgres => "A PostgreSQL database with the llm_analytics extension",
                },
                "type": "datasource", "pluginId": plugin(*s), "pluginName": match s { Source::Prometheus => "Prometheus", Source::Postgres => "PostgreSQL" },
            })
        })
        .collect();
    let mut requires = vec![json!({ "type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0" })];
    for s in &sources {
        requires.push(json!({ "type": "datasource", "id": plugin(*s), "name": match s { Source::Prometheus => "Prometheus", Source::Postgres => "PostgreSQL" }, "version": "1.0.0" }));
    }
    let mut vizs: Vec<Viz> = Vec::new();
    for p in &d.panels {
        if !vizs.contains(&p.viz) {
            vizs.push(p.viz);
        }
    }
    for v in vizs {
        let (id, name) = viz_id(v);
        requires.push(json!({ "type": "panel", "id": id, "name": name, "version": "" }));
    }
    json!({
        "__inputs": inputs,
        "__requires": requires,
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": ["llmhub", "genai", "llm"],
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "utc",
        "refresh": "1m",
        "time": { "from": d.from, "to": "now" },
        "links": [{
            "title": "llmhub dashboards", "type": "dashboards", "tags": ["llmhub"], "asDropdown": true,
            "includeVars": true, "keepTime": true, "icon": "external link", "targetBlank": false, "tooltip": "",
        }],
        "annotations": { "list": [] },
        "templating": { "list": variables(d) },
        "panels": panels,
    })
}

/// `dashboards/README.md`: every dashboard and panel with what it answers.
pub fn readme() -> String {
    let mut s = String::from(
        "# Grafana dashboards\n\n\
         Generated by `cargo run -p llmhub -- dashboards --out dashboards` from\n\
         `crates/llmhub-dashboards/src/` (edit there, then regenerate; a test fails when the files\n\
         differ from the code). Import a JSON file in Grafana (it asks for the data sources), or\n\
         provision them with `provisioning/` (see below).\n\n\
         Every query filters on llmhub's normalized labels and columns, never on an SDK's name, so the\n\
         panels fill for every emitter llmhub reads. In the Prometheus dashboards the tenant filter\n\
         applies to llmhub's own counters (calls, errors, tokens, cost), which carry an\n\
         `llmhub_tenant` label; the semantic-convention histograms (latency, time to first token)\n\
         carry only their specified attributes and show every tenant. The PostgreSQL dashboards\n\
         filter everything by tenant; which tenants a data source can show at all is the scope of\n\
         the role it connects as (docs/sql.md, Tenant isolation): use one data source per tenant,\n\
         each connecting as a role made with `llm_grant_reader(role, tenant)`, for that tenant's\n\
         users, and one connecting as a role made with `llm_grant_operator(role)` for operators.\n\
         Never connect as the database owner or a superuser: they read every row. The free-text\n\
         variables (budget, objective) reach SQL only as quoted literals (`${var:sqlstring}`) and a\n\
         cast. The llmhub health dashboard is about llmhub itself and has no data filters.\n\n\
         Links into the tracing backend: a trace id opens `${trace_url}` followed by the id, and a\n\
         model name opens `${model_url}`, the name, then `${model_url_end}`. The defaults are\n\
         Jaeger's on localhost (its trace page, and its search for the `gen_ai.request.model`\n\
         tag); for Grafana Tempo, point `trace_url` at Explore's trace view and wrap the model in a\n\
         TraceQL query (`{ span.gen_ai.request.model = \"` before, `\" }` after, URL-encoded).\n\n\
         Provisioning: copy `provisioning/datasources/llmhub.yaml` (an operator data source and\n\
         one for tenant `acme`: copy that entry per tenant) and\n\
         `provisioning/dashboards/llmhub.yaml` into Grafana's provisioning directory, set the URLs,\n\
         and point the dashboards provider at this directory.\n\n",
    );
    for d in all() {
        let sources: Vec<&str> = d
            .sources()
            .iter()
            .map(|s| match s {
                Source::Prometheus => "Prometheus",
                Source::Postgres => "PostgreSQL (`llm_analytics`)",
            })
            .collect();
        s.push_str(&format!(
            "## {} (`{}`)\n\n{} Data: {}.\n\n| panel | answers | unit |\n|---|---|---|\n",
            d.title,
            d.file,
            d.description,
            sources.join(" and ")
        ));
        for p in &d.panels {
            s.push_str(&format!("| {} | {} | `{}` |\n", p.title, p.description, p.unit));
        }
        s.push('\n');
    }
    s
}
