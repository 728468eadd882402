//! `[classify]`: where the classification rules and the intent training data live, and the
//! time zone rules read `hour` and `weekday` in.
//!
//! Both files are named relative to the main config file, so a config directory moves as a
//! whole. The embedded default config names `rules.toml` and `intents.csv`; when the daemon
//! runs on the embedded config (no file on disk), those names resolve to the copies built into
//! the binary.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::classify::intent::{self, Example};
use crate::classify::rules::RuleSpec;

/// The shipped rules, built in for the embedded config.
const EMBEDDED_RULES: &str = include_str!("../../config/rules.toml");
/// The shipped demo intents, built in for the embedded config.
const EMBEDDED_INTENTS: &str = include_str!("../../config/intents.csv");

/// `[classify]`. Without it, contacts keep the routing their intake gives them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// The rules file (TOML, `[[rules]]` tables), relative to this file.
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// Labeled `text,intent` CSV the intent model trains on at start and on reload.
    #[serde(default)]
    pub intents: Option<PathBuf>,
    /// IANA time zone of `hour` and `weekday` in rules (default UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// ISO 639-3 codes of the languages language detection chooses among (default: every
    /// language whatlang knows). A center that serves five languages should list them: fewer
    /// confusions between close languages, and a faster detection.
    #[serde(default)]
    pub languages: Vec<String>,
}

/// The rules file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

/// Where companion files are read from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Companions<'a> {
    /// Next to the main file, in this directory.
    Dir(&'a Path),
    /// Built into the binary (the embedded default config).
    Embedded,
}

impl Companions<'_> {
    fn read(&self, name: &Path) -> Result<(PathBuf, String), ConfigError> {
        match self {
            Companions::Dir(dir) => {
                let path = dir.join(name);
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok((path, text))
            }
            Companions::Embedded => {
                let text = match name.to_str() {
                    Some("rules.toml") => EMBEDDED_RULES,
                    Some("intents.csv") => EMBEDDED_INTENTS,
                    _ => {
                        return Err(ConfigError::Io {
                            path: name.to_path_buf(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::NotFound,
                                "only rules.toml and intents.csv are built in",
                            ),
                        });
                    }
                };
                Ok((name.with_extension("embedded"), text.to_owned()))
            }
        }
    }
}

/// Reads and parses the rules and intents files `[classify]` names.
pub(super) fn load_companions(
    classify: &ClassifyConfig,
    companions: Companions<'_>,
) -> Result<(Vec<RuleSpec>, Vec<Example>), ConfigError> {
    let rules = match &classify.rules {
        None => Vec::new(),
        Some(name) => {
            let (path, text) = companions.read(name)?;
            let file: RulesFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path,
                message: e.to_string().trim_end().to_owned(),
            })?;
            file.rules
        }
    };
    let intents = match &classify.intents {
        None => Vec::new(),
        Some(name) => {
            let (path, text) = companions.read(name)?;
            intent::read_csv(&text).map_err(|e| ConfigError::Parse {
                path,
                message: e.to_string(),
            })?
        }
    };
    Ok((rules, intents))
}
