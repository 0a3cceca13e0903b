//! A real Prometheus server (Debian's `prometheus`, or `PROMETHEUS_BIN`) scraping a running llmhub
//! every second, and its HTTP query API.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The server; killed (and its data removed) on drop.
pub struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
    /// `host:port` of its HTTP API.
    pub addr: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts Prometheus scraping `target` (llmhub's metrics address) every second, under job `llmhub`.
pub fn start(target: SocketAddr, name: &str) -> Prometheus {
    start_targets(&[target.to_string()], name)
}

/// Starts Prometheus scraping every one of `targets` (`host:port`) every second, under job `llmhub`
/// (one `instance` each).
pub fn start_targets(targets: &[String], name: &str) -> Prometheus {
    let targets = targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
    let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".to_owned());
    let dir = std::env::temp_dir().join(format!("llmhub-prom-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: llmhub\n    static_configs:\n      - targets: [{targets}]\n"
        ),
    )
    .expect("config");
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {bin}: {e}; install Debian's prometheus package or set PROMETHEUS_BIN")
        });
    Prometheus { child, dir, addr }
}

impl Prometheus {
    /// `GET /api/v1/<path>` with `params`; Null when the server does not answer (yet).
    pub async fn api(&self, path: &str, params: &[(&str, String)]) -> serde_json::Value {
        let url = format!("http://{}/api/v1/{path}", self.addr);
        match reqwest::Client::new()
            .get(url)
            .query(params)
            .timeout(Duration::from_secs(30))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// An instant query.
    pub async fn query(&self, q: &str) -> serde_json::Value {
        self.api("query", &[("query", q.to_owned())]).await
    }
}

/// The first sample's value of an instant-query answer.
pub fn scalar(v: &serde_json::Value) -> Option<f64> {
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}
