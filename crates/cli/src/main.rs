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

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (`include/mimalloc.h`: 15 in v3, which
/// the crate builds, and in v2; the Rust bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keep freed memory committed. By default mimalloc hands pages that stay free past a delay
/// back to the kernel (`MADV_DONTNEED`), and a later op's output buffer faults them back in
/// zeroed: with it, a probed MLP pass (depth 50, width 512, batch 256) took 29,000 page
/// faults and 190-225 ms; without it, 700 and 165-175 ms (`sigprop bench`, 2026-12-07). The
/// resident peak is the same; what is kept is reused by the next pass. Set as the default,
/// so that `MIMALLOC_PURGE_DELAY` in the environment still decides.
#[allow(unsafe_code)]
fn allocator_options() {
    // SAFETY: `mi_option_set_default` only stores the value in mimalloc's option table; it
    // reads no pointer and may be called at any time.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() -> ExitCode {
    allocator_options();
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
