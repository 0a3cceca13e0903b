//! The bundled dashboards type-check against Grafana's own schema package: `@grafana/schema`
//! from npm (its `Dashboard` type, the classic JSON model) with `tsc --strict`, pinned by the lock
//! in `tests/grafana_schema/`. Each dashboard becomes `const d: Json<Dashboard> = <its JSON>`,
//! where `Json<T>` reads a string enum as its string values (the file holds `"absolute"`, not
//! `ThresholdsMode.Absolute`). Object literals get TypeScript's excess-property check, so a
//! misspelled or unknown key fails as well as a wrong type or a missing required field; dashboards
//! made wrong in those ways must fail, so the check is known to bite. What the schema leaves open
//! (panel `options`, query fields, override values) it cannot check.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Installs the locked packages into `target/grafana-schema` (skipped while the lock is
/// unchanged) and returns that directory.
fn install() -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grafana_schema");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/grafana-schema");
    std::fs::create_dir_all(&dir).expect("target dir");
    let lock = std::fs::read(fixture.join("package-lock.json")).expect("lock");
    let installed = std::fs::read(dir.join(".installed-lock")).ok();
    for f in ["package.json", "package-lock.json", "tsconfig.json", "json.d.ts"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    if installed.as_deref() != Some(&lock[..]) || !dir.join("node_modules/.bin/tsc").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .expect("npm (Node.js) on PATH");
        assert!(
            out.status.success(),
            "npm ci: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.join(".installed-lock"), &lock).expect("mark");
    }
    dir
}

/// Writes `name.ts` declaring `dashboard` as a `Json<Dashboard>` (plus the import wrapper's
/// `__inputs` and `__requires`, which are not part of the dashboard model).
fn write_ts(dir: &Path, name: &str, dashboard: &Value) {
    let text = format!(
        "import type {{ Dashboard }} from '@grafana/schema';\nimport type {{ Json }} from './json';\n\n\
         type Import = {{ __inputs?: unknown[]; __requires?: unknown[] }};\n\n\
         const dashboard: Json<Dashboard> & Import = {};\nexport default dashboard;\n",
        serde_json::to_string_pretty(dashboard).expect("json")
    );
    std::fs::write(dir.join(format!("{name}.ts")), text).expect("write ts");
}

/// Runs `tsc -p` in `dir`; returns the error lines (`file.ts(line,col): error TSnnnn: ...`).
fn tsc(dir: &Path) -> Vec<String> {
    let out = Command::new(dir.join("node_modules/.bin/tsc"))
        .args(["-p", "tsconfig.json"])
        .current_dir(dir)
        .output()
        .expect("tsc");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let errors: Vec<String> = text
        .lines()
        .filter(|l| l.contains("error TS"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        out.status.success(),
        errors.is_empty(),
        "tsc exit status against its output:\n{text}"
    );
    errors
}

#[test]
#[ignore = "needs Node.js and npm with registry access (scripts/test.sh)"]
fn dashboards_type_check_against_grafanas_schema_package() {
    let dir = install();
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "ts") && !path.ends_with("json.d.ts") {
            std::fs::remove_file(path).expect("stale ts");
        }
    }
    let all = llmhub_dashboards::all();
    for d in &all {
        write_ts(&dir, d.uid, &llmhub_dashboards::to_json(d));
    }
    let errors = tsc(&dir);
    assert!(
        errors.is_empty(),
        "the dashboards do not type-check:\n{}",
        errors.join("\n")
    );

    // Made wrong, each must fail with its own error, in its own file.
    let base = llmhub_dashboards::to_json(&all[0]);
    let mut wrong: Vec<(&str, &str, Value)> = Vec::new();
    let mut w = base.clone();
    w["panels"][0]["gridPos"]["w"] = Value::from("6");
    wrong.push(("width_as_text", "TS2322", w));
    let mut w = base.clone();
    let field_config = w["panels"][0]["fieldConfig"].take();
    w["panels"][0].as_object_mut().expect("panel").remove("fieldConfig");
    w["panels"][0]["fieldconfig"] = field_config;
    wrong.push(("misspelled_key", "TS2353", w));
    let mut w = base.clone();
    w["time"].as_object_mut().expect("time").remove("to");
    wrong.push(("range_without_end", "TS2741", w));
    let mut w = base;
    w["graphTooltip"] = Value::from(5);
    wrong.push(("unknown_cursor_sync", "TS2322", w));
    for (name, _, dashboard) in &wrong {
        write_ts(&dir, name, dashboard);
    }
    let errors = tsc(&dir);
    for (name, code, _) in &wrong {
        let mine: Vec<&String> = errors
            .iter()
            .filter(|e| e.starts_with(&format!("{name}.ts(")))
            .collect();
        assert!(
            mine.len() == 1 && mine[0].contains(code),
            "{name}: expected one {code}, got {mine:?}"
        );
    }
    assert_eq!(errors.len(), wrong.len(), "errors only in the wrong ones: {errors:?}");
}
