//! The `llmhub` binary: `serve` with no config file (start, health, SIGTERM, start again on the same
//! ports) and `check-config`.

use llmhub_testkit::ServeProcess;
use std::process::Command;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llmhub"))
}

/// Starts `llmhub serve` and returns it with the addresses it logged.
fn serve(args: &[&str]) -> (ServeProcess, Vec<(String, String)>) {
    let p = llmhub_testkit::spawn_serve(env!("CARGO_BIN_EXE_llmhub"), args, None).expect("llmhub starts");
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
    let (mut child, addrs) = serve(&llmhub_testkit::LOOPBACK_EPHEMERAL);
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

/// SIGTERM the moment `ready` is logged: the handlers are installed before it, so the process
/// drains and exits 0 rather than dying of the signal. With them installed after the start (as
/// they were), the restart check above failed once in a full test run, and this test failed at
/// round 2 with six busy loops on the machine's two cores ("signal: 15 (SIGTERM)"); it passes
/// 200 rounds under the same load now.
#[test]
fn sigterm_right_after_ready_drains_and_exits_zero() {
    for round in 0..50 {
        let (mut p, _) = serve(&llmhub_testkit::LOOPBACK_EPHEMERAL);
        let status = terminate(&mut p);
        assert!(status.success(), "round {round}: exit status after SIGTERM: {status}");
    }
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

/// A figure from `/proc/<pid>/status` (kB), in bytes.
fn status_bytes(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in {status}"));
    kb * 1024.0
}

/// `/metrics` says which build runs (version, the checkout's revision) and how the process is:
/// started when the test started it, under the open-file limit the test set, with the CPU time,
/// memory and descriptors the system reports for it.
#[cfg(target_os = "linux")]
#[test]
fn the_metrics_say_which_build_runs_and_how_the_process_is() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("llmhub-cli-proc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let wrapper = dir.join("llmhub-ulimit.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nulimit -n 777\nexec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_llmhub")
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let mut child = llmhub_testkit::spawn_serve(
        wrapper.to_str().expect("utf-8"),
        &llmhub_testkit::LOOPBACK_EPHEMERAL,
        None,
    )
    .expect("llmhub starts");
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let pid = child.pid();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Some work first, so its CPU time is more than a clock tick: 300 scrapes.
    let text = rt.block_on(async {
        let mut text = String::new();
        for _ in 0..300 {
            text = reqwest::get(format!("http://{}/metrics", child.metrics))
                .await
                .expect("scrape")
                .text()
                .await
                .expect("body");
        }
        text
    });
    let fds_now = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fd").count() as f64;
    let (rss, vsize) = (status_bytes(pid, "VmRSS:"), status_bytes(pid, "VmSize:"));
    let ps = Command::new("ps")
        .args(["-o", "times=", "-p", &pid.to_string()])
        .output()
        .expect("ps");
    let cpu_ps: f64 = String::from_utf8_lossy(&ps.stdout).trim().parse().expect("ps times");
    terminate(&mut child);
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".to_owned(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_owned()
        });
    let info = format!(
        "llmhub_build_info{{version=\"{}\",revision=\"{revision}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.lines().any(|l| l == info), "no `{info}` in\n{text}");
    assert_eq!(value("process_max_fds"), 777.0);
    // Boot time is whole seconds, the start a clock tick: within a second and a half.
    let start = value("process_start_time_seconds");
    assert!(
        start >= before - 1.5 && start <= after + 1.5,
        "started at {start}, spawned in {before}..{after}"
    );
    let open = value("process_open_fds");
    assert!((open - fds_now).abs() <= 3.0, "{open} open fds, /proc lists {fds_now}");
    let resident = value("process_resident_memory_bytes");
    assert!((resident / rss - 1.0).abs() < 0.2, "{resident} resident, VmRSS {rss}");
    let virt = value("process_virtual_memory_bytes");
    assert!((virt / vsize - 1.0).abs() < 0.05, "{virt} virtual, VmSize {vsize}");
    let cpu = value("process_cpu_seconds_total");
    assert!(
        cpu > 0.0 && (cpu - cpu_ps).abs() <= 1.0,
        "{cpu} s CPU, ps says {cpu_ps} s"
    );
}
