//! The report export against a real PostgreSQL and a real MariaDB, each
//! started by this harness in a temporary folder on a free loopback port
//! (Debian's packages; `.ci/run` installs them) and read back with SQL
//! through their own command-line clients.

use crate::servers::{Maria, Postgres};

const ROWS: &str = r#"{"id":1,"name":"a'b","v":1.5,"ok":true,"ts":"2026-03-01T00:00:00Z"}
{"id":2,"name":null,"v":2.25,"ok":false,"ts":"2026-03-01T00:00:01Z"}
{"id":3,"name":"c\"d","v":null,"ok":null,"ts":null}
"#;

fn engine(url: &str) -> (pbatch::Engine, tempfile::TempDir) {
    let mut c = pbatch::Config::default();
    c.set("engine.timezone", "Asia/Shanghai").expect("tz");
    c.set("engine.sink_batch_records", "2").expect("batch");
    c.set("report.url", url).expect("url");
    let (engine, data) = crate::util::engine_with_ev(
        c,
        ROWS,
        r#"[{"key":"id","valtype":"long"},{"key":"name","valtype":"string"},{"key":"v","valtype":"float"},
            {"key":"ok","valtype":"boolean"},{"key":"ts","valtype":"date"}]"#,
    );
    crate::util::add_job(
        &engine,
        "j",
        "SELECT id, name, v, ok, ts FROM ev",
        r#"{"type":"crontab","spec":{"crontab":"0 0 1 * * *"}}"#,
    );
    (engine, data)
}

fn export(engine: &pbatch::Engine, db: &str, save_mode: &str) {
    let _ = engine.delete_export("j", "rep");
    crate::util::add_export(
        engine,
        "j",
        "rep",
        &format!(
            r##"{{"type":"report","spec":{{"dbName":"{db}","tableName":"daily","saveMode":"{save_mode}",
                "columns":{{"rid":"#id","who":"#name","val":"#v","good":"#ok","at":"#ts"}}}}}}"##
        ),
    );
}

fn t() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T09:00:00+08:00").expect("time")
}

async fn check(engine: &pbatch::Engine, query: impl Fn(&str) -> String, expected: &str) {
    // append a batch and rerun it: 3 rows (the rerun replaced them); append
    // the next hour's batch: 6; then overwrite: 3
    export(engine, "reports", "append");
    for _ in 0..2 {
        let r = engine.run_once("j", &[], t()).await.expect("run");
        assert_eq!(r.exports[0].rows, 3);
    }
    assert_eq!(query("SELECT count(*) FROM daily"), "3", "a rerun duplicated rows");
    let next = t() + chrono::Duration::hours(1);
    engine.run_once("j", &[], next).await.expect("next batch");
    assert_eq!(query("SELECT count(*) FROM daily"), "6");
    assert_eq!(
        query("SELECT pbatch_batch FROM daily GROUP BY pbatch_batch ORDER BY pbatch_batch"),
        "j/2026-03-01T09:00:00+08:00/rep\nj/2026-03-01T10:00:00+08:00/rep"
    );
    export(engine, "reports", "overwrite");
    engine.run_once("j", &[], t()).await.expect("overwrite");
    assert_eq!(query("SELECT count(*) FROM daily"), "3");
    assert_eq!(
        query("SELECT rid, who, val, good, at FROM daily ORDER BY rid"),
        expected
    );
    // a database that does not exist
    export(engine, "nodb", "append");
    let e = engine.run_once("j", &[], t()).await.expect_err("no db");
    assert_eq!(e.code().code(), "E18332", "{e}");
    assert!(e.message().contains("nodb"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_export_into_postgresql() {
    let pg = Postgres::start();
    let (engine, _d) = engine(&pg.url());
    check(
        &engine,
        |sql| pg.psql("reports", sql),
        "1|a'b|1.5|t|2026-03-01 00:00:00\n2||2.25|f|2026-03-01 00:00:01\n3|c\"d|||",
    )
    .await;
    assert_eq!(
        pg.psql(
            "reports",
            "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_name = 'daily'"
        ),
        "at timestamp without time zone, good boolean, rid bigint, val double precision, who text, pbatch_batch text",
        "the table was created with the type map"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_export_into_mariadb() {
    let my = Maria::start();
    let (engine, _d) = engine(&my.url());
    check(
        &engine,
        |sql| my.sql(&format!("USE reports; {sql}")),
        "1\ta'b\t1.5\t1\t2026-03-01 00:00:00.000000\n2\tNULL\t2.25\t0\t2026-03-01 00:00:01.000000\n3\tc\"d\tNULL\tNULL\tNULL",
    )
    .await;
}
