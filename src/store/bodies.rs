//! Message bodies outside sled, in append-only segment files under `store/bodies/`.
//!
//! Why: sled 0.34 keeps up to 16 values in a leaf node and rewrites whole nodes when it
//! consolidates them; a node larger than a quarter of its segment size (128 KiB) is written
//! as a separate blob file, and the blob files of deleted values are not reliably removed.
//! Measured on the development machine: publishing and acking 8 GiB of 64 KiB persistent
//! messages through one queue left 489 blob files (251 MiB) behind with the queue empty, and
//! the directory kept growing with the volume. So bodies of [`BODY_THRESHOLD`] bytes or more
//! go to segment files here, and the sled record keeps exchange, routing key, properties and a
//! [`BodyRef`] (segment, offset, length). Small bodies stay inline in sled, whose space stays
//! flat under the same churn (about 55 MiB for 2 GiB of 1 KiB messages).
//!
//! Reclaiming space: each segment counts its live bodies. A sealed segment (one no longer
//! appended to) is deleted when its last live body is released: a queue consumed in order
//! frees its segments one after the other without copying anything. Long-lived messages
//! scattered over many segments (a stalled queue sharing segments with a busy one) keep
//! mostly dead files alive; when the dead bytes in sealed segments exceed both the live ones
//! and one segment's size, the store compacts the sparsest segment: its live bodies are
//! copied to the active segment, their records switched to the copies with compare-and-swap,
//! sled is flushed and the filesystem synced, and only then is the old file deleted, so a
//! confirmed body always has a durable copy. Disk use stays within about twice the live data
//! plus a segment.
//!
//! Record layout in a segment: crc32 (u32 LE) of everything after it, body length (u32 LE),
//! tree tag (u8), key length (u16 LE), the key, the body. The key names the sled record that
//! owns the body: compaction walks a segment and asks sled which bodies are still referenced,
//! and a read checks that the bytes it finds belong to the record that asked.
//!
//! Durability: a body is written (`pwrite`) before its sled record, and the group commit's
//! `syncfs` covers these files as well as sled's, so a confirm covers both. A body that never
//! reached the disk (power lost before a sync, so never confirmed) fails its checksum and the
//! message is dropped when read. Segment ids are never reused (the next id is kept in sled),
//! so a lazily removed record that comes back after a crash can never point into a newer file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Bodies of this many bytes or more are kept in segment files rather than inline in sled.
pub const BODY_THRESHOLD: usize = 512;

/// crc32, body length, tag, key length.
const HEADER: usize = 4 + 4 + 1 + 2;

const NEXT_SEGMENT: &[u8] = b"next_segment";

/// Where a body lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRef {
    pub seg: u64,
    pub offset: u64,
    pub len: u32,
}

impl BodyRef {
    pub const ENCODED_LEN: usize = 20;

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut b = [0; Self::ENCODED_LEN];
        b[..8].copy_from_slice(&self.seg.to_be_bytes());
        b[8..16].copy_from_slice(&self.offset.to_be_bytes());
        b[16..].copy_from_slice(&self.len.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<BodyRef> {
        if b.len() != Self::ENCODED_LEN {
            return None;
        }
        Some(BodyRef {
            seg: u64::from_be_bytes(b[..8].try_into().ok()?),
            offset: u64::from_be_bytes(b[8..16].try_into().ok()?),
            len: u32::from_be_bytes(b[16..].try_into().ok()?),
        })
    }
}

/// A body found in a segment during compaction: who owns it.
pub struct SegmentRecord {
    pub body: BodyRef,
    pub tag: u8,
    pub key: Vec<u8>,
}

#[derive(Debug)]
struct Segment {
    file: Arc<File>,
    /// Bytes written.
    size: u64,
    /// Bodies referenced by sled records, and their bytes.
    live: u64,
    live_bytes: u64,
    /// No longer appended to.
    sealed: bool,
    /// Under compaction: a release does not delete it.
    compacting: bool,
    /// A compaction left live bodies in it (unreadable ones): never chosen again.
    stuck: bool,
}

#[derive(Debug)]
struct Inner {
    segments: HashMap<u64, Segment>,
    active: Option<u64>,
    next: u64,
}

/// The segment files of one store.
#[derive(Debug)]
pub struct Bodies {
    dir: PathBuf,
    segment_size: u64,
    meta: sled::Tree,
    inner: Mutex<Inner>,
}

fn io(e: std::io::Error) -> sled::Error {
    sled::Error::Io(e)
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016}.seg"))
}

impl Bodies {
    /// Open the segment directory. Every existing segment starts with no live bodies: the
    /// store's recovery counts them (`note_live`), then `finish_recovery` deletes the unused.
    pub fn open(dir: &Path, segment_size: u64, meta: sled::Tree) -> sled::Result<Bodies> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut segments = HashMap::new();
        let mut next = match meta.get(NEXT_SEGMENT)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
            None => 0,
        };
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let file = File::open(&path).map_err(io)?;
            let size = file.metadata().map_err(io)?.len();
            next = next.max(id + 1);
            segments.insert(
                id,
                Segment {
                    file: Arc::new(file),
                    size,
                    live: 0,
                    live_bytes: 0,
                    sealed: true,
                    compacting: false,
                    stuck: false,
                },
            );
        }
        Ok(Bodies {
            dir: dir.to_path_buf(),
            segment_size: segment_size.max(1),
            meta,
            inner: Mutex::new(Inner {
                segments,
                active: None,
                next,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write a body owned by the sled record `key` of the tree `tag`.
    pub fn append(&self, tag: u8, key: &[u8], body: &[u8]) -> sled::Result<BodyRef> {
        let key_len = u16::try_from(key.len())
            .map_err(|_| sled::Error::Unsupported("key too long for a body record".into()))?;
        let len = u32::try_from(body.len())
            .map_err(|_| sled::Error::Unsupported("body too large".into()))?;
        let mut rec = Vec::with_capacity(HEADER + key.len() + body.len());
        rec.extend_from_slice(&[0; 4]);
        rec.extend_from_slice(&len.to_le_bytes());
        rec.push(tag);
        rec.extend_from_slice(&key_len.to_le_bytes());
        rec.extend_from_slice(key);
        rec.extend_from_slice(body);
        let crc = crc32fast::hash(&rec[4..]);
        rec[..4].copy_from_slice(&crc.to_le_bytes());

        let mut inner = self.lock();
        let full = match inner.active.and_then(|a| inner.segments.get(&a)) {
            Some(s) => s.size > 0 && s.size + rec.len() as u64 > self.segment_size,
            None => true,
        };
        if full {
            self.roll(&mut inner)?;
        }
        let id = inner.active.expect("an active segment after roll");
        let seg = inner.segments.get_mut(&id).expect("the active segment");
        let offset = seg.size;
        seg.file.write_all_at(&rec, offset).map_err(io)?;
        seg.size += rec.len() as u64;
        seg.live += 1;
        seg.live_bytes += len as u64;
        Ok(BodyRef {
            seg: id,
            offset,
            len,
        })
    }

    /// Seal the active segment and start a new one.
    fn roll(&self, inner: &mut Inner) -> sled::Result<()> {
        if let Some(old) = inner.active.take() {
            if let Some(s) = inner.segments.get_mut(&old) {
                s.sealed = true;
            }
            self.reclaim(inner, old);
        }
        let id = inner.next;
        // Recorded before the file exists, so an id is never handed out twice.
        self.meta.insert(NEXT_SEGMENT, &(id + 1).to_be_bytes())?;
        inner.next = id + 1;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(seg_path(&self.dir, id))
            .map_err(io)?;
        inner.segments.insert(
            id,
            Segment {
                file: Arc::new(file),
                size: 0,
                live: 0,
                live_bytes: 0,
                sealed: false,
                compacting: false,
                stuck: false,
            },
        );
        inner.active = Some(id);
        Ok(())
    }

    /// Read a body back; None if it is missing or does not belong to (`tag`, `key`).
    pub fn read(&self, r: BodyRef, tag: u8, key: &[u8]) -> Option<bytes::Bytes> {
        let file = self.lock().segments.get(&r.seg)?.file.clone();
        let mut buf = vec![0; HEADER + key.len() + r.len as usize];
        file.read_exact_at(&mut buf, r.offset).ok()?;
        let crc = u32::from_le_bytes(buf[..4].try_into().ok()?);
        let len = u32::from_le_bytes(buf[4..8].try_into().ok()?);
        let key_len = u16::from_le_bytes(buf[9..11].try_into().ok()?) as usize;
        if crc != crc32fast::hash(&buf[4..])
            || len != r.len
            || buf[8] != tag
            || key_len != key.len()
            || &buf[HEADER..HEADER + key_len] != key
        {
            return None;
        }
        Some(bytes::Bytes::from(buf).slice(HEADER + key_len..))
    }

    /// A record referencing `r` was found at startup.
    pub fn note_live(&self, r: BodyRef) {
        if let Some(s) = self.lock().segments.get_mut(&r.seg) {
            s.live += 1;
            s.live_bytes += r.len as u64;
        }
    }

    /// The record referencing `r` is gone.
    pub fn release(&self, r: BodyRef) {
        let mut inner = self.lock();
        if let Some(s) = inner.segments.get_mut(&r.seg) {
            s.live = s.live.saturating_sub(1);
            s.live_bytes = s.live_bytes.saturating_sub(r.len as u64);
            self.reclaim(&mut inner, r.seg);
        }
    }

    /// Delete a sealed segment nobody references.
    fn reclaim(&self, inner: &mut Inner, id: u64) {
        let Some(s) = inner.segments.get(&id) else {
            return;
        };
        if s.sealed && !s.compacting && s.live == 0 {
            inner.segments.remove(&id);
            if let Err(e) = std::fs::remove_file(seg_path(&self.dir, id)) {
                tracing::warn!(segment = id, error = %e, "cannot delete a body segment");
            }
        }
    }

    /// The segment to compact next, marked as under compaction: the sparsest sealed one, if
    /// the dead bytes in sealed segments exceed both the live ones and one segment's size.
    pub fn compaction_candidate(&self) -> Option<u64> {
        let mut inner = self.lock();
        let sealed = || {
            inner
                .segments
                .iter()
                .filter(|(_, s)| s.sealed && !s.compacting)
        };
        let size: u64 = sealed().map(|(_, s)| s.size).sum();
        let live: u64 = sealed().map(|(_, s)| s.live_bytes).sum();
        let dead = size.saturating_sub(live);
        if dead <= live || dead <= self.segment_size {
            return None;
        }
        let id = sealed()
            .filter(|(_, s)| s.live > 0 && !s.stuck)
            .min_by_key(|(_, s)| s.live_bytes * 1000 / s.size.max(1))
            .map(|(id, _)| *id)?;
        inner.segments.get_mut(&id)?.compacting = true;
        Some(id)
    }

    /// After recovery has counted every reference: drop the segments nothing refers to.
    pub fn finish_recovery(&self) {
        let mut inner = self.lock();
        let ids: Vec<u64> = inner.segments.keys().copied().collect();
        for id in ids {
            self.reclaim(&mut inner, id);
        }
    }

    /// The bodies a sealed segment holds, live or not, in order.
    pub fn records(&self, id: u64) -> sled::Result<Vec<SegmentRecord>> {
        let Some((file, size)) = self
            .lock()
            .segments
            .get(&id)
            .map(|s| (s.file.clone(), s.size))
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut offset = 0u64;
        let mut header = [0u8; HEADER];
        while offset + HEADER as u64 <= size {
            file.read_exact_at(&mut header, offset).map_err(io)?;
            let len = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
            let key_len = u16::from_le_bytes(header[9..11].try_into().unwrap_or_default());
            let end = offset + (HEADER + key_len as usize) as u64 + len as u64;
            if end > size {
                break;
            }
            let mut key = vec![0; key_len as usize];
            file.read_exact_at(&mut key, offset + HEADER as u64)
                .map_err(io)?;
            out.push(SegmentRecord {
                body: BodyRef {
                    seg: id,
                    offset,
                    len,
                },
                tag: header[8],
                key,
            });
            offset = end;
        }
        Ok(out)
    }

    /// Compaction of `id` is over (its moves are durable): delete it if nothing is left in it.
    pub fn finish_compaction(&self, id: u64) {
        let mut inner = self.lock();
        if let Some(s) = inner.segments.get_mut(&id) {
            s.compacting = false;
            if s.live == 0 {
                self.reclaim(&mut inner, id);
            } else {
                s.stuck = true;
                tracing::warn!(segment = id, live = s.live, "bodies left after compaction");
            }
        }
    }

    /// (segment files, bytes on disk), for tests and metrics.
    pub fn usage(&self) -> (usize, u64) {
        let inner = self.lock();
        (
            inner.segments.len(),
            inner.segments.values().map(|s| s.size).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, segment_size: u64) -> Bodies {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Bodies::open(dir, segment_size, db.open_tree("meta").unwrap()).unwrap()
    }

    #[test]
    fn bodies_round_trip_and_refuse_a_foreign_key() {
        let dir = tempdir("rt");
        let b = open(&dir, 1 << 20);
        let r = b.append(1, b"k1", b"hello body").unwrap();
        assert_eq!(&b.read(r, 1, b"k1").unwrap()[..], b"hello body");
        assert!(b.read(r, 1, b"k2").is_none());
        assert!(b.read(r, 2, b"k1").is_none());
        assert_eq!(BodyRef::decode(&r.encode()), Some(r));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sealed_segments_go_when_their_last_body_is_released() {
        let dir = tempdir("gc");
        let b = open(&dir, 100);
        let body = [7u8; 80];
        let refs: Vec<BodyRef> = (0..4u8)
            .map(|i| b.append(1, &[i], &body).unwrap())
            .collect();
        // Each record is bigger than half a segment: one segment per body.
        assert_eq!(b.usage().0, 4);
        for r in &refs[..3] {
            b.release(*r);
        }
        // The three sealed ones are gone; the active one stays while it is appended to.
        assert_eq!(b.usage().0, 1);
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, 1);
        assert_eq!(&b.read(refs[3], 1, &[3]).unwrap()[..], &body[..]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_body_is_not_returned() {
        let dir = tempdir("torn");
        let b = open(&dir, 1 << 20);
        let r = b.append(1, b"k", b"0123456789").unwrap();
        let f = OpenOptions::new()
            .write(true)
            .open(seg_path(&dir, r.seg))
            .unwrap();
        f.write_all_at(b"X", r.offset + HEADER as u64 + 1 + 3)
            .unwrap();
        assert!(b.read(r, 1, b"k").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("warren-bodies-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
