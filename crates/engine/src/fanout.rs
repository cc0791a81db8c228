//! One batch's stream fanned out to its sinks: every export, and the kept
//! result when the job has downstream jobs.

use crate::batch::{Progress, ProgressFn, canceled_error};
use futures::StreamExt;
use pbatch_exec::{BatchPlan, exec_error};
use pbatch_model::{Error, Result};
use pbatch_sink::{Sink, SinkContext, Staged};

/// Opens a sink per export, and the kept result's under `results` when given.
pub(crate) fn open_sinks(
    exports: &[(String, pbatch_model::ExportSpec)],
    results: Option<&std::path::Path>,
    cx: &SinkContext<'_>,
    sinks: &mut Vec<Box<dyn Sink>>,
) -> Result<()> {
    for (name, export) in exports {
        sinks.push(pbatch_sink::open(name, export, cx)?);
    }
    if let Some(results) = results {
        sinks.push(pbatch_sink::open_result(results, cx)?);
    }
    Ok(())
}

/// Runs the plan and sends every record batch to every sink; a stop drops
/// the stream, which stops DataFusion's tasks. Every sink is finished
/// whatever happens, so no writer outlives the batch; the first error wins.
pub(crate) async fn fan_out(
    plan: &BatchPlan,
    mut sinks: Vec<Box<dyn Sink>>,
    progress: &ProgressFn,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(u64, Vec<Staged>)> {
    let mut rows: u64 = 0;
    let mut failed: Option<Error> = None;
    // bytes read, twice a second: an aggregation sends no rows until its end
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    match plan.execute() {
        Err(e) => failed = Some(e.into()),
        Ok(mut stream) => {
            // whether the stream was polled: a cluster job is submitted then
            let mut polled = false;
            loop {
                // None: stopped (a stop comes first: before the first poll it
                // sends no job at all)
                let next = tokio::select! {
                    biased;
                    _ = cancel.wait_for(|c| *c) => None,
                    next = stream.next() => Some(next),
                    _ = tick.tick() => {
                        polled = true;
                        progress(Progress::Read(plan.bytes_read()));
                        continue;
                    }
                };
                let Some(next) = next else {
                    failed = Some(canceled_error());
                    // a stop during a cluster job's submission: the job gets
                    // its id (to cancel it by) once the scheduler accepts it
                    if polled {
                        plan.until_job_known(&mut stream).await;
                    }
                    break;
                };
                polled = true;
                let batch = match next {
                    None => break,
                    Some(Ok(b)) => b,
                    Some(Err(e)) => {
                        failed = Some(exec_error(e).into());
                        break;
                    }
                };
                rows += plan.rows_of(&batch);
                progress(Progress::Rows(rows));
                let mut closed = false;
                for s in &mut sinks {
                    closed |= s.write(batch.clone()).await.is_err();
                }
                if closed {
                    break; // a sink failed: its error comes out of finish
                }
            }
        }
    }
    if failed.is_some() {
        if let Err(e) = plan.cancel().await {
            // the batch fails with its own error; a cluster job left running
            // ends by itself
            tracing::warn!(error = %e, "canceling the batch's cluster job");
        }
    } else if let Err(e) = plan.finish().await {
        // the result is whole; only the counts of a cluster's scans are missing
        tracing::warn!(error = %e, "fetching the cluster job's counts");
    }
    progress(Progress::Read(plan.bytes_read()));
    let mut staged = Vec::new();
    for s in sinks {
        match s.finish().await {
            Ok(st) => staged.push(st),
            Err(e) => {
                failed.get_or_insert(e.into());
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok((rows, staged)),
    }
}
