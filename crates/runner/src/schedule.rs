//! The one scheduling loop of every study that runs networks (`run` and `suite`, `train`,
//! `coord-check`): its jobs over the CPU cores, or one at a time on a GPU with the next job's
//! weights staged on a second thread meanwhile, behind one progress bar. What a job is, how
//! its weights are staged and what it does with them is the caller's; where it runs and in
//! which order its results come back is decided here.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use sigprop_spec::error::RunnerError;

/// A progress bar over `len` units of work named `unit` (`runs`, `trainings`), `done` of
/// them finished before; hidden when `quiet` or when standard error is not a terminal.
pub(crate) fn progress_bar(len: usize, done: usize, unit: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}})  {{elapsed}} eta {{eta}}  {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(done as u64);
    bar
}

/// Where jobs run: in parallel over the CPU cores, or one at a time on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Every job's backend computes on the host: jobs in parallel, each staging its own
    /// weights.
    Cores,
    /// A GPU backend: one job at a time, the next job's weights staged (filled on the host
    /// and uploaded) on a second thread while the current one computes.
    Device,
    /// A GPU backend, one job at a time, each staged when its turn comes: for jobs whose
    /// staging may itself compute on the device (LSUV, MetaInit, GradInit and pruning
    /// before training), whose memory the estimate of a probed pass does not cover.
    DeviceInTurn,
}

impl Place {
    /// [`Place::Cores`] when every backend of `cpu` is a CPU backend, else the device,
    /// staging ahead when `stage_ahead`.
    pub(crate) fn of(mut cpu: impl Iterator<Item = bool>, stage_ahead: bool) -> Place {
        if cpu.all(|c| c) {
            Place::Cores
        } else if stage_ahead {
            Place::Device
        } else {
            Place::DeviceInTurn
        }
    }
}

/// `work(job, stage(job)?)` for every job of `jobs` at `place`, each finished job advancing
/// `bar` by `size(job)`; the results in job order.
///
/// Each job's numbers depend on the job alone, so they are the same wherever and in whatever
/// order the jobs ran. Once a job fails, no job after it (in job order) starts; those
/// before it still run, so the error returned is that of the first failing job in job
/// order, however the threads were timed.
pub(crate) fn schedule<J, S, R>(
    jobs: &[J],
    place: Place,
    bar: &ProgressBar,
    size: impl Fn(&J) -> u64 + Sync,
    stage: impl Fn(&J) -> Result<S, RunnerError> + Sync,
    work: impl Fn(&J, S) -> Result<R, RunnerError> + Sync,
) -> Result<Vec<R>, RunnerError>
where
    J: Sync,
    S: Send,
    R: Send,
{
    // The lowest index of a failed job (jobs.len() while none failed).
    let failed = AtomicUsize::new(jobs.len());
    let finish = |i: usize, job: &J, result: Result<R, RunnerError>| {
        match &result {
            Ok(_) => bar.inc(size(job)),
            Err(_) => {
                failed.fetch_min(i, Ordering::Relaxed);
            }
        }
        Some(result)
    };
    let skip = |i: usize| i > failed.load(Ordering::Relaxed);
    let results: Vec<Option<Result<R, RunnerError>>> = match place {
        Place::Cores => jobs
            .par_iter()
            .enumerate()
            .map(|(i, job)| {
                if skip(i) {
                    return None;
                }
                finish(i, job, stage(job).and_then(|s| work(job, s)))
            })
            .collect(),
        Place::DeviceInTurn => {
            let mut results = Vec::with_capacity(jobs.len());
            for (i, job) in jobs.iter().enumerate() {
                results.push(finish(i, job, stage(job).and_then(|s| work(job, s))));
                if skip(i + 1) {
                    break;
                }
            }
            results
        }
        Place::Device => std::thread::scope(|scope| {
            let stage = &stage;
            let ahead = |i: usize| jobs.get(i).map(|job| scope.spawn(move || stage(job)));
            let mut results = Vec::with_capacity(jobs.len());
            let mut next = ahead(0);
            for (i, job) in jobs.iter().enumerate() {
                let Some(handle) = next.take() else { break };
                let staged = handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                let result = finish(
                    i,
                    job,
                    staged.and_then(|s| {
                        next = ahead(i + 1);
                        work(job, s)
                    }),
                );
                results.push(result);
                if skip(i + 1) {
                    break;
                }
            }
            // A stage started for a job that will not run is waited for and dropped.
            if let Some(handle) = next {
                let _ = handle.join();
            }
            results
        }),
    };
    let mut out = Vec::with_capacity(jobs.len());
    for r in results {
        match r {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    if out.len() < jobs.len() {
        return Err(RunnerError::Internal(
            "a job was skipped although none failed".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails_at(place: Place, bad: &[usize]) -> Result<Vec<usize>, RunnerError> {
        let jobs: Vec<usize> = (0..40).collect();
        let bar = ProgressBar::hidden();
        schedule(
            &jobs,
            place,
            &bar,
            |_| 1,
            |&j| Ok(j * 10),
            |&j, s| {
                if bad.contains(&j) {
                    Err(RunnerError::input(format!("job {j}")))
                } else {
                    Ok(s + 1)
                }
            },
        )
    }

    #[test]
    fn results_come_back_in_job_order_on_cores_and_device() {
        for place in [Place::Cores, Place::Device, Place::DeviceInTurn] {
            let r = fails_at(place, &[]).unwrap();
            assert_eq!(r, (0..40).map(|j| j * 10 + 1).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_first_failed_job_is_reported() {
        // Whichever failing job's thread failed first, the first in job order is reported
        // (the jobs before it still run).
        for place in [Place::Cores, Place::Device, Place::DeviceInTurn] {
            for _ in 0..20 {
                let e = fails_at(place, &[37, 7, 3, 30]).unwrap_err();
                assert_eq!(e.to_string(), "job 3", "{place:?}");
            }
        }
    }

    #[test]
    fn a_failed_stage_is_the_job_error() {
        let jobs = [1usize, 2, 3];
        let bar = ProgressBar::hidden();
        for place in [Place::Cores, Place::Device, Place::DeviceInTurn] {
            let r: Result<Vec<usize>, _> = schedule(
                &jobs,
                place,
                &bar,
                |_| 1,
                |&j| {
                    if j == 2 {
                        Err(RunnerError::input("stage 2"))
                    } else {
                        Ok(j)
                    }
                },
                |_, s| Ok(s),
            );
            assert_eq!(r.unwrap_err().to_string(), "stage 2");
        }
    }

    #[test]
    fn the_bar_counts_each_job_by_its_size() {
        let jobs = [1u64, 2, 3, 4];
        let bar = ProgressBar::hidden();
        schedule(
            &jobs,
            Place::Device,
            &bar,
            |&j| j,
            |_| Ok(()),
            |_, _| Ok(()),
        )
        .unwrap();
        assert_eq!(bar.position(), 10);
    }
}
