//! What can go wrong when loading a config file, with enough detail for the user to fix it.

use std::fmt;
use std::path::PathBuf;

/// A config file that could not be turned into a usable configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable). The cause is the `source`.
    #[error("cannot read config file {}", path.display())]
    Io {
        /// The file we tried to read.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the config's shape (unknown key, wrong type,
    /// bad duration). Stops at the first such error, as the TOML parser does.
    #[error("cannot parse config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line, column and the offending text.
        message: String,
    },
    /// The file parsed, but its contents do not make sense together (unknown names, out-of-range
    /// levels, loops). Lists every problem, not just the first.
    #[error("invalid config file {}:{}", path.display(), ProblemLines(problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in a stable order.
        problems: Vec<Problem>,
    },
}

/// One thing wrong with a config, at one place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a dotted key path with array indices: `queues.billing.escalation[1].after`.
    pub path: String,
    /// What is wrong, and where useful what would be right.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Renders problems one per line, indented under the heading.
struct ProblemLines<'a>(&'a [Problem]);

impl fmt::Display for ProblemLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_problem_on_its_own_line() {
        let err = ConfigError::Invalid {
            path: PathBuf::from("switchboard.toml"),
            problems: vec![
                Problem::new("queues.vip.sla", "unknown SLA policy \"gold\""),
                Problem::new("agents[2].skills.klingon", "unknown skill"),
            ],
        };
        assert_eq!(
            err.to_string(),
            "invalid config file switchboard.toml:\n  \
             queues.vip.sla: unknown SLA policy \"gold\"\n  \
             agents[2].skills.klingon: unknown skill"
        );
    }
}
