//! The queue between the processor and an exporter's writers: bounded, optionally on disk, and
//! optionally synced before the producer's request is acknowledged.
//!
//! - Without a directory the queue lives in memory, bounded by `max_memory_bytes`.
//! - With a directory every item is appended to an on-disk [`log::Log`] (bounded by
//!   `max_disk_bytes`), so what is queued during a database outage waits on disk, not in memory,
//!   and a restarted process picks up what the previous one had not written.
//! - With `durability: wal` (needs a directory) [`Queue::push`] returns only once the items are
//!   synced to disk (`fdatasync`), so an acknowledged OTLP request survives a crash of the machine,
//!   not only of the process. Concurrent pushes share one sync (group commit).
//!
//! A full queue refuses new requests ([`Queue::admit`] returns [`PushError::Full`]); the receiver
//! turns that into the OTLP retryable status, so nothing is dropped silently. Writers take leases of up to `max` items
//! ([`Queue::pop`]) and confirm them ([`Queue::ack`]) once written; an unconfirmed lease is
//! delivered again after a restart (the sink is idempotent).

pub mod config;
pub mod gauges;
pub mod log;

pub use config::{Durability, OnFull, QueueConfig};

use bytes::Bytes;
use llmhub_server::budget::MemoryBudget;
use log::{encode_entry, Log, Pos};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why a push was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The queue is at its size limit; retry later.
    #[error("the {queue} queue is full ({bytes} bytes queued, limit {limit}); retry later")]
    Full {
        /// Queue name.
        queue: String,
        /// Bytes queued.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The process is at its memory limit (`service.memory.limit_mib`); retry later.
    #[error(transparent)]
    OverBudget(#[from] llmhub_server::budget::OverBudget),
    /// The queue is shutting down.
    #[error("the {0} queue is shutting down")]
    Closed(String),
    /// Appending or syncing the on-disk log failed.
    #[error("the {queue} queue could not write to disk: {source}")]
    Io {
        /// Queue name.
        queue: String,
        /// The I/O error.
        source: io::Error,
    },
    /// A call of the request was a copy of one that another request, still being stored, held;
    /// that request was refused, so this one is too (its retry stores the call).
    #[error("a copy of one of these spans came in another request that could not be stored; retry")]
    Unconfirmed,
}

impl PushError {
    /// The `llmhub.reason` under which the refused spans are counted.
    pub fn reason(&self) -> PushReason {
        match self {
            PushError::Full { .. } => PushReason::QueueFull,
            PushError::OverBudget(_) => PushReason::MemoryLimit,
            PushError::Closed(_) => PushReason::Unavailable,
            PushError::Io { .. } => PushReason::QueueError,
            PushError::Unconfirmed => PushReason::CopyUnconfirmed,
        }
    }
}

/// Why a queue did not take a request, as metrics label it (`llmhub.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushReason {
    /// At its size limit.
    QueueFull,
    /// The process is at its memory limit.
    MemoryLimit,
    /// Shutting down.
    Unavailable,
    /// The on-disk log could not be written.
    QueueError,
    /// A copy of a call came in a request that could not be stored.
    CopyUnconfirmed,
}

impl PushReason {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            PushReason::QueueFull => "queue_full",
            PushReason::MemoryLimit => "memory_limit",
            PushReason::Unavailable => "unavailable",
            PushReason::QueueError => "queue_error",
            PushReason::CopyUnconfirmed => "copy_unconfirmed",
        }
    }
}

/// Items handed to a writer, to be confirmed with [`Queue::ack`].
#[derive(Debug)]
pub struct Lease {
    /// The items, in queue order.
    pub items: Vec<Bytes>,
    id: u64,
    bytes: u64,
}

/// A snapshot of the queue for self-monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Items queued or leased and not yet confirmed.
    pub items: u64,
    /// Bytes held in memory (memory queue) or not yet confirmed on disk (disk queue).
    pub bytes: u64,
    /// Bytes of segment files on disk.
    pub disk_bytes: u64,
    /// Enqueue time of the oldest unconfirmed item, ms since the Unix epoch.
    pub oldest_ms: Option<u64>,
}

enum Store {
    Memory(VecDeque<(Bytes, u64)>),
    Disk {
        log: Box<Log>,
        /// Unconfirmed leases: id → (start, end).
        leased: BTreeMap<u64, (Pos, Pos)>,
        /// Start of the first unread entry (the commit point when nothing is leased).
        read_pos: Pos,
        /// (end position, enqueue ms, items) per push, oldest first: for the oldest-age figure
        /// and the item count.
        pushes: VecDeque<(Pos, u64, u64)>,
    },
}

struct State {
    store: Store,
    /// Items not yet leased.
    ready: u64,
    /// Items leased and not confirmed.
    leased_items: u64,
    /// Memory queue: bytes held (queued + leased).
    mem_bytes: u64,
    /// Memory queue: enqueue times of leased items (id → oldest ms) for the age figure.
    mem_leased_oldest: BTreeMap<u64, (u64, u64)>,
    next_lease: u64,
    closed: bool,
}

struct Syncer {
    /// Everything appended before this position is on disk.
    synced: Pos,
}

/// The queue. Cheap to share behind an `Arc`.
pub struct Queue {
    name: String,
    cfg: QueueConfig,
    state: Mutex<State>,
    sync: tokio::sync::Mutex<Syncer>,
    notify: Notify,
    /// The process-wide memory budget the memory store's items count against, once set.
    budget: std::sync::OnceLock<Arc<MemoryBudget>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Queue {
    /// Opens the queue; with a directory, replays what an earlier process left unconfirmed.
    pub fn open(name: &str, cfg: &QueueConfig) -> io::Result<Arc<Queue>> {
        let store = match &cfg.directory {
            None => Store::Memory(VecDeque::new()),
            Some(dir) => {
                let log = Box::new(Log::open(&dir.join(name), cfg.segment_bytes)?);
                let read_pos = log.read_pos();
                Store::Disk {
                    pushes: VecDeque::new(),
                    log,
                    leased: BTreeMap::new(),
                    read_pos,
                }
            }
        };
        let mut state = State {
            store,
            ready: 0,
            leased_items: 0,
            mem_bytes: 0,
            mem_leased_oldest: BTreeMap::new(),
            next_lease: 0,
            closed: false,
        };
        if let Store::Disk { log, pushes, .. } = &mut state.store {
            let (items, oldest) = count_pending(log)?;
            if items > 0 {
                tracing::info!(queue = name, items, "replaying queued items left by an earlier run");
                pushes.push_back((log.write_pos(), oldest, items));
            }
            state.ready = items;
        }
        Ok(Arc::new(Queue {
            name: name.to_owned(),
            cfg: cfg.clone(),
            state: Mutex::new(state),
            sync: tokio::sync::Mutex::new(Syncer { synced: Pos::default() }),
            notify: Notify::new(),
            budget: std::sync::OnceLock::new(),
        }))
    }

    /// Counts what the memory store holds against `budget` from now on (a disk store holds its
    /// items on disk and counts nothing). Set once; later calls are ignored.
    pub fn use_budget(&self, budget: Arc<MemoryBudget>) {
        let _ = self.budget.set(budget);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether the queue is below its size limit. Receivers ask before processing a request and
    /// push its items afterwards without a second check, so a refused request leaves no trace;
    /// the limit can thus be passed by what the requests admitted at the same moment hold.
    pub fn admit(&self) -> Result<(), PushError> {
        let st = self.lock();
        if st.closed {
            return Err(PushError::Closed(self.name.clone()));
        }
        let (bytes, limit) = match &st.store {
            Store::Memory(_) => (st.mem_bytes, self.cfg.max_memory_bytes),
            Store::Disk { log, .. } => (log.pending_bytes(), self.cfg.max_disk_bytes),
        };
        if bytes >= limit {
            return Err(PushError::Full {
                queue: self.name.clone(),
                bytes,
                limit,
            });
        }
        Ok(())
    }

    /// Appends items (after [`Queue::admit`]). With `durability: wal`, returns once they are
    /// synced to disk.
    pub async fn push(&self, items: Vec<Bytes>) -> Result<(), PushError> {
        if items.is_empty() {
            return Ok(());
        }
        if let Some(big) = items.iter().find(|b| b.len() > log::MAX_ENTRY) {
            return Err(PushError::Io {
                queue: self.name.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "an item of {} bytes is larger than the queue's {} byte limit",
                        big.len(),
                        log::MAX_ENTRY
                    ),
                ),
            });
        }
        let n = items.len() as u64;
        let ms = now_ms();
        let synced_to = {
            let mut guard = self.lock();
            let st = &mut *guard;
            // A closed queue still takes what was admitted before it closed: the writers drain it.
            let incoming: u64 = items.iter().map(|b| b.len() as u64).sum();
            let queue = self.name.clone();
            let end = match &mut st.store {
                Store::Memory(q) => {
                    // Memory accounting: payload plus a fixed per-item overhead.
                    let need = incoming + 48 * n;
                    q.extend(items.into_iter().map(|b| (b, ms)));
                    st.mem_bytes += need;
                    // Admitted already (the request's reservation covered it): counted, never refused.
                    if let Some(b) = self.budget.get() {
                        b.charge(need);
                    }
                    None
                }
                Store::Disk { log, pushes, .. } => {
                    let need = incoming + 16 * n;
                    let mut buf = Vec::with_capacity(need as usize);
                    for b in &items {
                        encode_entry(&mut buf, b, ms);
                    }
                    let end = log.append(&buf).map_err(|source| PushError::Io {
                        queue: queue.clone(),
                        source,
                    })?;
                    pushes.push_back((end, ms, n));
                    (self.cfg.durability == Durability::Wal).then_some(end)
                }
            };
            st.ready += n;
            end
        };
        self.notify.notify_waiters();
        if let Some(end) = synced_to {
            self.sync_to(end).await?;
        }
        Ok(())
    }

    /// Group commit: one sync covers every push that appended before it started. It runs outside
    /// the queue's lock (on the blocking pool), so pushes and writers never wait for the disk;
    /// only pushes that need this sync do.
    async fn sync_to(&self, end: Pos) -> Result<(), PushError> {
        let mut s = self.sync.lock().await;
        if s.synced >= end {
            return Ok(());
        }
        // Everything appended until now: finished segments, the current one, new directory entries.
        let todo = {
            let mut st = self.lock();
            match &mut st.store {
                Store::Disk { log, .. } => log.take_unsynced(),
                Store::Memory(_) => return Ok(()),
            }
        };
        let todo = todo.map_err(|source| PushError::Io {
            queue: self.name.clone(),
            source,
        })?;
        let upto = todo.upto;
        let res = tokio::task::spawn_blocking(move || todo.sync()).await;
        let failure = match res {
            Ok(Ok(())) => {
                s.synced = s.synced.max(upto);
                return Ok(());
            }
            Ok(Err((source, finished, dir))) => {
                if let Store::Disk { log, .. } = &mut self.lock().store {
                    log.give_back(finished, dir);
                }
                source
            }
            Err(join) => io::Error::other(join.to_string()),
        };
        Err(PushError::Io {
            queue: self.name.clone(),
            source: failure,
        })
    }

    /// Takes up to `max` items, waiting up to `linger` after the first item is available for the
    /// lease to fill. Returns `None` once `stop` is cancelled and nothing is left.
    pub async fn pop(&self, max: usize, linger: Duration, stop: &CancellationToken) -> io::Result<Option<Lease>> {
        let max = max.max(1) as u64;
        let mut first_seen: Option<tokio::time::Instant> = None;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                // Closing: take what is there at once. Only `stop` ends the writers, so what is
                // pushed late (admitted before the close) is still written.
                let hurry = stop.is_cancelled() || st.closed;
                if st.ready > 0 {
                    let at = *first_seen.get_or_insert_with(tokio::time::Instant::now);
                    if st.ready >= max || hurry || at.elapsed() >= linger {
                        return self.take(&mut st, max).map(Some);
                    }
                } else {
                    // Another writer took the items: wait for new ones, not for a past deadline.
                    first_seen = None;
                    if stop.is_cancelled() {
                        return Ok(None);
                    }
                }
            }
            match first_seen {
                Some(at) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(at + linger) => {}
                        _ = stop.cancelled() => {}
                    }
                }
                None => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = stop.cancelled() => {}
                        // A safety net against a missed wake-up.
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }

    fn take(&self, st: &mut State, max: u64) -> io::Result<Lease> {
        let id = st.next_lease;
        st.next_lease += 1;
        let mut items = Vec::new();
        let mut bytes = 0u64;
        match &mut st.store {
            Store::Memory(q) => {
                let mut oldest = u64::MAX;
                while (items.len() as u64) < max {
                    let Some((b, ms)) = q.pop_front() else { break };
                    oldest = oldest.min(ms);
                    bytes += b.len() as u64 + 48;
                    items.push(b);
                }
                st.mem_leased_oldest.insert(id, (oldest, items.len() as u64));
            }
            Store::Disk {
                log, leased, read_pos, ..
            } => {
                let start = *read_pos;
                let mut end = start;
                while (items.len() as u64) < max {
                    match log.read_next() {
                        Ok(Some(e)) => {
                            end = e.next;
                            bytes += e.payload.len() as u64 + 16;
                            items.push(Bytes::from(e.payload));
                        }
                        Ok(None) => {
                            if (items.len() as u64) < st.ready.min(max) {
                                // Fewer entries than counted (entries skipped as corrupt): trust the log.
                                tracing::warn!(queue = %self.name, expected = st.ready, "queue log holds fewer entries than counted");
                                st.ready = items.len() as u64;
                            }
                            break;
                        }
                        Err(e) => {
                            // Nothing of this lease is handed out: read it again next time.
                            log.rewind(start);
                            return Err(e);
                        }
                    }
                }
                *read_pos = end;
                leased.insert(id, (start, end));
            }
        }
        let n = items.len() as u64;
        st.ready = st.ready.saturating_sub(n);
        st.leased_items += n;
        Ok(Lease { items, id, bytes })
    }

    /// Confirms a lease: its items are written and leave the queue for good.
    pub fn ack(&self, lease: Lease) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let n = lease.items.len() as u64;
        st.leased_items = st.leased_items.saturating_sub(n);
        let name = &self.name;
        match &mut st.store {
            Store::Memory(_) => {
                st.mem_bytes = st.mem_bytes.saturating_sub(lease.bytes);
                st.mem_leased_oldest.remove(&lease.id);
                if let Some(b) = self.budget.get() {
                    b.release(lease.bytes);
                }
            }
            Store::Disk {
                log,
                leased,
                read_pos,
                pushes,
            } => {
                leased.remove(&lease.id);
                // Everything before the oldest unconfirmed lease (or the read point) is written.
                let commit = leased.values().map(|&(s, _)| s).min().unwrap_or(*read_pos);
                while pushes.front().is_some_and(|&(end, _, _)| end <= commit) {
                    pushes.pop_front();
                }
                if let Err(e) = log.commit(commit) {
                    tracing::warn!(queue = %name, error = %e, "cannot record the queue's commit point; entries may be replayed (harmless)");
                }
            }
        }
        drop(guard);
        self.notify.notify_waiters();
    }

    /// Returns a lease's items to the front of the queue (a writer giving up at shutdown). On
    /// disk they stay in the log and are delivered again by the next process.
    pub fn release(&self, lease: Lease) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let n = lease.items.len() as u64;
        st.leased_items = st.leased_items.saturating_sub(n);
        match &mut st.store {
            Store::Memory(q) => {
                let ms = st.mem_leased_oldest.remove(&lease.id).map_or(now_ms(), |(ms, _)| ms);
                for b in lease.items.into_iter().rev() {
                    q.push_front((b, ms));
                }
                st.ready += n;
            }
            Store::Disk { .. } => {
                // Left unconfirmed on purpose: the cursor stays before it.
            }
        }
    }

    /// Stops accepting pushes; writers drain what is left.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// A snapshot for self-monitoring.
    pub fn stats(&self) -> Stats {
        let st = self.lock();
        let items = st.ready + st.leased_items;
        match &st.store {
            Store::Memory(q) => Stats {
                items,
                bytes: st.mem_bytes,
                disk_bytes: 0,
                oldest_ms: q
                    .front()
                    .map(|&(_, ms)| ms)
                    .into_iter()
                    .chain(st.mem_leased_oldest.values().map(|&(ms, _)| ms))
                    .min(),
            },
            Store::Disk { log, pushes, .. } => Stats {
                items,
                bytes: log.pending_bytes(),
                disk_bytes: log.disk_bytes(),
                oldest_ms: if items > 0 {
                    pushes.front().map(|&(_, ms, _)| ms)
                } else {
                    None
                },
            },
        }
    }
}

/// Counts the pending entries after a reopen (and the oldest enqueue time) without consuming them.
fn count_pending(log: &mut Log) -> io::Result<(u64, u64)> {
    let start = log.read_pos();
    let mut n = 0;
    let mut oldest = u64::MAX;
    while let Some(e) = log.read_next()? {
        n += 1;
        oldest = oldest.min(e.enqueued_ms);
    }
    log.rewind(start);
    Ok((n, if n == 0 { 0 } else { oldest }))
}

#[cfg(test)]
mod tests;
