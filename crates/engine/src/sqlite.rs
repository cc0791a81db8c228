//! The durable catalog: one SQLite file, every write its own transaction.
//!
//! `synchronous = FULL` with the write-ahead log: a write that returned `Ok`
//! is on disk and survives the process being killed.

use crate::catalog::{Catalog, Kind, RunRecord};
use pbatch_model::{Error, ErrorCode, Result, RunStatus};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::Mutex;

/// A catalog in `<data_dir>/catalog.sqlite`.
#[derive(Debug)]
pub struct SqliteCatalog {
    conn: Mutex<Connection>,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::new(ErrorCode::Internal, format!("catalog: {e}"))
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Datasource => "datasource",
        Kind::Job => "job",
        Kind::Export => "export",
        Kind::Variable => "variable",
        Kind::Workflow => "workflow",
        Kind::Schedule => "schedule",
        Kind::Backfill => "backfill",
        Kind::RunLog => "runlog",
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS resources (
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS runs (
    job    TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (job, run_id)
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
";

impl SqliteCatalog {
    /// Opens (creating) the catalog file.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .map_err(|e| Error::new(ErrorCode::Internal, format!("opening catalog {}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut c = self
            .conn
            .lock()
            .map_err(|_| Error::internal("catalog lock poisoned by an earlier panic"))?;
        f(&mut c).map_err(db_err)
    }
}

fn to_text<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal(format!("serializing: {e}")))
}

fn parse_run(text: &str) -> Result<RunRecord> {
    serde_json::from_str(text).map_err(|e| Error::internal(format!("stored run: {e}")))
}

impl Catalog for SqliteCatalog {
    fn insert(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool> {
        let text = value.to_string();
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO resources (kind, key, value) VALUES (?1, ?2, ?3)",
                params![kind_name(kind), key, text],
            )?;
            Ok(n == 1)
        })
    }

    fn replace(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool> {
        let text = value.to_string();
        self.with(|c| {
            let n = c.execute(
                "UPDATE resources SET value = ?3 WHERE kind = ?1 AND key = ?2",
                params![kind_name(kind), key, text],
            )?;
            Ok(n == 1)
        })
    }

    fn get(&self, kind: Kind, key: &str) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT value FROM resources WHERE kind = ?1 AND key = ?2",
                params![kind_name(kind), key],
                |r| r.get(0),
            )
            .optional()
        })?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| Error::internal(format!("stored {key}: {e}"))))
            .transpose()
    }

    fn list(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, serde_json::Value)>> {
        let rows: Vec<(String, String)> = self.with(|c| {
            let mut st = c.prepare("SELECT key, value FROM resources WHERE kind = ?1 ORDER BY key")?;
            let rows = st
                .query_map(params![kind_name(kind)], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| {
                let v = serde_json::from_str(&v).map_err(|e| Error::internal(format!("stored {k}: {e}")))?;
                Ok((k, v))
            })
            .collect()
    }

    fn delete(&self, kind: Kind, key: &str) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "DELETE FROM resources WHERE kind = ?1 AND key = ?2",
                params![kind_name(kind), key],
            )?;
            Ok(n == 1)
        })
    }

    fn insert_run(&self, run: &RunRecord) -> Result<i64> {
        let mut r = run.clone();
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last: i64 = tx.query_row(
                "SELECT COALESCE(MAX(run_id), 0) FROM runs WHERE job = ?1",
                params![r.job],
                |row| row.get(0),
            )?;
            r.run_id = last + 1;
            let text = serde_json::to_string(&r).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            tx.execute(
                "INSERT INTO runs (job, run_id, status, record) VALUES (?1, ?2, ?3, ?4)",
                params![r.job, r.run_id, r.status.as_str(), text],
            )?;
            tx.commit()?;
            Ok(r.run_id)
        })
    }

    fn update_run(&self, run: &RunRecord) -> Result<bool> {
        let text = to_text(run)?;
        self.with(|c| {
            let n = c.execute(
                "UPDATE runs SET status = ?3, record = ?4 WHERE job = ?1 AND run_id = ?2",
                params![run.job, run.run_id, run.status.as_str(), text],
            )?;
            Ok(n == 1)
        })
    }

    fn get_run(&self, job: &str, run_id: i64) -> Result<Option<RunRecord>> {
        let text: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT record FROM runs WHERE job = ?1 AND run_id = ?2",
                params![job, run_id],
                |r| r.get(0),
            )
            .optional()
        })?;
        text.map(|t| parse_run(&t)).transpose()
    }

    fn runs(&self, job: &str) -> Result<Vec<RunRecord>> {
        let texts: Vec<String> = self.with(|c| {
            let mut st = c.prepare("SELECT record FROM runs WHERE job = ?1 ORDER BY run_id")?;
            let rows = st
                .query_map(params![job], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        texts.iter().map(|t| parse_run(t)).collect()
    }

    fn delete_runs(&self, job: &str) -> Result<usize> {
        self.with(|c| c.execute("DELETE FROM runs WHERE job = ?1", params![job]))
    }

    fn runs_in(&self, statuses: &[RunStatus]) -> Result<Vec<RunRecord>> {
        let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let texts: Vec<String> = self.with(|c| {
            let mut st = c.prepare("SELECT record, status FROM runs ORDER BY job, run_id")?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter(|(_, s)| names.contains(&s.as_str()))
                .map(|(t, _)| t)
                .collect())
        })?;
        texts.iter().map(|t| parse_run(t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryCatalog;
    use chrono::Utc;

    fn run(job: &str) -> RunRecord {
        RunRecord {
            job: job.into(),
            run_id: 0,
            batch_time: Utc::now(),
            start_time: None,
            end_time: None,
            status: RunStatus::Ready,
            message: String::new(),
            rerun_count: 0,
            params: vec![("p".into(), "v".into())],
            owner: None,
            backfill: None,
            retry: 0,
            stats: None,
        }
    }

    /// The conformance suite every catalog backend passes.
    fn conformance(c: &dyn Catalog) {
        let v = serde_json::json!({"a": 1});
        assert!(c.insert(Kind::Job, "j1", &v).unwrap());
        assert!(!c.insert(Kind::Job, "j1", &v).unwrap(), "insert of an existing key");
        assert!(c.insert(Kind::Export, "j1/e1", &v).unwrap());
        assert!(c.insert(Kind::Export, "j10/e1", &v).unwrap());
        assert_eq!(c.list(Kind::Export, "j1/").unwrap().len(), 1);
        assert_eq!(c.get(Kind::Job, "j1").unwrap(), Some(v.clone()));
        assert_eq!(c.get(Kind::Datasource, "j1").unwrap(), None, "kinds are separate");
        assert!(c.replace(Kind::Job, "j1", &serde_json::json!({"a": 2})).unwrap());
        assert!(!c.replace(Kind::Job, "nope", &v).unwrap());
        assert_eq!(c.get(Kind::Job, "j1").unwrap().unwrap()["a"], 2);
        assert!(c.delete(Kind::Job, "j1").unwrap());
        assert!(!c.delete(Kind::Job, "j1").unwrap());

        assert_eq!(c.insert_run(&run("a")).unwrap(), 1);
        assert_eq!(c.insert_run(&run("a")).unwrap(), 2);
        assert_eq!(c.insert_run(&run("b")).unwrap(), 1);
        let mut r = c.get_run("a", 2).unwrap().unwrap();
        assert_eq!(r.params, vec![("p".to_string(), "v".to_string())]);
        r.status = RunStatus::Running;
        assert!(c.update_run(&r).unwrap());
        assert_eq!(c.runs("a").unwrap().len(), 2);
        let running = c.runs_in(&[RunStatus::Running]).unwrap();
        assert_eq!(running.len(), 1);
        assert_eq!((running[0].job.as_str(), running[0].run_id), ("a", 2));
        assert!(c.get_run("a", 9).unwrap().is_none());
    }

    #[test]
    fn memory_conforms() {
        conformance(&MemoryCatalog::default());
    }

    #[test]
    fn sqlite_conforms_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        conformance(&SqliteCatalog::open(&path).unwrap());
        let again = SqliteCatalog::open(&path).unwrap();
        assert_eq!(again.runs("a").unwrap().len(), 2, "runs survive reopening");
        assert_eq!(again.insert_run(&run("a")).unwrap(), 3);
    }
}
