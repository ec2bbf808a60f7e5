//! The `sigprop` binary: parse, run, and map errors to exit codes (2: the user's input,
//! 1: anything else). Everything else lives in the library crates.

mod args;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use sigprop_spec::RunnerError;

/// Burn's CPU backends allocate a fresh buffer for every op's output. mimalloc reuses freed
/// ones; glibc's malloc returned them to the kernel, and zeroing the pages it faulted back in
/// took about a quarter of a probed pass (perf, 2026-12-01).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: clap's first line names the flag and what is wrong; when it ends
            // with a colon, the flag is on the next line.
            let text = e.render().to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("error: bad arguments");
            match lines.next() {
                Some(next) if first.ends_with(':') => eprintln!("{first} {next}"),
                _ => eprintln!("{first}"),
            }
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        args::Command::Run(a) => commands::run_cmd(a),
        args::Command::Compare(a) => commands::compare_cmd(a),
        args::Command::Suite(a) => commands::suite_cmd(a),
        args::Command::Merge(a) => commands::merge_cmd(a),
        args::Command::Plot(a) => commands::plot_cmd(a),
        args::Command::List(a) => commands::list_cmd(a),
        args::Command::Theory(a) => commands::theory_cmd(a),
        args::Command::Bench(a) => commands::bench_cmd(a),
        args::Command::Recommend(a) => commands::recommend_cmd(a),
        args::Command::Train(a) => commands::train_cmd(a),
        args::Command::CoordCheck(a) => commands::coord_cmd(a),
        args::Command::Completions(a) => commands::completions_cmd(a),
        args::Command::Man => commands::man_cmd(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let user = e
                .downcast_ref::<RunnerError>()
                .is_some_and(RunnerError::is_user_error);
            // The whole chain (`context: cause: cause`) on one line; a cause that an outer
            // message already quotes (thiserror's `{source}`) is not repeated.
            let mut line = String::new();
            for cause in e.chain() {
                let text = cause
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                if line.contains(&text) {
                    continue;
                }
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&text);
            }
            eprintln!("error: {line}");
            ExitCode::from(if user { 2 } else { 1 })
        }
    }
}
