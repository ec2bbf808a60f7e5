//! Files out and back in: atomic writes, and CSV through the row structs.
//!
//! Every file is written to a temporary name beside its target and renamed into place, so
//! a reader (or an interrupted suite) never sees half a file. Exporters are pure functions
//! from rows to bytes; this file does the I/O.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sigprop_spec::error::RunnerError;

use crate::rows::{ConfigKey, GridRow};

/// Nanoseconds this process spent writing files.
static WRITE_NANOS: AtomicU64 = AtomicU64::new(0);

/// Seconds this process has spent writing files (records, CSVs, manifest, report), summed
/// over its threads: the manifest's `write_s`.
pub fn write_seconds() -> f64 {
    WRITE_NANOS.load(Ordering::Relaxed) as f64 * 1e-9
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunnerError> {
    timed_write(|| write_atomic_untimed(path, bytes))
}

/// Run `write`, adding its time to [`write_seconds`].
pub fn timed_write<T>(write: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let done = write();
    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    WRITE_NANOS.fetch_add(nanos, Ordering::Relaxed);
    done
}

fn write_atomic_untimed(path: &Path, bytes: &[u8]) -> Result<(), RunnerError> {
    use std::io::Write;
    let io = |action, source| RunnerError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    // A temporary of a random name beside the target (processes of several machines
    // writing one shared folder never share one), renamed into place: a killed process
    // leaves the old file or the new one, whole. No fsync: it would cost a tiny network's
    // run as much as the run itself, and what a machine crash can leave (an empty renamed
    // record) is what `--resume` reruns.
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let prefix = format!(".{name}.");
    let mut tmp = new_file_builder(&prefix, ".tmp")
        .tempfile_in(dir.unwrap_or(Path::new(".")))
        .map_err(|e| io("writing", e))?;
    tmp.write_all(bytes).map_err(|e| io("writing", e))?;
    tmp.persist(path).map_err(|e| io("writing", e.error))?;
    Ok(())
}

/// A builder of uniquely named new files `<prefix><random><suffix>`, with the mode of any
/// created file (0666 less the umask), not tempfile's private 0600: a folder of results is
/// for the group and the merge job to read.
pub fn new_file_builder<'a>(prefix: &'a str, suffix: &'a str) -> tempfile::Builder<'a, 'a> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
}

/// CSV bytes of `(key, row)` pairs: configuration columns first, then the row's.
pub fn keyed_csv<R: Serialize>(rows: &[(ConfigKey, R)]) -> Result<Vec<u8>, RunnerError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for (k, r) in rows {
        w.serialize((k, r))
            .map_err(|e| RunnerError::Plot(format!("csv: {e}")))?;
    }
    w.into_inner()
        .map_err(|e| RunnerError::Plot(format!("csv: {e}")))
}

/// CSV bytes of plain rows.
pub fn plain_csv<R: Serialize>(rows: &[R]) -> Result<Vec<u8>, RunnerError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)
            .map_err(|e| RunnerError::Plot(format!("csv: {e}")))?;
    }
    w.into_inner()
        .map_err(|e| RunnerError::Plot(format!("csv: {e}")))
}

/// `grid.csv`'s bytes: the rows, or the header alone when nothing was swept, so that the
/// file always names its columns.
pub fn grid_csv(rows: &[GridRow]) -> Result<Vec<u8>, RunnerError> {
    if rows.is_empty() {
        return Ok(b"config,key,value\n".to_vec());
    }
    plain_csv(rows)
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>, RunnerError> {
    csv::Reader::from_path(path).map_err(|e| RunnerError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

fn bad_row(path: &Path, e: csv::Error) -> RunnerError {
    RunnerError::input(format!("{}: {e}", path.display()))
}

/// Read `(key, row)` pairs written by [`keyed_csv`].
pub fn read_keyed<R: DeserializeOwned>(path: &Path) -> Result<Vec<(ConfigKey, R)>, RunnerError> {
    let mut rd = reader(path)?;
    let headers = rd.headers().map_err(|e| bad_row(path, e))?.clone();
    rd.records()
        .map(|rec| {
            let rec = rec.map_err(|e| bad_row(path, e))?;
            let k: ConfigKey = rec
                .deserialize(Some(&headers))
                .map_err(|e| bad_row(path, e))?;
            let r: R = rec
                .deserialize(Some(&headers))
                .map_err(|e| bad_row(path, e))?;
            Ok((k, r))
        })
        .collect()
}

/// Read plain rows written by [`plain_csv`].
pub fn read_plain<R: DeserializeOwned>(path: &Path) -> Result<Vec<R>, RunnerError> {
    let mut rd = reader(path)?;
    rd.deserialize()
        .map(|r| r.map_err(|e| bad_row(path, e)))
        .collect()
}
