//! An append-only log of byte entries in numbered segment files: the disk half of the queue.
//!
//! Layout of a directory: `NNNNNNNNNNNNNNNNNNNN.seg` segment files and a `cursor` file. An entry is
//! `[u32 payload length][u32 CRC-32 of payload][u64 enqueue time, ms since the Unix epoch][payload]`,
//! little-endian. The cursor holds the position (segment, offset) of the first entry not yet
//! confirmed by the consumer; it is rewritten (write to a temporary file, then rename) as entries
//! are confirmed, and never synced: a stale cursor only replays entries the sink already wrote,
//! and the sink is idempotent.
//!
//! On open, entries from the cursor on are pending again. A torn or corrupt tail (a crash in the
//! middle of an append) is cut off at the last whole entry; what follows a corrupt entry in a
//! middle segment is skipped to the next segment and counted.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const HEADER: usize = 16;
/// Largest single entry; pushes of larger items are refused, and a corrupt length beyond it marks
/// the end of valid data (so a bad length never makes a huge allocation).
pub const MAX_ENTRY: usize = 256 * 1024 * 1024;

/// A position in the log: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Segment number.
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

/// One entry read back.
#[derive(Debug)]
pub struct Entry {
    /// Where it starts.
    pub pos: Pos,
    /// Where the next entry starts.
    pub next: Pos,
    /// Enqueue time, ms since the Unix epoch.
    pub enqueued_ms: u64,
    /// The bytes appended.
    pub payload: Vec<u8>,
}

/// The log. Not synchronized: the queue holds it under its lock.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    segment_bytes: u64,
    /// Segments on disk, oldest first, with their sizes.
    segments: VecDeque<(u64, u64)>,
    writer: File,
    /// Next append position.
    write: Pos,
    /// Next read position.
    read: Pos,
    /// Everything before this is confirmed.
    committed: Pos,
    reader: Option<(u64, BufReader<File>, u64)>,
    /// Finished segments not yet synced (a rotation never syncs under the queue's lock; the
    /// next [`Log::take_unsynced`] hands them to the syncer).
    unsynced: Vec<File>,
    /// A segment file was created since the directory was last synced.
    dir_dirty: bool,
    /// Entries skipped as corrupt when the log was opened.
    pub corrupt_skipped: u64,
}

/// What a sync must cover for everything appended so far to be on disk: the segments finished
/// since the last sync, the current one, and the directory when segments were created. Synced
/// by [`Unsynced::sync`] outside the queue's lock.
#[derive(Debug)]
pub struct Unsynced {
    finished: Vec<File>,
    current: File,
    dir: Option<PathBuf>,
    /// The append position these cover.
    pub upto: Pos,
}

impl Unsynced {
    /// Syncs every file (`fdatasync`) and the directory (`fsync`). On an error, what was not
    /// synced is given back in the error's companion so the next sync tries it again.
    pub fn sync(self) -> Result<(), (io::Error, Vec<File>, bool)> {
        let Unsynced {
            mut finished,
            current,
            dir,
            ..
        } = self;
        while let Some(f) = finished.pop() {
            if let Err(e) = f.sync_data() {
                finished.push(f);
                return Err((e, finished, dir.is_some()));
            }
        }
        if let Err(e) = current.sync_data() {
            return Err((e, finished, dir.is_some()));
        }
        if let Some(d) = &dir {
            if let Err(e) = File::open(d).and_then(|f| f.sync_all()) {
                return Err((e, finished, true));
            }
        }
        Ok(())
    }
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.seg"))
}

fn read_cursor(dir: &Path) -> Option<Pos> {
    let s = fs::read_to_string(dir.join("cursor")).ok()?;
    let (a, b) = s.trim().split_once(':')?;
    Some(Pos {
        segment: a.parse().ok()?,
        offset: b.parse().ok()?,
    })
}

/// Encodes one entry header + payload onto `out`.
pub fn encode_entry(out: &mut Vec<u8>, payload: &[u8], enqueued_ms: u64) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(&enqueued_ms.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads the entry at the reader's position; `Ok(None)` at a clean end, `Err(InvalidData)` for a
/// torn or corrupt entry.
fn read_entry(r: &mut impl Read) -> io::Result<Option<(u64, Vec<u8>)>> {
    let mut h = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        let n = r.read(&mut h[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(io::ErrorKind::InvalidData, "torn entry header"))
            };
        }
        got += n;
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let ts = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    if len > MAX_ENTRY {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "entry length out of range"));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "torn entry payload"))?;
    if crc32fast::hash(&payload) != crc {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "entry checksum mismatch"));
    }
    Ok(Some((ts, payload)))
}

impl Log {
    /// Opens (or creates) the log in `dir`. Entries after the cursor are pending again.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<Log> {
        fs::create_dir_all(dir)?;
        let mut numbers: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        numbers.sort_unstable();
        let cursor = read_cursor(dir);
        let mut segments = VecDeque::new();
        let mut corrupt_skipped = 0;
        // Drop segments wholly before the cursor; validate the rest, cutting a torn tail.
        for (i, &n) in numbers.iter().enumerate() {
            if cursor.is_some_and(|c| n < c.segment) {
                fs::remove_file(seg_path(dir, n))?;
                continue;
            }
            let path = seg_path(dir, n);
            let mut r = BufReader::new(File::open(&path)?);
            let mut valid = 0u64;
            loop {
                match read_entry(&mut r) {
                    Ok(Some((_, p))) => valid += (HEADER + p.len()) as u64,
                    Ok(None) => break,
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                        corrupt_skipped += 1;
                        tracing::warn!(segment = %path.display(), offset = valid, error = %e,
                            "queue log: cut at a torn or corrupt entry");
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            let len = fs::metadata(&path)?.len();
            if valid < len {
                let is_last = i + 1 == numbers.len();
                if is_last {
                    OpenOptions::new().write(true).open(&path)?.set_len(valid)?;
                }
            }
            segments.push_back((n, valid));
        }
        let read = match cursor {
            Some(c) if segments.front().is_some_and(|&(n, _)| n == c.segment) => c,
            _ => Pos {
                segment: segments.front().map_or(0, |&(n, _)| n),
                offset: 0,
            },
        };
        // Always append to a fresh segment: earlier ones may end in a cut tail.
        let next = segments.back().map_or(read.segment, |&(n, _)| n + 1);
        let writer = OpenOptions::new().create(true).append(true).open(seg_path(dir, next))?;
        segments.push_back((next, 0));
        let log = Log {
            dir: dir.to_owned(),
            segment_bytes: segment_bytes.max(1024),
            segments,
            writer,
            write: Pos {
                segment: next,
                offset: 0,
            },
            read,
            committed: read,
            reader: None,
            unsynced: Vec::new(),
            dir_dirty: false,
            corrupt_skipped,
        };
        log.sync_dir()?;
        Ok(log)
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    /// Bytes in every segment still on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|&(_, len)| len).sum()
    }

    /// Bytes appended after `from`.
    fn bytes_after(&self, from: Pos) -> u64 {
        self.segments
            .iter()
            .filter(|&&(n, _)| n >= from.segment)
            .map(|&(n, len)| {
                if n == from.segment {
                    len.saturating_sub(from.offset)
                } else {
                    len
                }
            })
            .sum()
    }

    /// Bytes not yet read.
    pub fn unread_bytes(&self) -> u64 {
        self.bytes_after(self.read)
    }

    /// Bytes not yet confirmed (what the size limit counts; the disk may hold up to one segment
    /// more, until the current segment is finished and deleted).
    pub fn pending_bytes(&self) -> u64 {
        self.bytes_after(self.committed)
    }

    /// Appends pre-encoded entries ([`encode_entry`]) as one write. Returns the position after them.
    pub fn append(&mut self, encoded: &[u8]) -> io::Result<Pos> {
        if self.write.offset > 0 && self.write.offset + encoded.len() as u64 > self.segment_bytes {
            self.rotate()?;
        }
        if let Err(e) = self.writer.write_all(encoded) {
            // A partial write (a full disk) must not stay in front of later entries.
            let _ = self.writer.set_len(self.write.offset);
            return Err(e);
        }
        self.write.offset += encoded.len() as u64;
        if let Some(last) = self.segments.back_mut() {
            last.1 = self.write.offset;
        }
        Ok(self.write)
    }

    fn rotate(&mut self) -> io::Result<()> {
        // No sync here (the caller holds the queue's lock): the finished segment and the new
        // directory entry wait for the next sync, which covers them before it covers anything
        // appended after them.
        let next = self.write.segment + 1;
        let writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(seg_path(&self.dir, next))?;
        self.unsynced.push(std::mem::replace(&mut self.writer, writer));
        self.dir_dirty = true;
        self.segments.push_back((next, 0));
        self.write = Pos {
            segment: next,
            offset: 0,
        };
        Ok(())
    }

    /// What a sync must cover so that everything appended until now is on disk (taken over by
    /// the caller, who syncs it outside the queue's lock).
    pub fn take_unsynced(&mut self) -> io::Result<Unsynced> {
        Ok(Unsynced {
            current: self.writer.try_clone()?,
            finished: std::mem::take(&mut self.unsynced),
            dir: std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone()),
            upto: self.write,
        })
    }

    /// Gives back what a failed sync did not cover, for the next sync to try again.
    pub fn give_back(&mut self, finished: Vec<File>, dir: bool) {
        self.unsynced.extend(finished);
        self.dir_dirty |= dir;
    }

    /// Where the next read starts.
    pub fn read_pos(&self) -> Pos {
        self.read
    }

    /// Where the next append goes.
    pub fn write_pos(&self) -> Pos {
        self.write
    }

    /// Moves the read position back to `pos` (an earlier [`Log::read_pos`]).
    pub fn rewind(&mut self, pos: Pos) {
        self.read = pos;
        self.reader = None;
    }

    /// Reads the next unread entry, or `None` when everything written has been read.
    pub fn read_next(&mut self) -> io::Result<Option<Entry>> {
        loop {
            if self.read >= self.write {
                return Ok(None);
            }
            let seg_len = self
                .segments
                .iter()
                .find(|&&(n, _)| n == self.read.segment)
                .map(|&(_, len)| len);
            let Some(seg_len) = seg_len else {
                // Segment gone (should not happen): move on.
                self.advance_segment();
                continue;
            };
            if self.read.offset >= seg_len {
                if self.read.segment >= self.write.segment {
                    return Ok(None);
                }
                self.advance_segment();
                continue;
            }
            let reader = match &mut self.reader {
                Some((n, r, off)) if *n == self.read.segment && *off == self.read.offset => r,
                _ => {
                    let mut f = File::open(seg_path(&self.dir, self.read.segment))?;
                    f.seek(SeekFrom::Start(self.read.offset))?;
                    self.reader = Some((
                        self.read.segment,
                        BufReader::with_capacity(256 * 1024, f),
                        self.read.offset,
                    ));
                    match &mut self.reader {
                        Some((_, r, _)) => r,
                        None => unreachable!("just set"),
                    }
                }
            };
            match read_entry(reader) {
                Ok(Some((ts, payload))) => {
                    let pos = self.read;
                    self.read.offset += (HEADER + payload.len()) as u64;
                    if let Some((_, _, off)) = &mut self.reader {
                        *off = self.read.offset;
                    }
                    return Ok(Some(Entry {
                        pos,
                        next: self.read,
                        enqueued_ms: ts,
                        payload,
                    }));
                }
                Ok(None) => {
                    self.read.offset = seg_len;
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    tracing::warn!(segment = self.read.segment, offset = self.read.offset, error = %e,
                        "queue log: corrupt entry, skipping the rest of the segment");
                    self.corrupt_skipped += 1;
                    self.read.offset = seg_len;
                }
                Err(e) => {
                    self.reader = None;
                    return Err(e);
                }
            }
        }
    }

    fn advance_segment(&mut self) {
        let next = self.segments.iter().map(|&(n, _)| n).find(|&n| n > self.read.segment);
        self.read = Pos {
            segment: next.unwrap_or(self.write.segment),
            offset: 0,
        };
        self.reader = None;
    }

    /// Records that every entry before `pos` is written downstream: rewrites the cursor and
    /// deletes segments wholly before it.
    pub fn commit(&mut self, pos: Pos) -> io::Result<()> {
        while let Some(&(n, _)) = self.segments.front() {
            if n < pos.segment && n != self.write.segment {
                self.segments.pop_front();
                fs::remove_file(seg_path(&self.dir, n))?;
            } else {
                break;
            }
        }
        self.committed = pos;
        let tmp = self.dir.join("cursor.tmp");
        fs::write(&tmp, format!("{}:{}\n", pos.segment, pos.offset))?;
        fs::rename(tmp, self.dir.join("cursor"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("llmhub-log-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn append(log: &mut Log, payloads: &[&[u8]]) -> Pos {
        let mut buf = Vec::new();
        for p in payloads {
            encode_entry(&mut buf, p, 7);
        }
        log.append(&buf).unwrap()
    }

    #[test]
    fn entries_come_back_in_order_across_segments_and_reopen() {
        let d = tmpdir("order");
        let mut log = Log::open(&d, 1024).unwrap();
        for i in 0..100u32 {
            append(&mut log, &[format!("entry-{i:03}-{}", "x".repeat(40)).as_bytes()]);
        }
        assert!(log.segments.len() > 3, "small segments rotate");
        let mut seen = Vec::new();
        let mut commit_at = Pos::default();
        for _ in 0..40 {
            let e = log.read_next().unwrap().unwrap();
            assert_eq!(e.enqueued_ms, 7);
            seen.push(String::from_utf8(e.payload).unwrap());
            commit_at = e.next;
        }
        log.commit(commit_at).unwrap();
        drop(log);
        // Reopen: the 60 unconfirmed entries are pending again, in order.
        let mut log = Log::open(&d, 1024).unwrap();
        while let Some(e) = log.read_next().unwrap() {
            seen.push(String::from_utf8(e.payload).unwrap());
        }
        let want: Vec<String> = (0..100).map(|i| format!("entry-{i:03}-{}", "x".repeat(40))).collect();
        assert_eq!(seen, want);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn torn_tail_is_cut_and_appends_continue() {
        let d = tmpdir("torn");
        let mut log = Log::open(&d, 1 << 20).unwrap();
        append(&mut log, &[b"one", b"two"]);
        let seg = log.write.segment;
        drop(log);
        // Simulate a crash mid-append: half an entry at the end.
        let mut half = Vec::new();
        encode_entry(&mut half, b"three-is-torn", 1);
        let mut f = OpenOptions::new().append(true).open(seg_path(&d, seg)).unwrap();
        f.write_all(&half[..half.len() - 4]).unwrap();
        drop(f);
        let mut log = Log::open(&d, 1 << 20).unwrap();
        assert_eq!(log.corrupt_skipped, 1);
        append(&mut log, &[b"four"]);
        let mut got = Vec::new();
        while let Some(e) = log.read_next().unwrap() {
            got.push(e.payload);
        }
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec(), b"four".to_vec()]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn flipped_byte_is_detected_by_the_checksum() {
        let d = tmpdir("crc");
        let mut log = Log::open(&d, 1 << 20).unwrap();
        append(&mut log, &[b"good", b"evil"]);
        let seg = log.write.segment;
        drop(log);
        let path = seg_path(&d, seg);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let mut log = Log::open(&d, 1 << 20).unwrap();
        let mut got = Vec::new();
        while let Some(e) = log.read_next().unwrap() {
            got.push(e.payload);
        }
        assert_eq!(got, vec![b"good".to_vec()]);
        let _ = fs::remove_dir_all(&d);
    }

    /// A crash can leave any prefix of an entry at the end: a header cut short, or garbage whose
    /// length field is absurd. Both are cut like a torn payload, and appends continue after the
    /// last whole entry.
    #[test]
    fn a_torn_header_or_an_absurd_length_is_cut_and_appends_continue() {
        let mut absurd = Vec::new();
        absurd.extend_from_slice(&u32::MAX.to_le_bytes());
        absurd.extend_from_slice(&[0u8; HEADER - 4]);
        for (name, garbage) in [("header", vec![1u8; 7]), ("length", absurd)] {
            let d = tmpdir(&format!("cut-{name}"));
            let mut log = Log::open(&d, 1 << 20).unwrap();
            append(&mut log, &[b"one", b"two"]);
            let seg = log.write.segment;
            drop(log);
            let path = seg_path(&d, seg);
            let whole = fs::metadata(&path).unwrap().len();
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(&garbage).unwrap();
            drop(f);
            let mut log = Log::open(&d, 1 << 20).unwrap();
            assert_eq!(log.corrupt_skipped, 1, "{name}");
            assert_eq!(
                fs::metadata(&path).unwrap().len(),
                whole,
                "{name}: cut back to the whole entries"
            );
            append(&mut log, &[b"four"]);
            let mut got = Vec::new();
            while let Some(e) = log.read_next().unwrap() {
                got.push(e.payload);
            }
            assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec(), b"four".to_vec()], "{name}");
            let _ = fs::remove_dir_all(&d);
        }
    }

    /// A corrupt entry in a segment that is not the last one (a bad sector, not a crash): that
    /// segment is read up to the corrupt entry and left as it is on disk, and every later segment
    /// is read whole.
    #[test]
    fn a_corrupt_entry_in_an_older_segment_loses_only_the_rest_of_that_segment() {
        let d = tmpdir("older");
        let mut log = Log::open(&d, 1024).unwrap();
        let payloads: Vec<String> = (0..60).map(|i| format!("entry-{i:03}-{}", "x".repeat(40))).collect();
        for p in &payloads {
            append(&mut log, &[p.as_bytes()]);
        }
        let first = log.segments.front().unwrap().0;
        assert!(log.segments.len() >= 3, "small segments rotate");
        drop(log);
        // Entries in the first segment, counted by reading it independently of `open`.
        let path = seg_path(&d, first);
        let mut bytes = fs::read(&path).unwrap();
        let mut in_first = 0;
        let mut r = &bytes[..];
        while read_entry(&mut r).unwrap().is_some() {
            in_first += 1;
        }
        assert!(in_first > 3, "{in_first} entries in the first segment");
        // Flip a payload byte of its third entry.
        let entry = HEADER + payloads[0].len();
        bytes[2 * entry + HEADER + 1] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let mut log = Log::open(&d, 1024).unwrap();
        assert_eq!(log.corrupt_skipped, 1);
        assert_eq!(fs::read(&path).unwrap(), bytes, "an older segment is not truncated");
        let mut got = Vec::new();
        while let Some(e) = log.read_next().unwrap() {
            got.push(String::from_utf8(e.payload).unwrap());
        }
        let want: Vec<String> = payloads[..2].iter().chain(&payloads[in_first..]).cloned().collect();
        assert_eq!(got, want);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn commit_deletes_consumed_segments() {
        let d = tmpdir("gc");
        let mut log = Log::open(&d, 1024).unwrap();
        for _ in 0..50 {
            append(&mut log, &[&[1u8; 100]]);
        }
        let before = log.disk_bytes();
        let mut last = Pos::default();
        while let Some(e) = log.read_next().unwrap() {
            last = e.next;
        }
        log.commit(last).unwrap();
        assert!(log.disk_bytes() < before / 4, "{} of {before} left", log.disk_bytes());
        assert_eq!(log.unread_bytes(), 0);
        let _ = fs::remove_dir_all(&d);
    }
}
