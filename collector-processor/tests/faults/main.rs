//! The fault-injection suite: the PostgreSQL sink's promise — every span of an acknowledged
//! request ends up as exactly one row — tried against the real servers with faults injected at
//! chosen points, each case deterministic (synchronised on what the servers and llmhub report,
//! never on sleeps), each ending with the same check: acknowledged ⊆ stored, no duplicates, and
//! llmhub's counters agreeing with the table.
//!
//! - `commit`: failures at COMMIT (deferred constraint triggers: 40001, 23514, the backend
//!   terminated);
//! - `wire`: connections cut or silenced at chosen protocol messages (`testkit::pgproxy`);
//! - `disk`: the queue's directory full (a small tmpfs) or read-only;
//! - `isolation`: the span forwarding target down while the sink and `/metrics` go on;
//! - `shutdown`: SIGTERM in every state, within the drain deadline;
//! - `outage`: the database down for 30 s under load;
//! - `kill9`: kill -9 at random moments with fast and immediate database restarts, looped
//!   (`scripts/soak.sh N`).
//!
//! The cases stop servers, mount filesystems and fill them, so they run one at a time
//! (`support::serial`). `#[ignore]`d for a bare `cargo test`: the README's test command starts
//! the servers and runs them as root.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod commit;
mod disk;
mod isolation;
mod kill9;
mod outage;
mod shutdown;
mod wire;
