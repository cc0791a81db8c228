//! Whether an export's committed files match their `_SUCCESS` manifest.

use crate::commit::{fs_err, store_err};
use crate::error::Result;
use crate::export::file_export;
use crate::journal::{Manifest, crc_hex, manifest_key};
use crate::{Target, Targets};
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;
use pbatch_magic::Expander;
use pbatch_model::ExportSpec;

/// What [`verify_export`] found for one export of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportCheck {
    /// The export.
    pub export: String,
    /// The manifest's key in the export's target.
    pub manifest: String,
    /// The batch the manifest describes (`runId`, batch time), if one was read.
    pub batch: Option<(i64, String)>,
    /// Files the manifest lists for this export.
    pub files: usize,
    /// Rows the manifest lists for this export.
    pub rows: u64,
    /// What does not match; empty when all is well.
    pub problems: Vec<String>,
}

impl ExportCheck {
    /// No problem found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads `key` of a target; `None` when it does not exist.
async fn read(target: &Target, key: &str) -> Result<Option<Vec<u8>>> {
    match target {
        Target::Local(root) => {
            let p = root.join(key);
            match tokio::fs::read(&p).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(fs_err("reading", &p, e)),
            }
        }
        Target::Store { store, label, .. } => match store.get(&StorePath::from(key)).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| store_err(&format!("reading {key} from"), label, e))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(&format!("reading {key} from"), label, e)),
        },
    }
}

/// The size and CRC-32C of `key` (read in pieces); `None` when it does not exist.
async fn sum(target: &Target, key: &str) -> Result<Option<(u64, u32)>> {
    match target {
        Target::Local(root) => {
            let p = root.join(key);
            if !p.is_file() {
                return Ok(None);
            }
            crate::commit::blocking(move || crate::journal::checksum(&p))
                .await
                .map(Some)
        }
        Target::Store { .. } => Ok(read(target, key).await?.map(|b| (b.len() as u64, crc32c::crc32c(&b)))),
    }
}

/// Checks the committed output of file export `name` in the folder the
/// batch of `expander` writes: its `_SUCCESS` exists, names this export,
/// and every file it lists is there with the listed size and CRC-32C. With
/// `exact`, the manifest must also be of that very batch time (without it,
/// whichever batch last committed there is checked). `None` for service
/// exports, which have no files.
pub async fn verify_export(
    name: &str,
    spec: &ExportSpec,
    expander: &Expander,
    manual: bool,
    targets: &dyn Targets,
    exact: bool,
) -> Result<Option<ExportCheck>> {
    if spec.file_options().is_none() {
        return Ok(None);
    }
    let export = file_export(name, spec, expander, manual, targets)?;
    let key = manifest_key(export.naming.scope());
    let mut check = ExportCheck {
        export: name.to_string(),
        manifest: key.clone(),
        batch: None,
        files: 0,
        rows: 0,
        problems: Vec::new(),
    };
    let Some(bytes) = read(&export.target, &key).await? else {
        check.problems.push(format!("no {key} in {}", export.target.label()));
        return Ok(Some(check));
    };
    let manifest = match Manifest::parse(&bytes, &key) {
        Ok(m) => m,
        Err(e) => {
            check.problems.push(e.message().to_string());
            return Ok(Some(check));
        }
    };
    check.batch = Some((manifest.run_id, manifest.batch_time.clone()));
    let want = expander.batch_time().to_rfc3339();
    if exact && manifest.batch_time != want {
        check.problems.push(format!(
            "{key} describes batch time {}, not {want}",
            manifest.batch_time
        ));
    }
    let Some(entry) = manifest.exports.iter().find(|e| e.name == name) else {
        check.problems.push(format!("{key} does not list export {name}"));
        return Ok(Some(check));
    };
    check.files = entry.files.len();
    check.rows = entry.files.iter().map(|f| f.rows).sum();
    for f in &entry.files {
        match sum(&export.target, &f.key).await? {
            None => check.problems.push(format!("{} is missing", f.key)),
            Some((len, _)) if len != f.bytes => check
                .problems
                .push(format!("{} has {len} bytes, the manifest says {}", f.key, f.bytes)),
            Some((_, crc)) => {
                let crc = crc_hex(crc);
                if crc != f.crc32c {
                    check
                        .problems
                        .push(format!("{} has CRC-32C {crc}, the manifest says {}", f.key, f.crc32c));
                }
            }
        }
    }
    Ok(Some(check))
}
