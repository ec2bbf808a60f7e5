//! The command-line arguments (clap derive). The flags that describe a network and a run,
//! training or coordinate check are the runner's own spec types (`Settings`, `TrainTable`,
//! `CoordTable`, `TaskSpec`: one definition for a flag and its suite key); nothing here
//! validates beyond clap's types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sigprop_spec::tables::{CoordTable, TaskSpec, TrainTable};
use sigprop_spec::{RunnerError, Settings};

const EXAMPLES: &str = "Examples:
  sigprop run --init he-normal --activation relu --depth 50 --width 512 --seeds 5
  sigprop compare --inits xavier-normal,he-normal,orthogonal --activations tanh,relu --depth 30
  sigprop suite                      (the built-in quickstart suite)
  sigprop plot reports/quickstart
  sigprop theory --activation tanh --sigma-b 0.2236 --info
  sigprop list inits";

/// Measure how signals propagate through deep networks at initialization.
#[derive(Debug, Parser)]
#[command(name = "sigprop", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one configuration over several seeds.
    #[command(
        after_help = "Example:\n  sigprop run --arch mlp --init he-normal --activation relu --depth 50 --width 512 --seeds 5 --out reports/he"
    )]
    Run(RunArgs),
    /// Run the cross product of initializers and activations, with overlaid charts.
    #[command(
        after_help = "Example:\n  sigprop compare --inits xavier-normal,he-normal,lecun-normal --activations tanh,relu --depth 30"
    )]
    Compare(CompareArgs),
    /// Run a suite file from experiments/ (a grid over any parameter); without a file, the
    /// built-in quickstart suite.
    #[command(
        after_help = "Example:\n  sigprop suite experiments/he2015.toml --out reports/he2015"
    )]
    Suite(SuiteArgs),
    /// Combine the folders of a suite's shards into one output folder: the same CSVs, charts
    /// and report as one machine running the whole suite.
    #[command(
        after_help = "Example:\n  sigprop merge reports/phase reports/phase-shard-1 reports/phase-shard-2 reports/phase-shard-3"
    )]
    Merge(MergeArgs),
    /// Redraw every chart and the report of an output folder from its CSVs alone.
    #[command(after_help = "Example:\n  sigprop plot reports/quickstart")]
    Plot(PlotArgs),
    /// List initializers, activations, architectures or backends.
    #[command(after_help = "Example:\n  sigprop list inits")]
    List(ListArgs),
    /// Mean-field predictions: per-layer CSV, fixed points (--info) or the phase diagram.
    #[command(
        after_help = "Examples:\n  sigprop theory --activation tanh --init variance-scaling:scale=1.5 --sigma-b 0.2236 --depth 50\n  sigprop theory --activation tanh --sigma-b 0.2236 --info\n  sigprop theory --activation tanh --phase-diagram --out reports/phase"
    )]
    Theory(TheoryArgs),
    /// Time the phases of one configuration's probed pass over repeats, next to the bare
    /// matrix product's rate on the same backend; writes bench.json.
    #[command(
        after_help = "Example:\n  sigprop bench --depth 50 --width 512 --batch 256 --repeats 5 --out reports/bench"
    )]
    Bench(BenchArgs),
    /// Measure every applicable initializer on one configuration and rank them: the
    /// verdict, the per-layer growth both ways with seed intervals, chi_1, and a one-line
    /// reason each; ties said as ties; the spec to use (`--init auto` takes it anywhere).
    #[command(
        after_help = "Examples:\n  sigprop recommend --activation relu --depth 50\n  sigprop recommend --arch cnn --activation tanh --depth 30 --width 32 --sigma-b 0.1"
    )]
    Recommend(RecommendArgs),
    /// Train the networks for a few hundred steps on a built-in task (or a CSV of yours):
    /// loss curves over seeds, update ratios and the per-layer statistics at logged steps.
    #[command(
        after_help = "Examples:\n  sigprop train --inits he-normal,xavier-normal --activations relu --depth 30 --width 256 --lr 0.01\n  sigprop train --task mixture --classes 10 --optimizer adam --lr 0.001,0.0001\n  sigprop train --task data --data my.csv --arch mlp --widths 4,64,64 --depth 2"
    )]
    Train(TrainArgs),
    /// The coordinate check (as microsoft/mup's coord_check, read by a fit): train several
    /// widths (or residual depths) for a few steps on one batch and fit how each layer's
    /// mean |h| scales with width, per parametrization.
    #[command(
        name = "coord-check",
        after_help = "Examples:\n  sigprop coord-check --widths 128,256,512,1024 --params standard,mup --optimizer adam --lr 0.001 --seeds 12\n  sigprop coord-check --arch resmlp --depths 4,8,16,32,64 --width 128 --params standard,depth-mup,completep --seeds 12"
    )]
    CoordCheck(CoordArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    #[command(
        after_help = "Examples:\n  source <(sigprop completions bash)\n  sigprop completions zsh > ~/.zfunc/_sigprop\n  sigprop completions fish > ~/.config/fish/completions/sigprop.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff): `sigprop man > sigprop.1; man ./sigprop.1`.
    Man,
}

/// The network and run parameters of every command that runs networks: the runner's
/// [`Settings`] (each field a flag, its documentation the help) and the architectures' own
/// flags.
#[derive(Debug, Args, Clone)]
pub struct NetArgs {
    #[command(flatten)]
    pub settings: Settings,
    /// Each architecture's own settings, as its flags.
    #[command(flatten)]
    pub own: ArchFlags,
}

impl NetArgs {
    /// The settings the flags give, the architectures' own included.
    pub fn settings(&self) -> Result<Settings, RunnerError> {
        let mut s = self.settings.clone();
        s.add_arch_flags(&self.own.0)?;
        Ok(s)
    }
}

/// The flags of every architecture's own settings (`--kernel`, `--norm`, ...), built from
/// the architectures' declared settings, so an architecture's module is the only place
/// that names them. Values are kept as text, in the order given, and read into the chosen
/// architecture's typed configuration by the runner: a flag it does not take is an error.
#[derive(Debug, Clone, Default)]
pub struct ArchFlags(pub Vec<(&'static str, String)>);

impl clap::FromArgMatches for ArchFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Vec::new();
        for (s, _) in sigprop_nets::all_settings() {
            match s.kind {
                sigprop_nets::SettingKind::Switch => {
                    if m.get_flag(s.key) {
                        given.push((s.key, "true".to_string()));
                    }
                }
                sigprop_nets::SettingKind::Texts => {
                    for v in m.get_many::<String>(s.key).into_iter().flatten() {
                        given.push((s.key, v.clone()));
                    }
                }
                _ => {
                    if let Some(v) = m.get_one::<String>(s.key) {
                        given.push((s.key, v.clone()));
                    }
                }
            }
        }
        Ok(ArchFlags(given))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for ArchFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let mut cmd = cmd;
        for (s, archs) in sigprop_nets::all_settings() {
            let names: Vec<&str> = archs.iter().map(|a| a.name()).collect();
            let arg = clap::Arg::new(s.key).long(s.key).help(format!(
                "{} ({})",
                s.help,
                names.join(", ")
            ));
            let arg = match s.kind {
                sigprop_nets::SettingKind::Switch => arg.action(clap::ArgAction::SetTrue),
                sigprop_nets::SettingKind::Texts => arg
                    .value_name("VALUE")
                    .allow_hyphen_values(true)
                    .action(clap::ArgAction::Append),
                _ => arg.value_name("VALUE").allow_hyphen_values(true),
            };
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// Where and how to write.
#[derive(Debug, Args, Clone)]
pub struct OutArgs {
    /// Output folder [default: a fresh folder under reports/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar and no summary table.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Keep the runs the --out folder already holds records of and run the rest (the
    /// folder must hold the same suite).
    #[arg(long)]
    pub resume: bool,
    /// Run one slice of the runs: K/N (1 <= K <= N), auto (a Slurm job array's task) or
    /// auto/N (a Kubernetes Indexed Job's index); `sigprop merge` combines the slices.
    #[arg(long, value_name = "K/N|auto|auto/N")]
    pub shard: Option<String>,
}

/// `sigprop run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Weight initializer spec [default: he-normal]; see `sigprop list inits`.
    #[arg(long)]
    pub init: Option<String>,
    /// Activation spec [default: relu]; see `sigprop list activations`.
    #[arg(long)]
    pub activation: Option<String>,
    /// Parametrization at initialization: standard (the default); depth-mup or completep,
    /// which scale a residual network's branches by L^-1/2 or L^-1; umup, u-muP's
    /// unit-scaled network with N(0, 1) weights (their training rules are train's and
    /// coord-check's).
    #[arg(long)]
    pub param: Option<String>,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub out: OutArgs,
}

/// `sigprop recommend`.
#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Activation spec [default: relu]; see `sigprop list activations`.
    #[arg(long)]
    pub activation: Option<String>,
    #[command(flatten)]
    pub net: NetArgs,
    /// Also evaluate the meta-learned metainit and gradinit (each runs 100 optimisation
    /// steps of 2 to 11 passes per seed: minutes at depth 50, width 256).
    #[arg(long)]
    pub learned: bool,
    /// Also train every candidate for K steps (the training probe) and rank by the final
    /// loss first, signal propagation second.
    #[arg(long, value_name = "K")]
    pub train: Option<usize>,
    /// Optimizer of --train: sgd (default), momentum, adam.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Learning rate of --train [default: 0.01].
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f64>,
    #[command(flatten)]
    pub task: TaskSpec,
    #[command(flatten)]
    pub out: OutArgs,
}

/// `sigprop bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Weight initializer spec [default: he-normal]; see `sigprop list inits`.
    #[arg(long)]
    pub init: Option<String>,
    /// Activation spec [default: relu]; see `sigprop list activations`.
    #[arg(long)]
    pub activation: Option<String>,
    #[command(flatten)]
    pub net: NetArgs,
    /// Timed repeats of the pass (the first seed's, the same work each time) [default: 5].
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Untimed repeats first (kernel compilation, caches) [default: 1].
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Folder for bench.json [default: reports/bench].
    #[arg(long, default_value = "reports/bench")]
    pub out: PathBuf,
    /// Print bench.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `sigprop compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Initializer specs, comma-separated; a spec's own `key=value` pairs stay with it
    /// (`variance-scaling:scale=2,mode=fan-avg,he-normal` is two specs).
    #[arg(long, required = true)]
    pub inits: Vec<String>,
    /// Activation specs, comma-separated as for --inits [default: relu].
    #[arg(long)]
    pub activations: Vec<String>,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub out: OutArgs,
}

/// `sigprop suite`.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Suite file (TOML); omitted: the built-in quickstart suite.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutArgs,
}

/// `sigprop merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The output folder to write.
    pub out: PathBuf,
    /// The shard folders (or one folder several shards wrote into).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Merge even when some runs have no record: each configuration over the seeds that
    /// have one.
    #[arg(long)]
    pub allow_partial: bool,
    /// No summary table.
    #[arg(long)]
    pub quiet: bool,
}

/// `sigprop plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// An output folder of an earlier run.
    pub dir: PathBuf,
}

/// `sigprop completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// `sigprop list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// inits, activations, archs or backends.
    pub what: String,
}

/// `sigprop theory`.
#[derive(Debug, Args)]
pub struct TheoryArgs {
    /// Activation spec.
    #[arg(long, default_value = "tanh")]
    pub activation: String,
    /// Weight initializer spec (sets sigma_w^2 = Var(W) * fan_in).
    #[arg(long)]
    pub init: Option<String>,
    /// Bias standard deviation [default: 0].
    #[arg(long, allow_hyphen_values = true)]
    pub sigma_b: Option<f64>,
    /// Layers [default: 20].
    #[arg(long)]
    pub depth: Option<usize>,
    /// Width [default: 256].
    #[arg(long)]
    pub width: Option<usize>,
    /// Batch (for wgrad_var) [default: 128].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Print q*, chi_1, xi_q, xi_c, the phase and the critical sigma_w instead of the CSV.
    #[arg(long)]
    pub info: bool,
    /// Draw the order/chaos phase diagram (SVG and PNG) into --out.
    #[arg(long)]
    pub phase_diagram: bool,
    /// Output folder for --phase-diagram [default: a fresh folder under reports/].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `sigprop train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Initializer specs, comma-separated as for `compare` [default: he-normal].
    #[arg(long)]
    pub inits: Vec<String>,
    /// Activation specs, comma-separated [default: relu].
    #[arg(long)]
    pub activations: Vec<String>,
    /// Depths, comma-separated: each configuration at each depth (with several learning
    /// rates, best_lr.csv says how the best one moves with depth) [default: --depth].
    #[arg(long, value_delimiter = ',', conflicts_with = "depth")]
    pub depths: Vec<usize>,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub table: TrainTable,
    /// Output folder [default: a fresh folder under reports/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar and no summary table.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `sigprop coord-check`.
#[derive(Debug, Args)]
pub struct CoordArgs {
    /// Weight initializer spec [default: he-normal].
    #[arg(long)]
    pub init: Option<String>,
    /// Activation spec [default: relu].
    #[arg(long)]
    pub activation: Option<String>,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub table: CoordTable,
    /// Output folder [default: a fresh folder under reports/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No summary table.
    #[arg(long)]
    pub quiet: bool,
}
