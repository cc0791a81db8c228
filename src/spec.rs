//! Spec folders: `datasources/<name>.json`, `jobs/<name>.json`,
//! `jobs/<name>/exports/<export>.json`, `variables/<name>.json` and an
//! optional `pbatch.toml`. Each JSON file is exactly the body the REST API
//! takes for that resource; the file name is the resource name.

use pbatch_engine::{Config, Engine};
use pbatch_model::{DatasourceSpec, Error, ErrorCode, ExportSpec, JobSpec, Result, VariableSpec};
use std::path::{Path, PathBuf};

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorCode::InvalidRequestBody, format!("{}: {e}", path.display()))
}

/// The configuration of a spec folder: its `pbatch.toml` (a relative
/// `data_dir` is taken relative to the folder), then `PBATCH_*` variables.
pub fn config_for_dir(dir: &Path) -> Result<Config> {
    let file = dir.join("pbatch.toml");
    let mut config = if file.is_file() {
        let text = std::fs::read_to_string(&file).map_err(|e| io(&file, e))?;
        let mut c = Config::from_toml(&text, &file.display().to_string())?;
        if let Some(d) = &c.engine.data_dir
            && d.is_relative()
        {
            c.engine.data_dir = Some(dir.join(d));
        }
        c
    } else {
        Config::default()
    };
    config.apply_env(std::env::vars())?;
    Ok(config)
}

/// An engine for a spec folder, with an optional data dir override, and an
/// in-memory catalog.
pub fn engine_for_dir(dir: &Path, data_dir: Option<&Path>) -> Result<Engine> {
    builder_for_dir(dir, data_dir)?.build()
}

/// The builder of [`engine_for_dir`], to add a durable catalog or a clock.
pub fn builder_for_dir(dir: &Path, data_dir: Option<&Path>) -> Result<pbatch_engine::EngineBuilder> {
    let config = config_for_dir(dir)?;
    let mut b = Engine::builder().config(config);
    if let Some(d) = data_dir {
        b = b.data_dir(d);
    }
    Ok(b)
}

/// `<name>.json` files of a folder, sorted.
fn json_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let p = entry.map_err(|e| io(dir, e))?.path();
        if p.is_file()
            && p.extension().is_some_and(|e| e == "json")
            && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
        {
            out.push((stem.to_string(), p.clone()));
        }
    }
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io(path, e))
}

/// What [`load_dir`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Resources created.
    pub created: usize,
    /// Resources that existed and were updated.
    pub updated: usize,
}

/// Loads every resource of a spec folder into `engine`; each must be new.
/// Errors name the file.
pub fn load_dir(engine: &Engine, dir: &Path) -> Result<()> {
    load(engine, dir, false).map(|_| ())
}

/// Loads a spec folder into a (durable) engine: new resources are created,
/// existing ones updated with the API's update rules (a datasource may only
/// gain fields, a job is replaced whole, an export keeps its type).
pub fn apply_dir(engine: &Engine, dir: &Path) -> Result<Applied> {
    load(engine, dir, true)
}

/// Creates, or with `upsert` updates when `exists` is the error.
fn upsert(
    applied: &mut Applied,
    upsert: bool,
    exists: ErrorCode,
    create: impl FnOnce() -> Result<()>,
    update: impl FnOnce() -> Result<()>,
) -> Result<()> {
    match create() {
        Ok(()) => {
            applied.created += 1;
            Ok(())
        }
        Err(e) if upsert && e.code() == exists => {
            update()?;
            applied.updated += 1;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn load(engine: &Engine, dir: &Path, up: bool) -> Result<Applied> {
    let mut applied = Applied::default();
    if !dir.is_dir() {
        return Err(Error::new(
            ErrorCode::InvalidRequestBody,
            format!("spec folder {} does not exist", dir.display()),
        ));
    }
    let ctx = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
    for (name, p) in json_files(&dir.join("variables"))? {
        let spec: VariableSpec =
            pbatch_model::parse_body("variable", &read(&p)?, &VariableSpec::KEYS).map_err(|e| e.context(ctx(&p)))?;
        upsert(
            &mut applied,
            up,
            ErrorCode::VariableExists,
            || engine.create_variable(&name, &spec),
            || engine.update_variable(&name, &spec),
        )
        .map_err(|e| e.context(ctx(&p)))?;
    }
    for (name, p) in json_files(&dir.join("datasources"))? {
        let spec = DatasourceSpec::from_json(&read(&p)?).map_err(|e| e.context(ctx(&p)))?;
        let update = || engine.update_datasource(&name, &pbatch_model::UpdateDatasourceInput::to(&spec)?);
        upsert(
            &mut applied,
            up,
            ErrorCode::DatasourceExists,
            || engine.create_datasource(&name, &spec),
            update,
        )
        .map_err(|e| e.context(ctx(&p)))?;
    }
    // Jobs may read other jobs: create upstreams first, retrying those whose
    // src job is not there yet.
    let mut pending: Vec<(String, PathBuf, JobSpec)> = Vec::new();
    for (name, p) in json_files(&dir.join("jobs"))? {
        let spec = JobSpec::from_json(&read(&p)?).map_err(|e| e.context(ctx(&p)))?;
        pending.push((name, p, spec));
    }
    while !pending.is_empty() {
        let before = pending.len();
        let mut last_err = None;
        let mut rest = Vec::new();
        for (name, p, spec) in pending {
            let r = upsert(
                &mut applied,
                up,
                ErrorCode::BatchJobExists,
                || engine.create_job(&name, &spec),
                || engine.update_job(&name, &spec),
            );
            match r {
                Ok(()) => {}
                Err(e) if e.code() == ErrorCode::JobSourceNotFound => {
                    last_err = Some(e.context(ctx(&p)));
                    rest.push((name, p, spec));
                }
                Err(e) => return Err(e.context(ctx(&p))),
            }
        }
        if rest.len() == before
            && let Some(e) = last_err
        {
            return Err(e);
        }
        pending = rest;
    }
    for (job, _) in json_files(&dir.join("jobs"))? {
        for (name, p) in json_files(&dir.join("jobs").join(&job).join("exports"))? {
            let spec = ExportSpec::from_json(&read(&p)?, None).map_err(|e| e.context(ctx(&p)))?;
            upsert(
                &mut applied,
                up,
                ErrorCode::JobExportExists,
                || engine.create_export(&job, &name, &spec),
                || engine.update_export(&job, &name, &spec),
            )
            .map_err(|e| e.context(ctx(&p)))?;
        }
    }
    Ok(applied)
}
