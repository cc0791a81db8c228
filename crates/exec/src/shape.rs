//! A job's output columns from declared schemas alone: nothing is listed
//! or read, so it answers at create time, and what would fail every run
//! (a `partitionBy` or `#column` the SQL does not output) can be refused
//! then.

use crate::session::plan_sql;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use pbatch_magic::Expander;
use std::sync::Arc;

/// One src as the SQL sees it: its table name and its declared columns.
#[derive(Debug, Clone)]
pub struct DeclaredTable {
    /// The SQL table name (`tableName`).
    pub table: String,
    /// Its columns.
    pub schema: SchemaRef,
}

/// The output columns of `code` over empty tables of `tables`' columns;
/// `None` when the SQL cannot be planned that way (its variables do not
/// expand, it does not parse or plan): then nothing can be said before a run.
pub fn declared_output(code: &str, tables: &[DeclaredTable], expander: &Expander) -> Option<SchemaRef> {
    let sql = expander.expand(code, "computation.code").ok()?;
    let ctx = SessionContext::new();
    for t in tables {
        let empty = MemTable::try_new(Arc::clone(&t.schema), vec![vec![]]).ok()?;
        ctx.register_table(t.table.as_str(), Arc::new(empty)).ok()?;
    }
    // planning over in-memory tables does no I/O: no runtime is needed
    let df = futures::executor::block_on(plan_sql(&ctx, &sql)).ok()?;
    Some(Arc::new(df.schema().as_arrow().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn output_columns_of_declared_tables() {
        let ev = DeclaredTable {
            table: "ev".into(),
            schema: Arc::new(Schema::new(vec![
                Field::new("host", DataType::Utf8, true),
                Field::new("bytes", DataType::Int64, true),
            ])),
        };
        let e = Expander::new(chrono::DateTime::UNIX_EPOCH.fixed_offset());
        let out = declared_output(
            "SELECT host, sum(bytes) AS b FROM ev GROUP BY host",
            std::slice::from_ref(&ev),
            &e,
        )
        .expect("plans");
        let names: Vec<&str> = out.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["host", "b"]);
        assert!(declared_output("SELECT nope FROM ev", std::slice::from_ref(&ev), &e).is_none());
        assert!(declared_output("SELECT $(undefined) FROM ev", &[ev], &e).is_none());
    }
}
