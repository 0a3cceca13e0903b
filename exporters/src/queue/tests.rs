use super::*;
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("llmhub-queue-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn items(range: std::ops::Range<u32>) -> Vec<Bytes> {
    range.map(|i| Bytes::from(format!("item-{i:05}"))).collect()
}

fn disk(d: &std::path::Path, durability: Durability) -> QueueConfig {
    QueueConfig {
        directory: Some(d.to_owned()),
        durability,
        segment_bytes: 4096,
        ..QueueConfig::default()
    }
}

#[tokio::test]
async fn memory_queue_refuses_past_its_limit_and_accepts_again_after_acks() {
    let cfg = QueueConfig {
        max_memory_bytes: 10 * (10 + 48),
        ..QueueConfig::default()
    };
    let q = Queue::open("mem", &cfg).unwrap();
    q.admit().unwrap();
    q.push(items(0..10)).await.unwrap();
    match q.admit() {
        Err(PushError::Full { limit, .. }) => assert_eq!(limit, 580),
        other => panic!("expected Full, got {other:?}"),
    }
    let stop = CancellationToken::new();
    let lease = q.pop(4, Duration::ZERO, &stop).await.unwrap().unwrap();
    assert_eq!(lease.items, items(0..4));
    // Leased but unconfirmed items still hold their memory.
    assert!(q.admit().is_err());
    q.ack(lease);
    q.admit().unwrap();
    q.push(items(10..14)).await.unwrap();
    assert_eq!(q.stats().items, 10);
}

#[tokio::test]
async fn pop_waits_for_linger_then_returns_a_partial_lease() {
    let q = Queue::open("linger", &QueueConfig::default()).unwrap();
    q.push(items(0..3)).await.unwrap();
    let stop = CancellationToken::new();
    let t = tokio::time::Instant::now();
    let lease = q.pop(100, Duration::from_millis(150), &stop).await.unwrap().unwrap();
    assert_eq!(lease.items.len(), 3);
    assert!(t.elapsed() >= Duration::from_millis(140), "{:?}", t.elapsed());
    stop.cancel();
    assert!(q.pop(100, Duration::from_secs(5), &stop).await.unwrap().is_none());
}

#[tokio::test]
async fn disk_queue_replays_exactly_the_unconfirmed_items_after_reopen() {
    let d = dir("replay");
    let stop = CancellationToken::new();
    {
        let q = Queue::open("sink", &disk(&d, Durability::Wal)).unwrap();
        for k in 0..20 {
            q.push(items(k * 50..(k + 1) * 50)).await.unwrap();
        }
        assert_eq!(q.stats().items, 1000);
        assert!(q.stats().oldest_ms.is_some());
        // Three leases; confirm the first and the third, leave the second unconfirmed.
        let a = q.pop(300, Duration::ZERO, &stop).await.unwrap().unwrap();
        let b = q.pop(300, Duration::ZERO, &stop).await.unwrap().unwrap();
        let c = q.pop(300, Duration::ZERO, &stop).await.unwrap().unwrap();
        assert_eq!(b.items[0], Bytes::from("item-00300"));
        q.ack(a);
        q.ack(c);
        assert_eq!(q.stats().items, 400);
        // Dropped without confirming b: a crash.
    }
    let q = Queue::open("sink", &disk(&d, Durability::Wal)).unwrap();
    let mut got = Vec::new();
    stop.cancel();
    while let Some(l) = q.pop(1000, Duration::ZERO, &stop).await.unwrap() {
        got.extend(l.items.iter().cloned());
        q.ack(l);
    }
    // Everything from b's start on comes back (c again too: at-least-once, the sink is idempotent).
    assert_eq!(got, items(300..1000));
    drop(q);
    let q = Queue::open("sink", &disk(&d, Durability::None)).unwrap();
    assert_eq!(q.stats().items, 0, "confirmed items are not replayed");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn disk_queue_refuses_past_max_disk_bytes() {
    let d = dir("full");
    let cfg = QueueConfig {
        max_disk_bytes: 8192,
        ..disk(&d, Durability::None)
    };
    let q = Queue::open("sink", &cfg).unwrap();
    let big: Vec<Bytes> = (0..10).map(|_| Bytes::from(vec![7u8; 500])).collect();
    q.push(big.clone()).await.unwrap();
    q.admit().unwrap();
    q.push(big.clone()).await.unwrap();
    assert!(matches!(q.admit(), Err(PushError::Full { .. })));
    let stop = CancellationToken::new();
    let l = q.pop(100, Duration::ZERO, &stop).await.unwrap().unwrap();
    q.ack(l);
    q.admit().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn concurrent_wal_pushes_and_writers_lose_and_invent_nothing() {
    let d = dir("concurrent");
    let q = Queue::open("sink", &disk(&d, Durability::Wal)).unwrap();
    let stop = CancellationToken::new();
    let mut writers = Vec::new();
    for _ in 0..3 {
        let q = q.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(l) = q.pop(37, Duration::from_millis(5), &stop).await.unwrap() {
                got.extend(l.items.iter().cloned());
                q.ack(l);
            }
            got
        }));
    }
    let mut pushers = Vec::new();
    for p in 0..8u32 {
        let q = q.clone();
        pushers.push(tokio::spawn(async move {
            for k in 0..25u32 {
                let base = p * 10_000 + k * 10;
                q.push(items(base..base + 10)).await.unwrap();
            }
        }));
    }
    for p in pushers {
        p.await.unwrap();
    }
    while q.stats().items > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await.unwrap());
    }
    all.sort();
    let mut want: Vec<Bytes> = (0..8u32).flat_map(|p| items(p * 10_000..p * 10_000 + 250)).collect();
    want.sort();
    assert_eq!(all, want);
    assert!(q.stats().disk_bytes < 3 * 4096, "consumed segments are deleted");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn closed_queue_refuses_and_writers_drain() {
    let q = Queue::open("closing", &QueueConfig::default()).unwrap();
    q.push(items(0..5)).await.unwrap();
    q.close();
    assert!(matches!(q.admit(), Err(PushError::Closed(_))));
    // What was admitted before the close is still taken.
    q.push(items(5..6)).await.unwrap();
    let stop = CancellationToken::new();
    let l = q.pop(100, Duration::from_secs(10), &stop).await.unwrap().unwrap();
    assert_eq!(l.items.len(), 6);
    q.ack(l);
    // Closed and empty, writers keep waiting (a late admitted push may still come) until stopped.
    let waiting = tokio::time::timeout(Duration::from_millis(200), q.pop(100, Duration::from_secs(10), &stop)).await;
    assert!(waiting.is_err(), "a writer stays until stop");
    q.push(items(6..7)).await.unwrap();
    let late = q.pop(100, Duration::from_secs(10), &stop).await.unwrap().unwrap();
    assert_eq!(late.items, items(6..7));
    q.ack(late);
    stop.cancel();
    assert!(q.pop(100, Duration::from_secs(10), &stop).await.unwrap().is_none());
}
