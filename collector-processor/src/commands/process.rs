//! What every long-running subcommand sets up in its process: logging, the allocator, and the
//! shutdown signals.

use llmhub::config::Config;

/// Logs to standard error at `service.telemetry.log_level` (or `LLMHUB_LOG`), as text or JSON.
pub(crate) fn init_logging(c: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LLMHUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&c.service.telemetry.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if c.service.telemetry.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// With `service.memory.return_freed`, allocations from this size up are mapped, and unmapped when
/// freed (see `llmhub_sys`): keeps resident memory near what is held under a long overload.
pub(crate) const MMAP_THRESHOLD: usize = 128 * 1024;

/// Applies `service.memory.return_freed`; call before the runtime starts its threads.
pub(crate) fn tune_allocator(c: &Config) {
    if c.service.memory.returns_freed() && llmhub_sys::fix_mmap_threshold(MMAP_THRESHOLD) {
        tracing::info!(
            threshold_bytes = MMAP_THRESHOLD,
            "large allocations are returned to the system when freed (service.memory.return_freed)"
        );
    }
}

/// Waits for SIGTERM or SIGINT (for commands that have nothing to drain before they listen).
pub(crate) async fn wait_for_signal() {
    match Signals::install() {
        Ok(mut signals) => signals.recv().await,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// SIGTERM and SIGINT, caught from the moment this is made: one that comes before anything
/// waits for it is kept for the next [`Signals::recv`] instead of ending the process.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (inside a runtime).
    pub(crate) fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT.
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
