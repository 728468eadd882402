//! The `switchboard` command line.
//!
//! Subcommands:
//!
//! - `check-config`: load and validate a config file without starting anything, for CI and for
//!   operators before a reload. Exit status: 0 when valid, 1 when the file parsed but has
//!   problems (each printed on its own line as `FILE: PATH: MESSAGE`), 2 when the file could not
//!   be read or parsed (one error, with line and column for parse errors).
//!
//! `serve` (the daemon) comes next; it will take the same `--config` option.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard::config::{Config, ConfigError};

/// Where the config file lives when `--config` is not given: the shipped example, relative to the
/// working directory, so commands work from a fresh checkout.
const DEFAULT_CONFIG: &str = "config/switchboard.toml";

/// Omnichannel routing daemon (ACD) for contact centers.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config file and print a summary, or every problem found.
    ///
    /// Exits 0 when the file is valid, 1 when it has problems, 2 when it cannot be read or
    /// parsed.
    CheckConfig {
        /// The config file to check.
        #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

/// Exit status for a config with problems: the file is there but wrong.
const EXIT_INVALID: u8 = 1;
/// Exit status for a config that could not be read or parsed at all.
const EXIT_UNREADABLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => check_config(&config),
    }
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            println!(
                "ok: {} skills, {} SLA policies, {} queues, {} agents in {}",
                config.skills.len(),
                config.sla.len(),
                config.queues.len(),
                config.agents.len(),
                path.display(),
            );
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid { path, problems }) => {
            // One line per problem, prefixed with the file like a compiler, so editors and grep
            // can jump to it.
            for problem in &problems {
                eprintln!("{}: {problem}", path.display());
            }
            eprintln!(
                "{}: {} problem{}",
                path.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            ExitCode::from(EXIT_INVALID)
        }
        Err(err) => {
            // `{:#}` prints the cause chain on one line: "cannot read config file x: No such
            // file or directory (os error 2)".
            eprintln!("error: {:#}", anyhow::Error::new(err));
            ExitCode::from(EXIT_UNREADABLE)
        }
    }
}
