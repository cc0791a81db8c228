//! The report export: rows into a table of PostgreSQL (`postgres://`) or
//! MySQL / MariaDB (`mysql://`) at `[report] url`.
//!
//! The table is created when missing (column types from the job's output:
//! long -> BIGINT, float -> DOUBLE, boolean -> BOOLEAN, date -> TIMESTAMP /
//! DATETIME(6), anything else TEXT). All rows of a batch go in one
//! transaction: `append` inserts, `overwrite` deletes the table's rows first.
//! Rows go in multi-row INSERTs of up to `batch_records` rows.
//!
//! Every row carries its batch in a `pbatch_batch` column (added to the
//! table when missing): `<job>/<batch time>/<export>`. In `append` mode the
//! transaction first deletes the rows of the same batch, so a rerun or a
//! retried commit replaces what the batch wrote before instead of adding a
//! second copy.

use crate::error::{Error, Result};
use crate::service::timestamp_ns;
use pbatch_model::ErrorCode;
use serde_json::{Map, Value};

/// A report column's SQL type, from the job column's Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlType {
    /// BIGINT.
    BigInt,
    /// DOUBLE (PRECISION).
    Double,
    /// BOOLEAN.
    Boolean,
    /// TIMESTAMP / DATETIME(6), written as UTC wall-clock time.
    Timestamp,
    /// TEXT.
    Text,
}

impl SqlType {
    /// From an Arrow type.
    pub(crate) fn of(dt: &arrow::datatypes::DataType) -> Self {
        use arrow::datatypes::DataType as D;
        match dt {
            D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => Self::BigInt,
            D::Float16 | D::Float32 | D::Float64 | D::Decimal128(..) | D::Decimal256(..) => Self::Double,
            D::Boolean => Self::Boolean,
            D::Timestamp(..) | D::Date32 | D::Date64 => Self::Timestamp,
            _ => Self::Text,
        }
    }

    fn postgres(self) -> &'static str {
        match self {
            Self::BigInt => "BIGINT",
            Self::Double => "DOUBLE PRECISION",
            Self::Boolean => "BOOLEAN",
            Self::Timestamp => "TIMESTAMP",
            Self::Text => "TEXT",
        }
    }

    fn mysql(self) -> &'static str {
        match self {
            Self::BigInt => "BIGINT",
            Self::Double => "DOUBLE",
            Self::Boolean => "BOOLEAN",
            Self::Timestamp => "DATETIME(6)",
            Self::Text => "TEXT",
        }
    }
}

/// Where and how a report export writes.
#[derive(Debug, Clone)]
pub(crate) struct ReportTarget {
    /// `postgres://…` or `mysql://…` (the database part is replaced by `db`).
    pub url: String,
    /// Database (`dbName`).
    pub db: String,
    /// Table (`tableName`).
    pub table: String,
    /// Report column -> job column.
    pub columns: Vec<(String, String)>,
    /// `overwrite` (else append).
    pub overwrite: bool,
    /// The batch's key, written into [`BATCH_COLUMN`].
    pub batch: String,
}

/// The column naming the batch that wrote a row.
pub(crate) const BATCH_COLUMN: &str = "pbatch_batch";

fn report_err(export: &str, code: ErrorCode, what: String) -> Error {
    Error::new(code, format!("export {export}: {what}"))
}

/// A database client's error while doing `what`, kept as the cause.
fn db_err(
    export: &str,
    code: ErrorCode,
    what: impl std::fmt::Display,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::foreign(code, format!("export {export}: {what}: {e}"), e)
}

/// A value as SQL text (`None` = NULL); times become `yyyy-MM-dd HH:mm:ss.ffffff` UTC.
fn sql_text(v: &Value, ty: SqlType, mysql: bool) -> Option<String> {
    match (v, ty) {
        (Value::Null, _) => None,
        (Value::Bool(b), _) if mysql => Some(if *b { "1" } else { "0" }.to_string()),
        (v, SqlType::Timestamp) => {
            let ns = timestamp_ns(v)?;
            let t = chrono::DateTime::from_timestamp_nanos(ns);
            Some(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        }
        (Value::String(s), _) => Some(s.clone()),
        (other, _) => Some(other.to_string()),
    }
}

fn quote_pg(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn quote_my(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// `CREATE TABLE IF NOT EXISTS` in one dialect (its quoting and type names).
fn create_table(
    table: &str,
    types: &[(String, SqlType)],
    quote: fn(&str) -> String,
    type_name: fn(SqlType) -> &'static str,
    options: &str,
) -> String {
    let cols: Vec<String> = types
        .iter()
        .map(|(c, t)| format!("{} {}", quote(c), type_name(*t)))
        .collect();
    format!("CREATE TABLE IF NOT EXISTS {table} ({}){options}", cols.join(", "))
}

/// Writes the staged rows (one JSON object per line, keyed by report column).
pub(crate) async fn write(
    export: &str,
    target: &ReportTarget,
    types: &[(String, SqlType)],
    rows: &[Map<String, Value>],
    batch_records: usize,
) -> Result<u64> {
    let url = target.url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        write_postgres(export, target, types, rows, batch_records).await
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        write_mysql(export, target, types, rows, batch_records).await
    } else {
        Err(report_err(
            export,
            ErrorCode::InvalidUrl,
            format!("[report] url {url:?} must start with postgres:// or mysql://"),
        ))
    }
}

async fn write_postgres(
    export: &str,
    target: &ReportTarget,
    types: &[(String, SqlType)],
    rows: &[Map<String, Value>],
    batch_records: usize,
) -> Result<u64> {
    use tokio_postgres::types::ToSql;
    let mut config: tokio_postgres::Config = target
        .url
        .parse()
        .map_err(|e| report_err(export, ErrorCode::InvalidUrl, format!("[report] url: {e}")))?;
    config.dbname(&target.db);
    let (mut client, conn) = match config.connect(tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) => {
            return Err(report_err(
                export,
                ErrorCode::NoSuchDatabase,
                format!("database {:?} does not exist at the [report] url", target.db),
            ));
        }
        Err(e) => {
            // no answer (not a refusal by the server): a later attempt may pass
            let transient = e.code().is_none();
            let err = db_err(export, ErrorCode::ExportFailed, "connecting to the [report] url", e);
            return Err(if transient { err.transient() } else { err });
        }
    };
    let mut driver = tokio::task::JoinSet::new();
    driver.spawn(conn);
    let table = quote_pg(&target.table);
    let create = create_table(&table, types, quote_pg, SqlType::postgres, "");
    client
        .batch_execute(&create)
        .await
        .map_err(|e| db_err(export, ErrorCode::ExportFailed, &create, e))?;
    let have: std::collections::HashMap<String, String> = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&target.table],
        )
        .await
        .map_err(|e| {
            db_err(
                export,
                ErrorCode::ExportFailed,
                format!("reading the columns of {table}"),
                e,
            )
        })?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    if !have.contains_key(BATCH_COLUMN) {
        let alter = format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} TEXT",
            quote_pg(BATCH_COLUMN)
        );
        client
            .batch_execute(&alter)
            .await
            .map_err(|e| db_err(export, ErrorCode::ExportFailed, &alter, e))?;
    }
    let mut casts = Vec::new();
    for (c, _) in types {
        let Some(t) = have.get(c) else {
            return Err(report_err(
                export,
                ErrorCode::FieldMissed,
                format!("table {} has no column {c:?}", target.table),
            ));
        };
        casts.push(t.clone());
    }
    let cols = types
        .iter()
        .map(|(c, _)| quote_pg(c))
        .chain([quote_pg(BATCH_COLUMN)])
        .collect::<Vec<_>>()
        .join(", ");
    let per = (60_000 / (types.len() + 1)).clamp(1, batch_records.max(1));
    let tx = client
        .transaction()
        .await
        .map_err(|e| db_err(export, ErrorCode::ExportFailed, "BEGIN", e))?;
    if target.overwrite {
        tx.execute(&format!("DELETE FROM {table}"), &[])
            .await
            .map_err(|e| db_err(export, ErrorCode::ExportFailed, format!("DELETE FROM {table}"), e))?;
    } else {
        let delete = format!("DELETE FROM {table} WHERE {} = $1", quote_pg(BATCH_COLUMN));
        tx.execute(&delete, &[&target.batch])
            .await
            .map_err(|e| db_err(export, ErrorCode::ExportFailed, &delete, e))?;
    }
    let mut written = 0u64;
    for chunk in rows.chunks(per) {
        let mut params: Vec<Option<String>> = Vec::with_capacity(chunk.len() * types.len());
        let mut tuples = Vec::with_capacity(chunk.len());
        for row in chunk {
            let mut slots = Vec::with_capacity(types.len());
            for ((c, ty), cast) in types.iter().zip(&casts) {
                params.push(row.get(c).and_then(|v| sql_text(v, *ty, false)));
                slots.push(format!("CAST(${}::text AS {cast})", params.len()));
            }
            params.push(Some(target.batch.clone()));
            slots.push(format!("${}::text", params.len()));
            tuples.push(format!("({})", slots.join(", ")));
        }
        let sql = format!("INSERT INTO {table} ({cols}) VALUES {}", tuples.join(", "));
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        tx.execute(&sql, &refs).await.map_err(|e| {
            db_err(
                export,
                ErrorCode::IncompatibleFieldTypes,
                format!("inserting into {table}"),
                e,
            )
        })?;
        written += chunk.len() as u64;
    }
    tx.commit()
        .await
        .map_err(|e| db_err(export, ErrorCode::ExportFailed, "COMMIT", e))?;
    drop(client);
    while driver.join_next().await.is_some() {}
    Ok(written)
}

async fn write_mysql(
    export: &str,
    target: &ReportTarget,
    types: &[(String, SqlType)],
    rows: &[Map<String, Value>],
    batch_records: usize,
) -> Result<u64> {
    use mysql_async::prelude::Queryable;
    let url = target.url.replacen("mariadb://", "mysql://", 1);
    let opts = mysql_async::Opts::from_url(&url)
        .map_err(|e| report_err(export, ErrorCode::InvalidUrl, format!("[report] url: {e}")))?;
    let mut conn = mysql_async::Conn::new(opts).await.map_err(|e| {
        // no answer (not a refusal by the server): a later attempt may pass
        let transient = matches!(e, mysql_async::Error::Io(_));
        let err = db_err(export, ErrorCode::ExportFailed, "connecting to the [report] url", e);
        if transient { err.transient() } else { err }
    })?;
    let dbs: Vec<String> = conn
        .exec(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
            (target.db.clone(),),
        )
        .await
        .map_err(|e| {
            db_err(
                export,
                ErrorCode::ExportFailed,
                format!("looking up database {:?}", target.db),
                e,
            )
        })?;
    if dbs.is_empty() {
        return Err(report_err(
            export,
            ErrorCode::NoSuchDatabase,
            format!("database {:?} does not exist at the [report] url", target.db),
        ));
    }
    let table = format!("{}.{}", quote_my(&target.db), quote_my(&target.table));
    // utf8mb4 whatever the database's default: text of any language fits
    // (a latin1 default refuses CJK text; MySQL's `utf8` refuses emoji)
    let create = create_table(
        &table,
        types,
        quote_my,
        SqlType::mysql,
        " DEFAULT CHARACTER SET utf8mb4",
    );
    conn.query_drop(&create)
        .await
        .map_err(|e| db_err(export, ErrorCode::ExportFailed, &create, e))?;
    let have: Vec<String> = conn
        .exec(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            (target.db.clone(), target.table.clone()),
        )
        .await
        .map_err(|e| {
            db_err(
                export,
                ErrorCode::ExportFailed,
                format!("reading the columns of {table}"),
                e,
            )
        })?;
    if !have.iter().any(|h| h.eq_ignore_ascii_case(BATCH_COLUMN)) {
        let alter = format!("ALTER TABLE {table} ADD COLUMN {} VARCHAR(512)", quote_my(BATCH_COLUMN));
        conn.query_drop(&alter)
            .await
            .map_err(|e| db_err(export, ErrorCode::ExportFailed, &alter, e))?;
    }
    for (c, _) in types {
        if !have.iter().any(|h| h.eq_ignore_ascii_case(c)) {
            return Err(report_err(
                export,
                ErrorCode::FieldMissed,
                format!("table {} has no column {c:?}", target.table),
            ));
        }
    }
    let cols = types
        .iter()
        .map(|(c, _)| quote_my(c))
        .chain([quote_my(BATCH_COLUMN)])
        .collect::<Vec<_>>()
        .join(", ");
    let tuple = format!("({})", vec!["?"; types.len() + 1].join(", "));
    let per = (60_000 / (types.len() + 1)).clamp(1, batch_records.max(1));
    let mut tx = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .map_err(|e| db_err(export, ErrorCode::ExportFailed, "BEGIN", e))?;
    if target.overwrite {
        tx.query_drop(format!("DELETE FROM {table}"))
            .await
            .map_err(|e| db_err(export, ErrorCode::ExportFailed, format!("DELETE FROM {table}"), e))?;
    } else {
        let delete = format!("DELETE FROM {table} WHERE {} = ?", quote_my(BATCH_COLUMN));
        tx.exec_drop(&delete, (target.batch.clone(),))
            .await
            .map_err(|e| db_err(export, ErrorCode::ExportFailed, &delete, e))?;
    }
    let mut written = 0u64;
    for chunk in rows.chunks(per) {
        let mut params: Vec<mysql_async::Value> = Vec::with_capacity(chunk.len() * types.len());
        for row in chunk {
            for (c, ty) in types {
                params.push(match row.get(c).and_then(|v| sql_text(v, *ty, true)) {
                    Some(s) => mysql_async::Value::Bytes(s.into_bytes()),
                    None => mysql_async::Value::NULL,
                });
            }
            params.push(mysql_async::Value::Bytes(target.batch.clone().into_bytes()));
        }
        let sql = format!(
            "INSERT INTO {table} ({cols}) VALUES {}",
            vec![tuple.as_str(); chunk.len()].join(", ")
        );
        tx.exec_drop(sql, params).await.map_err(|e| {
            db_err(
                export,
                ErrorCode::IncompatibleFieldTypes,
                format!("inserting into {table}"),
                e,
            )
        })?;
        written += chunk.len() as u64;
    }
    tx.commit()
        .await
        .map_err(|e| db_err(export, ErrorCode::ExportFailed, "COMMIT", e))?;
    let _ = conn.disconnect().await;
    Ok(written)
}
