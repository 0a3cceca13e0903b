//! The `llmhub` binary: `serve` with no config file (start, health, SIGTERM, start again on the same
//! ports) and `check-config`.

use llmhub::testkit::ServeProcess;
use std::process::Command;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llmhub"))
}

/// Starts `llmhub serve` and returns it with the addresses it logged.
fn serve(args: &[&str]) -> (ServeProcess, Vec<(String, String)>) {
    let p = llmhub::testkit::spawn_serve(env!("CARGO_BIN_EXE_llmhub"), args, None).expect("llmhub starts");
    let addrs = vec![
        ("grpc".to_owned(), p.grpc.clone()),
        ("http".to_owned(), p.http.clone()),
        ("metrics".to_owned(), p.metrics.clone()),
    ];
    (p, addrs)
}

fn get(addr: &str, path: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        reqwest::get(format!("http://{addr}{path}"))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

fn terminate(child: &mut ServeProcess) -> std::process::ExitStatus {
    child.terminate();
    let started = Instant::now();
    let status = child.wait_timeout(Duration::from_secs(15));
    status.unwrap_or_else(|| panic!("llmhub did not stop within 15 s of SIGTERM ({:?})", started.elapsed()))
}

#[test]
fn serve_without_config_starts_answers_health_stops_on_sigterm_and_restarts() {
    let (mut child, addrs) = serve(&llmhub::testkit::LOOPBACK_EPHEMERAL);
    let metrics = addrs
        .iter()
        .find(|(w, _)| w == "metrics")
        .expect("metrics addr")
        .1
        .clone();
    let http = addrs.iter().find(|(w, _)| w == "http").expect("http addr").1.clone();
    assert_eq!(get(&metrics, "/healthz"), 200);
    assert_eq!(get(&metrics, "/readyz"), 200);
    assert_eq!(get(&metrics, "/metrics"), 200);
    let status = terminate(&mut child);
    assert!(status.success(), "exit status after SIGTERM: {status}");

    // Start again on the very same ports: nothing was left bound.
    let http_port = http.rsplit(':').next().expect("port").to_owned();
    let metrics_port = metrics.rsplit(':').next().expect("port").to_owned();
    let (mut again, _) = serve(&[
        "--bind",
        "127.0.0.1",
        "--grpc-port",
        "0",
        "--http-port",
        &http_port,
        "--metrics-port",
        &metrics_port,
    ]);
    assert_eq!(get(&metrics, "/readyz"), 200);
    assert!(terminate(&mut again).success());
}

#[test]
fn a_busy_port_fails_the_start_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = bin()
        .args([
            "serve",
            "--bind",
            "127.0.0.1",
            "--grpc-port",
            &port,
            "--http-port",
            "0",
            "--metrics-port",
            "0",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port} for OTLP/gRPC")),
        "{err}"
    );
}

#[test]
fn check_config_accepts_a_valid_file_and_names_the_bad_key_of_an_invalid_one() {
    let dir = std::env::temp_dir().join(format!("llmhub-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let good = dir.join("good.yaml");
    std::fs::write(
        &good,
        "exporters:\n  prometheus:\n    endpoint: ${env:LLMHUB_TEST_METRICS:-127.0.0.1:9999}\n",
    )
    .expect("write");
    let out = bin().arg("check-config").arg(&good).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("endpoint: 127.0.0.1:9999"));

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "processors:\n  genai:\n    dedupe: {}\n").expect("write");
    let out = bin().arg("check-config").arg(&bad).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("processors.genai.dedupe: unknown field `dedupe`, expected one of"),
        "{err}"
    );

    let out = bin()
        .arg("check-config")
        .arg(dir.join("missing.yaml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[test]
fn help_lists_the_commands() {
    let out = bin().arg("--help").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "check-config"] {
        assert!(text.contains(cmd), "{text}");
    }
    let out = bin().args(["serve", "--help"]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--config", "--grpc-port", "--http-port", "--metrics-port", "--bind"] {
        assert!(text.contains(flag), "{text}");
    }
}
