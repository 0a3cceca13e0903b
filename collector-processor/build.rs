//! Records the git revision llmhub is built from, for `llmhub_build_info` (`LLMHUB_REVISION` set
//! by a packager wins; `unknown` outside a checkout).

fn main() {
    println!("cargo:rerun-if-env-changed=LLMHUB_REVISION");
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let git = dir.join("../.git");
    for watched in ["HEAD", "refs/heads", "packed-refs"] {
        if git.join(watched).exists() {
            println!("cargo:rerun-if-changed={}", git.join(watched).display());
        }
    }
    let revision = std::env::var("LLMHUB_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let out = std::process::Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .current_dir(&dir)
                .output()
                .ok()?;
            let r = String::from_utf8(out.stdout).ok()?.trim().to_owned();
            (out.status.success() && !r.is_empty()).then_some(r)
        });
    println!(
        "cargo:rustc-env=LLMHUB_REVISION={}",
        revision.unwrap_or_else(|| "unknown".to_owned())
    );
}
