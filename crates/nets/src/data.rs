//! Real inputs (`--inputs FILE`): a file of samples, read once per process, and each
//! seed's batch drawn from it by the seed, in place of the Gaussian inputs.
//!
//! Formats: NumPy `.npy` (float, integer or unsigned, C order) and `.npz` (the array `x`,
//! else its only array), MNIST's IDX files (`*-ubyte`, `*.idx*`: unsigned bytes, integers
//! or floats), CIFAR-10's binary batches (`.bin`: records of a label byte and 3 x 32 x 32
//! pixel bytes; the label is dropped), and CSV (numbers only; a first row that is not all
//! numbers is a header). The first axis is the samples; the rest is one sample's shape,
//! flattened row-major into the features a network reads (`[C, H, W]` as a CNN's image).
//! Values are taken as they are (pixels 0..255) unless `--standardize` is given.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::error::NetError;
use crate::inputs::uniform_draws;

/// What `--inputs` reads, as a network's configuration records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// The file, as given.
    pub path: String,
    /// Standardized per channel (samples of shape `[C, H, W]`: over the samples and
    /// pixels of each channel) or per feature (any other shape), to mean 0 and variance 1
    /// over the whole file.
    #[serde(default)]
    pub standardize: bool,
    /// FNV-1a 64 of the file's bytes (hex): a run's identity changes with the file's content.
    pub digest: String,
}

/// The samples of a file, in f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// One sample's shape (the file's axes after the first).
    pub shape: Vec<usize>,
    /// `samples x features` values, row-major.
    pub data: Vec<f32>,
}

impl Dataset {
    /// Values per sample.
    pub fn features(&self) -> usize {
        self.shape.iter().product::<usize>().max(1)
    }

    /// Samples in the file.
    pub fn samples(&self) -> usize {
        self.data.len() / self.features()
    }
}

/// What `--inputs` takes.
pub const INPUTS_ALLOWED: &str = "a readable .npy, .npz, .csv, CIFAR-10 .bin or MNIST IDX \
                                  (*-ubyte, *.idx*) file of samples";

fn bad(path: &str, why: impl std::fmt::Display) -> NetError {
    NetError::BadConfig {
        key: "inputs",
        value: path.to_string(),
        allowed: format!("{INPUTS_ALLOWED} ({why})"),
    }
}

impl InputFile {
    /// The file `path`, checked: it reads as a dataset of at least one sample, and its
    /// digest is taken.
    pub fn open(path: &str, standardize: bool) -> Result<InputFile, NetError> {
        let bytes = std::fs::read(path).map_err(|e| bad(path, e))?;
        let digest = format!("{:016x}", digest_of(&bytes));
        let file = InputFile {
            path: path.to_string(),
            standardize,
            digest,
        };
        file.dataset()?;
        Ok(file)
    }

    /// The dataset, read (and standardized) once per process and shared.
    pub fn dataset(&self) -> Result<Arc<Dataset>, NetError> {
        type Cache = Mutex<HashMap<(String, bool, String), Arc<Dataset>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let key = (self.path.clone(), self.standardize, self.digest.clone());
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(d) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(d);
        }
        let bytes = std::fs::read(&self.path).map_err(|e| bad(&self.path, e))?;
        if format!("{:016x}", digest_of(&bytes)) != self.digest {
            return Err(bad(&self.path, "it changed since the run was configured"));
        }
        let mut d = parse(&self.path, &bytes)?;
        if d.samples() == 0 {
            return Err(bad(&self.path, "it holds no sample"));
        }
        if let Some(v) = d.data.iter().find(|v| !v.is_finite()) {
            return Err(bad(&self.path, format!("it holds a non-finite value, {v}")));
        }
        if self.standardize {
            standardize(&mut d);
        }
        let d = Arc::new(d);
        if let Ok(mut c) = cache.lock() {
            c.insert(key, d.clone());
        }
        Ok(d)
    }

    /// The dataset, checked for batches of `[rows, features]`: samples of `features`
    /// values, at least `rows` of them.
    pub fn fitting(&self, rows: usize, features: usize) -> Result<Arc<Dataset>, NetError> {
        let d = self.dataset()?;
        if d.features() != features {
            return Err(NetError::BadConfig {
                key: "inputs",
                value: self.path.clone(),
                allowed: format!(
                    "samples of {features} values, as the network reads them at these sizes \
                     (the file's have {}, shape {:?})",
                    d.features(),
                    d.shape
                ),
            });
        }
        if rows > d.samples() {
            return Err(NetError::BadConfig {
                key: "batch",
                value: rows.to_string(),
                allowed: format!("at most the {} samples of {}", d.samples(), self.path),
            });
        }
        Ok(d)
    }

    /// `rows` samples drawn without replacement by the key `(seed, key)` (a partial
    /// Fisher-Yates shuffle of the file's samples), flattened row-major: the batch of
    /// `[rows, features]` a network reads.
    pub fn batch(
        &self,
        seed: u64,
        key: &str,
        rows: usize,
        features: usize,
    ) -> Result<Vec<f32>, NetError> {
        let d = self.fitting(rows, features)?;
        let n = d.samples();
        let u = uniform_draws(seed, key, rows)?;
        let mut order: Vec<usize> = (0..n).collect();
        let mut out = Vec::with_capacity(rows * features);
        for (i, &v) in u.iter().enumerate() {
            let j = i + ((f64::from(v) * (n - i) as f64) as usize).min(n - i - 1);
            order.swap(i, j);
            let s = order[i];
            out.extend_from_slice(&d.data[s * features..(s + 1) * features]);
        }
        Ok(out)
    }
}

/// The file's identity: FNV-1a 64 of its bytes (the init crate's hash).
fn digest_of(bytes: &[u8]) -> u64 {
    sigprop_init::rng::fnv1a64(bytes)
}

/// Each channel (samples `[C, ...]` of rank 3) or each feature (any other rank; a rank-2
/// sample, a one-channel image, as one channel) to mean 0 and variance 1 over the file, in
/// f64; a constant one to 0.
fn standardize(d: &mut Dataset) {
    let features = d.features();
    let (groups, per): (usize, usize) = match d.shape.len() {
        3 => (d.shape[0], features / d.shape[0].max(1)),
        2 => (1, features),
        _ => (features, 1),
    };
    if per == 0 || groups * per != features {
        return;
    }
    let n = d.samples();
    let group_of = |f: usize| f / per;
    // Two passes, the mean then the squared deviations, in f64: no cancellation for a
    // feature with a large mean and a small spread.
    let count = (n * per) as f64;
    let mut mean = vec![0f64; groups];
    for s in 0..n {
        for f in 0..features {
            mean[group_of(f)] += f64::from(d.data[s * features + f]);
        }
    }
    mean.iter_mut().for_each(|m| *m /= count);
    let mut var = vec![0f64; groups];
    for s in 0..n {
        for f in 0..features {
            let g = group_of(f);
            var[g] += (f64::from(d.data[s * features + f]) - mean[g]).powi(2);
        }
    }
    let moments: Vec<(f64, f64)> = (0..groups)
        .map(|g| {
            let v = var[g] / count;
            (mean[g], if v > 0.0 { v.sqrt() } else { 1.0 })
        })
        .collect();
    for s in 0..n {
        for f in 0..features {
            let (mean, sd) = moments[group_of(f)];
            let v = &mut d.data[s * features + f];
            *v = ((f64::from(*v) - mean) / sd) as f32;
        }
    }
}

/// The dataset in `bytes`, by the file name's format.
fn parse(path: &str, bytes: &[u8]) -> Result<Dataset, NetError> {
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".npy") {
        npy(path, bytes)
    } else if name.ends_with(".npz") {
        npz(path, bytes)
    } else if name.ends_with(".csv") {
        csv_table(path, bytes)
    } else if name.ends_with(".bin") {
        cifar(path, bytes)
    } else if name.ends_with("-ubyte") || name.contains(".idx") || name.ends_with(".idx") {
        idx(path, bytes)
    } else {
        Err(bad(
            path,
            "an unknown file type: name it .npy, .npz, .csv, .bin or *-ubyte",
        ))
    }
}

/// Samples from a whole array of `shape` (samples first).
fn from_array(path: &str, shape: Vec<usize>, data: Vec<f32>) -> Result<Dataset, NetError> {
    if shape.is_empty() {
        return Err(bad(path, "a scalar, not an array of samples"));
    }
    let sample = shape[1..].to_vec();
    // Checked: a hostile header's dimensions must not wrap into a size that fits the data.
    let total = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(path, format!("a shape {shape:?} too large to hold")))?;
    if total != data.len() {
        return Err(bad(
            path,
            "its data is shorter than its shape says (truncated?)",
        ));
    }
    if sample.contains(&0) {
        return Err(bad(
            path,
            format!("samples of shape {sample:?}, with no values"),
        ));
    }
    Ok(Dataset {
        shape: if sample.is_empty() { vec![1] } else { sample },
        data,
    })
}

/// An `.npy` array read from `reader`.
fn npy_from<R: Read>(path: &str, reader: R) -> Result<Dataset, NetError> {
    let file = npyz::NpyFile::new(reader).map_err(|e| bad(path, e))?;
    if file.order() == npyz::Order::Fortran {
        return Err(bad(path, "a Fortran-order array; save it in C order"));
    }
    let shape: Vec<usize> = file.shape().iter().map(|&s| s as usize).collect();
    let npyz::DType::Plain(ty) = file.dtype() else {
        return Err(bad(
            path,
            "a structured or array dtype; expected plain numbers",
        ));
    };
    let read = |e: std::io::Error| bad(path, e);
    let data: Vec<f32> = match (ty.type_char(), ty.size_field()) {
        (npyz::TypeChar::Float, 4) => file.into_vec::<f32>().map_err(read)?,
        (npyz::TypeChar::Float, 8) => file
            .into_vec::<f64>()
            .map_err(read)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        (npyz::TypeChar::Uint, 1) => file
            .into_vec::<u8>()
            .map_err(read)?
            .into_iter()
            .map(f32::from)
            .collect(),
        (npyz::TypeChar::Int, 4) => file
            .into_vec::<i32>()
            .map_err(read)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        (npyz::TypeChar::Int, 8) => file
            .into_vec::<i64>()
            .map_err(read)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        (npyz::TypeChar::Bool, _) => file
            .into_vec::<bool>()
            .map_err(read)?
            .into_iter()
            .map(|v| f32::from(u8::from(v)))
            .collect(),
        _ => {
            return Err(bad(
                path,
                format!("dtype {ty}; expected f4, f8, u1, i4, i8 or bool"),
            ));
        }
    };
    from_array(path, shape, data)
}

fn npy(path: &str, bytes: &[u8]) -> Result<Dataset, NetError> {
    npy_from(path, bytes)
}

/// An `.npz` archive: its array `x`, else its only array.
fn npz(path: &str, bytes: &[u8]) -> Result<Dataset, NetError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(path, e))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.strip_suffix(".npy").map(str::to_string))
        .collect();
    let chosen = if names.iter().any(|n| n == "x") {
        "x".to_string()
    } else if names.len() == 1 {
        names[0].clone()
    } else {
        return Err(bad(
            path,
            format!(
                "an archive of {} arrays ({}) without one named x",
                names.len(),
                names.join(", ")
            ),
        ));
    };
    let entry = zip
        .by_name(&format!("{chosen}.npy"))
        .map_err(|e| bad(path, e))?;
    npy_from(path, entry)
}

/// MNIST's IDX: a magic `00 00 TT RR` (type, rank), `RR` big-endian u32 dimensions, then
/// the values big-endian.
fn idx(path: &str, bytes: &[u8]) -> Result<Dataset, NetError> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(path, "not an IDX file (its magic number is wrong)"));
    }
    let (ty, rank) = (bytes[2], bytes[3] as usize);
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(bad(path, "a truncated IDX header"));
    }
    let shape: Vec<usize> = (0..rank)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let body = &bytes[header..];
    let data: Vec<f32> = match ty {
        0x08 => body.iter().map(|&b| f32::from(b)).collect(),
        0x09 => body.iter().map(|&b| f32::from(b as i8)).collect(),
        0x0B => body
            .chunks_exact(2)
            .map(|c| f32::from(i16::from_be_bytes([c[0], c[1]])))
            .collect(),
        0x0C => body
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        0x0D => body
            .chunks_exact(4)
            .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        0x0E => body
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        t => {
            return Err(bad(
                path,
                format!("IDX type 0x{t:02X}; expected 0x08 to 0x0E"),
            ));
        }
    };
    from_array(path, shape, data)
}

/// CIFAR-10's binary batches: records of a label byte and 3072 pixel bytes (`[3, 32, 32]`,
/// channels first).
fn cifar(path: &str, bytes: &[u8]) -> Result<Dataset, NetError> {
    const RECORD: usize = 1 + 3 * 32 * 32;
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(bad(
            path,
            format!(
                "{} bytes, not whole CIFAR-10 records of {RECORD}",
                bytes.len()
            ),
        ));
    }
    let data = bytes
        .chunks_exact(RECORD)
        .flat_map(|r| r[1..].iter().map(|&b| f32::from(b)))
        .collect();
    Ok(Dataset {
        shape: vec![3, 32, 32],
        data,
    })
}

/// The names of a CSV header's label columns, which are not inputs.
pub const LABEL_COLUMNS: &[&str] = &["label", "labels", "y", "target", "class"];

/// A CSV table of numbers, one sample a row; a first row that is not all numbers is a
/// header, and its label columns ([`LABEL_COLUMNS`]) are dropped.
fn csv_table(path: &str, bytes: &[u8]) -> Result<Dataset, NetError> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut data = Vec::new();
    let mut cols = None;
    let mut keep: Option<Vec<bool>> = None;
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| bad(path, e))?;
        if i == 0 && rec.iter().any(|c| c.parse::<f32>().is_err()) {
            keep = Some(
                rec.iter()
                    .map(|c| !LABEL_COLUMNS.contains(&c.to_ascii_lowercase().as_str()))
                    .collect(),
            );
            continue;
        }
        let kept = |j: usize| {
            keep.as_ref()
                .is_none_or(|k| k.get(j).copied().unwrap_or(true))
        };
        let parsed: Result<Vec<f32>, _> = rec
            .iter()
            .enumerate()
            .filter(|(j, _)| kept(*j))
            .map(|(_, c)| c.parse::<f32>())
            .collect();
        match parsed {
            Ok(row) => {
                if *cols.get_or_insert(row.len()) != row.len() {
                    return Err(bad(
                        path,
                        format!(
                            "row {} has {} values, not {}",
                            i + 1,
                            row.len(),
                            cols.unwrap_or(0)
                        ),
                    ));
                }
                data.extend(row);
            }
            Err(e) => return Err(bad(path, format!("row {}: {e}", i + 1))),
        }
    }
    let cols = cols.unwrap_or(0);
    if cols == 0 {
        return Err(bad(path, "no rows of numbers"));
    }
    Ok(Dataset {
        shape: vec![cols],
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// Every format reads back the values written, in the sample shape written.
    #[test]
    fn every_format_reads_its_samples() {
        let dir = tempfile::tempdir().unwrap();
        // IDX: 2 samples of 2 x 3 unsigned bytes.
        let mut b = vec![0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend(0u8..12);
        let d = InputFile::open(&write(dir.path(), "x-ubyte", &b), false)
            .unwrap()
            .dataset()
            .unwrap();
        assert_eq!((d.shape.clone(), d.samples()), (vec![2, 3], 2));
        assert_eq!(d.data[11], 11.0);
        // CIFAR: 2 records.
        let mut c = Vec::new();
        for r in 0..2u8 {
            c.push(9);
            c.extend(std::iter::repeat_n(r * 10, 3072));
        }
        let d = InputFile::open(&write(dir.path(), "b.bin", &c), false)
            .unwrap()
            .dataset()
            .unwrap();
        assert_eq!(
            (d.shape.clone(), d.samples(), d.data[3072]),
            (vec![3, 32, 32], 2, 10.0)
        );
        // CSV with a header and a label column, which is dropped.
        let d = InputFile::open(
            &write(dir.path(), "t.csv", b"a,b,label\n1,2,7\n3,4.5,1\n"),
            false,
        )
        .unwrap()
        .dataset()
        .unwrap();
        assert_eq!(
            (d.shape.clone(), d.data.clone()),
            (vec![2], vec![1.0, 2.0, 3.0, 4.5])
        );
        // npy: f8 [3, 2], the header padded to 128 bytes.
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
        let mut n = b"\x93NUMPY\x01\x00".to_vec();
        let pad = 128 - 10 - header.len() - 1;
        let text = format!("{header}{}\n", " ".repeat(pad));
        n.extend((text.len() as u16).to_le_bytes());
        n.extend(text.as_bytes());
        for v in 0..6 {
            n.extend((f64::from(v) * 0.5).to_le_bytes());
        }
        let d = InputFile::open(&write(dir.path(), "a.npy", &n), false)
            .unwrap()
            .dataset()
            .unwrap();
        assert_eq!((d.shape.clone(), d.data[5]), (vec![2], 2.5));
        // npz holding that array as x (stored, not compressed).
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        z.start_file(
            "x.npy",
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        std::io::Write::write_all(&mut z, &n).unwrap();
        let zbytes = z.finish().unwrap().into_inner();
        let d = InputFile::open(&write(dir.path(), "a.npz", &zbytes), false)
            .unwrap()
            .dataset()
            .unwrap();
        assert_eq!((d.shape.clone(), d.samples()), (vec![2], 3));
    }

    /// Standardized per feature: every feature at mean 0 and variance 1 over the file; a
    /// batch draws distinct samples, the same for the same seed, and another seed draws
    /// others; a batch larger than the file, a wrong sample size, a truncated or unknown
    /// file are errors naming `inputs`.
    #[test]
    fn standardized_batches_are_keyed_draws_without_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let rows: String = (0..50).map(|i| format!("{},{}\n", i, 3 * i * i)).collect();
        let f = InputFile::open(&write(dir.path(), "t.csv", rows.as_bytes()), true).unwrap();
        let d = f.dataset().unwrap();
        for c in 0..2 {
            let col: Vec<f64> = (0..50).map(|r| f64::from(d.data[r * 2 + c])).collect();
            let mean = col.iter().sum::<f64>() / 50.0;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 50.0;
            assert!(
                mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
                "{mean} {var}"
            );
        }
        let a = f.batch(3, "input", 50, 2).unwrap();
        let mut firsts: Vec<i64> = a.chunks(2).map(|r| (r[0] * 1e4) as i64).collect();
        firsts.sort_unstable();
        firsts.dedup();
        assert_eq!(firsts.len(), 50, "every sample once");
        assert_eq!(
            f.batch(3, "input", 10, 2).unwrap(),
            f.batch(3, "input", 10, 2).unwrap()
        );
        assert_ne!(
            f.batch(3, "input", 10, 2).unwrap(),
            f.batch(4, "input", 10, 2).unwrap()
        );
        let msg = |e: NetError| e.to_string();
        assert!(msg(f.batch(3, "input", 51, 2).unwrap_err()).contains("at most the 50 samples"));
        assert!(msg(f.batch(3, "input", 5, 3).unwrap_err()).contains("samples of 3 values"));
        // A hostile header whose dimensions overflow: an error, not a panic or a wrap.
        let mut huge = vec![0, 0, 8, 4];
        huge.extend(std::iter::repeat_n(0xFF, 16));
        huge.extend([1, 2, 3]);
        let e = msg(InputFile::open(&write(dir.path(), "h-ubyte", &huge), false).unwrap_err());
        assert!(e.contains("too large"), "{e}");
        let cut = write(dir.path(), "c-ubyte", &[0, 0, 8, 1, 0, 0, 0, 9, 1, 2]);
        assert!(msg(InputFile::open(&cut, false).unwrap_err()).contains("truncated"));
        assert!(
            msg(InputFile::open(&write(dir.path(), "y.txt", b"1"), false).unwrap_err())
                .contains("unknown file type")
        );
        assert!(
            msg(InputFile::open("/no/such/file.npy", false).unwrap_err())
                .starts_with("inputs=/no/such/file.npy")
        );
    }
}
