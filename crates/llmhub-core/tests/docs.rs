//! `docs/normalization.md` carries the attribute table generated from `KEY_RULES`; this test keeps
//! the two equal. `LLMHUB_BLESS=1` rewrites the table.

use llmhub_core::keys::{Field, Unit, KEY_RULES};

fn render() -> String {
    let mut fields: Vec<Field> = Vec::new();
    for r in KEY_RULES {
        if !fields.contains(&r.field) {
            fields.push(r.field);
        }
    }
    let mut out = String::from("| field | rank | key | unit | defined by |\n|---|---|---|---|---|\n");
    for f in fields {
        let mut rules: Vec<_> = KEY_RULES.iter().filter(|r| r.field == f).collect();
        rules.sort_by_key(|r| r.rank);
        for r in rules {
            let unit = match r.unit {
                Unit::Plain => "as is",
                Unit::Millis => "ms → s",
            };
            out.push_str(&format!(
                "| `{}` | {} | `{}` | {} | {} |\n",
                f.name(),
                r.rank,
                r.key,
                unit,
                r.dialect.as_str()
            ));
        }
    }
    out
}

#[test]
fn normalization_doc_lists_every_key_of_the_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/normalization.md");
    let doc = std::fs::read_to_string(&path).expect("docs/normalization.md");
    let (begin, end) = ("<!-- BEGIN KEY TABLE -->\n", "<!-- END KEY TABLE -->");
    let start = doc.find(begin).expect("begin marker") + begin.len();
    let stop = doc.find(end).expect("end marker");
    let table = render();
    if std::env::var_os("LLMHUB_BLESS").is_some() {
        let new = format!("{}{}{}", &doc[..start], table, &doc[stop..]);
        std::fs::write(&path, new).expect("write doc");
        return;
    }
    assert_eq!(
        &doc[start..stop],
        table,
        "docs/normalization.md is stale: run LLMHUB_BLESS=1 cargo test -p llmhub-core --test docs"
    );
}
