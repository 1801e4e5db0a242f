//! The archive of deleted months (README, "Keeping and deleting data"): one
//! gzip-compressed JSON-lines file per month and run,
//! `events-2026-01.jsonl.gz` (then `events-2026-01.2.jsonl.gz`, … when a
//! month's kept rows go later), one event per line with the columns of
//! `events` as keys (`fields` as JSON), and beside it a manifest,
//! `events-2026-01.manifest.json`, with the file's SHA-256, its row count
//! and id range. A file is written under a temporary name, synced (every
//! megabyte as it grows, and at the end), then renamed, and its manifest
//! written and synced after it: a manifest names only a complete file.
//! Rows are deleted only after the file was read back against its manifest
//! ([`verify`]), by the ids read from it ([`ids`]).

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::tables::events::EventRow;

/// The manifest's `format`: what reads it knows the layout by.
pub const FORMAT: &str = "freedompay-receiver events archive v1";

/// What a manifest says of its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// The file's name, in the manifest's directory.
    pub file: String,
    /// `2026-01`.
    pub month: String,
    pub rows: u64,
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
    /// Lowercase hex SHA-256 of the compressed file.
    pub sha256: String,
    /// When it was written (RFC 3339).
    pub written_at: String,
}

/// Why an archive does not hold what its manifest says.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, io::Error),
    #[error("{0}: not a manifest of this service: {1}")]
    Manifest(PathBuf, String),
    #[error("{file}: SHA-256 {found}, the manifest says {expected}")]
    Checksum {
        file: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{file}: {found} rows, the manifest says {expected}")]
    Rows {
        file: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{file}: line {line} is not an event: {why}")]
    Line {
        file: PathBuf,
        line: u64,
        why: String,
    },
}

/// Checks that `dir` exists (made if missing) and takes a new file, before
/// anything is read or deleted: a run that could not archive stops here.
pub fn check_writable(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let probe = dir.join(".retention-probe");
    let mut file = File::create(&probe)?;
    file.write_all(b"probe")?;
    file.sync_all()?;
    fs::remove_file(probe)
}

/// A month's archive being written.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    month: String,
    name: String,
    partial: PathBuf,
    encoder: GzEncoder<BufWriter<File>>,
    rows: u64,
    first_id: Option<i64>,
    last_id: Option<i64>,
    line: Vec<u8>,
    /// How much of the file is known to be on disk ([`SYNC_EVERY`]).
    synced: u64,
}

/// The file is synced each time this much more was written to it, not only
/// at the end: the callbacks' commits sync too, and on a journalling file
/// system one waits behind whatever the archive's sync is writing. One sync
/// of a whole month's file (80-100 MB for a month of 1,000,000 events) made
/// them wait 60 ms on SQLite at the end of the bench's archiving; a sync
/// every 8 MB, up to 98 ms on a slower day (BENCHMARKS.md). A megabyte is
/// a few milliseconds of any disk.
const SYNC_EVERY: u64 = 1 << 20;

/// How often (in rows) the file's size is looked at for [`SYNC_EVERY`].
const SIZE_EVERY_ROWS: u64 = 1024;

impl Writer {
    /// Starts the archive of `month` (`2026-01`) in `dir`, under the first
    /// name no earlier run took.
    pub fn create(dir: &Path, month: &str) -> io::Result<Writer> {
        let mut n = 1;
        let name = loop {
            let name = if n == 1 {
                format!("events-{month}.jsonl.gz")
            } else {
                format!("events-{month}.{n}.jsonl.gz")
            };
            if !dir.join(&name).exists() && !dir.join(manifest_name(&name)).exists() {
                break name;
            }
            n += 1;
        };
        let partial = dir.join(format!("{name}.partial"));
        let file = File::create(&partial)?;
        Ok(Writer {
            dir: dir.to_owned(),
            month: month.to_owned(),
            name,
            partial,
            // The fastest level: an archive runs beside the callbacks on the
            // same cores, so its CPU is what they wait for. The bench's month
            // of 1,000,000 events: 81-95 MB against 61-71 MB at the default
            // level; with paged reads, archived in 18 s instead of 25-34 s.
            encoder: GzEncoder::new(BufWriter::new(file), Compression::fast()),
            rows: 0,
            first_id: None,
            last_id: None,
            line: Vec::new(),
            synced: 0,
        })
    }

    /// Appends one event as a line.
    pub fn write(&mut self, event: &EventRow) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, event)?;
        self.line.push(b'\n');
        self.encoder.write_all(&self.line)?;
        self.rows += 1;
        self.first_id.get_or_insert(event.id);
        self.last_id = Some(event.id);
        if self.rows.is_multiple_of(SIZE_EVERY_ROWS) {
            let file = self.encoder.get_ref().get_ref();
            let written = file.metadata()?.len();
            if written - self.synced.min(written) >= SYNC_EVERY {
                file.sync_data()?;
                self.synced = written;
            }
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Completes the file (synced, renamed) and writes its manifest;
    /// returns the manifest's path.
    pub fn finish(self) -> io::Result<PathBuf> {
        let buffered = self.encoder.finish()?;
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        let path = self.dir.join(&self.name);
        fs::rename(&self.partial, &path)?;
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            file: self.name.clone(),
            month: self.month,
            rows: self.rows,
            first_id: self.first_id,
            last_id: self.last_id,
            sha256: sha256_of(&path)?,
            written_at: chrono::Utc::now().to_rfc3339(),
        };
        let manifest_path = self.dir.join(manifest_name(&self.name));
        let mut out = File::create(&manifest_path)?;
        serde_json::to_writer_pretty(&mut out, &manifest)?;
        out.write_all(b"\n")?;
        out.sync_all()?;
        sync_dir(&self.dir)?;
        Ok(manifest_path)
    }

    /// Gives up: the partial file is removed (nothing was deleted for it).
    pub fn abandon(self) {
        let _ = fs::remove_file(&self.partial);
    }
}

/// `events-2026-01.manifest.json` for `events-2026-01.jsonl.gz`.
pub fn manifest_name(file: &str) -> String {
    format!("{}.manifest.json", file.trim_end_matches(".jsonl.gz"))
}

fn sha256_of(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Reads a manifest.
pub fn read_manifest(path: &Path) -> Result<Manifest, VerifyError> {
    let text = fs::read_to_string(path).map_err(|e| VerifyError::Io(path.to_owned(), e))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| VerifyError::Manifest(path.to_owned(), e.to_string()))?;
    if manifest.format != FORMAT || manifest.file.contains(['/', '\\']) {
        return Err(VerifyError::Manifest(
            path.to_owned(),
            format!("format {:?}, file {:?}", manifest.format, manifest.file),
        ));
    }
    Ok(manifest)
}

/// Re-reads the file a manifest names: its checksum, and every line an
/// event with an id, as many as the manifest says. Returns the manifest.
pub fn verify(manifest_path: &Path) -> Result<Manifest, VerifyError> {
    let manifest = read_manifest(manifest_path)?;
    let file = manifest_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&manifest.file);
    let found = sha256_of(&file).map_err(|e| VerifyError::Io(file.clone(), e))?;
    if found != manifest.sha256 {
        return Err(VerifyError::Checksum {
            file,
            expected: manifest.sha256,
            found,
        });
    }
    let mut rows = 0;
    for_each_id(&file, |_| rows += 1)?;
    if rows != manifest.rows {
        return Err(VerifyError::Rows {
            file,
            expected: manifest.rows,
            found: rows,
        });
    }
    Ok(manifest)
}

/// The ids of the events a (verified) archive holds, in file order.
pub fn ids(manifest_path: &Path) -> Result<Vec<i64>, VerifyError> {
    let manifest = read_manifest(manifest_path)?;
    let file = manifest_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&manifest.file);
    let mut ids = Vec::new();
    for_each_id(&file, |id| ids.push(id))?;
    Ok(ids)
}

/// Every manifest in `dir`, by name.
pub fn manifests(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("events-") && n.ends_with(".manifest.json"))
        })
        .collect();
    found.sort();
    Ok(found)
}

fn for_each_id(file: &Path, mut each: impl FnMut(i64)) -> Result<(), VerifyError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let opened = File::open(file).map_err(|e| VerifyError::Io(file.to_owned(), e))?;
    let reader = BufReader::new(GzDecoder::new(opened));
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| VerifyError::Io(file.to_owned(), e))?;
        let event: Id = serde_json::from_str(&line).map_err(|e| VerifyError::Line {
            file: file.to_owned(),
            line: n as u64 + 1,
            why: e.to_string(),
        })?;
        each(event.id);
    }
    Ok(())
}
