//! pbatch as a library: a datasource, a job and an export created with
//! `pbatch::Engine`, one batch run, and its report printed.
//!
//! ```text
//! cargo run --example embed [DATA_DIR]
//! ```
//!
//! Everything runs on the embedded default: the kodo bucket `shop` is the
//! folder `<DATA_DIR>/buckets/shop/` (a fresh temporary folder unless given).

use pbatch::model::{DatasourceSpec, ExportSpec, JobSpec};
use std::io::Write;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data_dir = std::env::args()
        .nth(1)
        .map(Into::into)
        .unwrap_or_else(|| tmp.path().to_path_buf());

    // Input: a day of orders as NDJSON in the bucket `shop`.
    let orders = data_dir.join("buckets/shop/orders");
    std::fs::create_dir_all(&orders)?;
    let mut f = std::fs::File::create(orders.join("2026-12-01.json"))?;
    for (i, (city, amount)) in [("hz", 12.5), ("sh", 30.0), ("hz", 7.5), ("bj", 99.0), ("sh", 1.0)]
        .iter()
        .enumerate()
    {
        writeln!(f, r#"{{"id": {i}, "city": "{city}", "amount": {amount}}}"#)?;
    }

    let engine = pbatch::Engine::builder().data_dir(&data_dir).build()?;
    engine.create_datasource(
        "orders",
        &DatasourceSpec::from_json(
            br#"{"region": "nb", "type": "kodo",
                 "spec": {"bucket": "shop", "keyPrefixes": ["orders/"], "fileType": "json"},
                 "schema": [{"key": "id", "valtype": "long"},
                            {"key": "city", "valtype": "string"},
                            {"key": "amount", "valtype": "float"}]}"#,
        )?,
    )?;
    engine.create_job(
        "sales_by_city",
        &JobSpec::from_json(
            br#"{"srcs": [{"name": "orders", "type": "datasource", "tableName": "orders"}],
                 "computation": {"type": "sql",
                   "code": "SELECT city, COUNT(*) AS orders, SUM(amount) AS total FROM orders GROUP BY city ORDER BY city"},
                 "scheduler": {"type": "manual"}}"#,
        )?,
    )?;
    engine.create_export(
        "sales_by_city",
        "report",
        &ExportSpec::from_json(
            br#"{"type": "kodo", "spec": {"bucket": "shop", "keyPrefix": "reports/sales_by_city.csv",
                 "format": "csv", "delimiter": ",", "containsHeader": true}}"#,
            None,
        )?,
    )?;

    let batch_time = chrono::DateTime::parse_from_rfc3339("2026-12-02T00:00:00+08:00")?;
    let report = engine.run_once("sales_by_city", &[], batch_time).await?;
    println!(
        "run {} of {}: read {} rows from {} files, wrote {} rows",
        report.run_id, report.job, report.rows_read, report.files_read, report.rows_out
    );
    for e in &report.exports {
        for key in &e.keys {
            println!("export {}: {key} ({} bytes)", e.export, e.bytes);
        }
    }
    let written = std::fs::read_to_string(data_dir.join("buckets/shop/reports/sales_by_city.csv"))?;
    print!("{written}");
    anyhow::ensure!(
        written == "city,orders,total\nbj,1,99.0\nhz,2,20.0\nsh,2,31.0\n",
        "unexpected output: {written:?}"
    );
    Ok(())
}
