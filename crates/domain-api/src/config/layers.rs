//! Where each setting's value comes from: the command line, else the environment, else
//! the configuration file (`--config FILE` / `DOMAIN_API_CONFIG`), else its declared
//! default. A blank value in the environment or the file counts as unset.
//!
//! clap reads the command line; the environment and the file become each setting's
//! default before the one parse that fills the settings, so every value, whatever
//! its source, goes through the same conversion afterwards.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Command, FromArgMatches};

use super::ConfigError;
use super::values::invalid;

/// The setting naming the configuration file; not a key of the file itself.
const CONFIG: &str = "config";
const CONFIG_VARIABLE: &str = "DOMAIN_API_CONFIG";

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    CommandLine,
    Environment,
    File,
    Default,
}

/// Each setting's origin, and the file read, if any.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    file: Option<PathBuf>,
    /// Setting (the argument's id, the file's key) → its variable.
    variables: BTreeMap<String, String>,
    by_setting: BTreeMap<String, Origin>,
}

impl Origins {
    /// Where `setting` (e.g. `database_url`) came from.
    #[must_use]
    pub fn of(&self, setting: &str) -> Origin {
        self.by_setting
            .get(setting)
            .copied()
            .unwrap_or(Origin::Default)
    }

    /// The configuration file read, if any.
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The start's error line for `error`: naming the file and key too when the bad
    /// value came from the file.
    #[must_use]
    pub fn explain(&self, error: &ConfigError) -> String {
        let from_file = self.variables.iter().find(|(setting, variable)| {
            variable.as_str() == error.variable && self.of(setting) == Origin::File
        });
        match (from_file, &self.file) {
            (Some((setting, _)), Some(file)) => {
                format!("{error} ({setting} in {})", file.display())
            }
            _ => error.to_string(),
        }
    }
}

/// Why the command line and settings were not taken.
#[derive(Debug)]
pub enum Refused {
    /// Help, version, or a command line clap refuses: clap prints and exits.
    Clap(clap::Error),
    /// The configuration file is unreadable, not TOML, or has an unknown key.
    Config(ConfigError),
}

/// Parses `args` against `command`, whose top-level arguments are the settings (each
/// declared with its variable), reading variables through `env` only.
///
/// # Errors
/// [`Refused::Clap`] for help, version and a bad command line; [`Refused::Config`]
/// when the configuration file cannot be taken.
pub fn parse<T: FromArgMatches>(
    command: &Command,
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(T, Origins), Refused> {
    // Help, version and usage errors as clap renders them, each setting's variable
    // with it.
    command
        .clone()
        .try_get_matches_from(args)
        .map_err(Refused::Clap)?;

    let variables: BTreeMap<String, String> = command
        .get_arguments()
        .filter_map(|arg| {
            let variable = arg.get_env()?.to_str()?;
            Some((arg.get_id().as_str().to_owned(), variable.to_owned()))
        })
        .collect();
    // clap read the process's environment when the command was built: forget it, so
    // that `env` is the one source of variables (a map, in tests).
    let bare = command.clone().mut_args(|arg| {
        if arg.get_env().is_some() {
            arg.env(None::<&str>)
        } else {
            arg
        }
    });
    let command_line = bare
        .clone()
        .try_get_matches_from(args)
        .map_err(Refused::Clap)?;
    let from_env: BTreeMap<&str, String> = variables
        .iter()
        .filter_map(|(setting, variable)| Some((setting.as_str(), nonblank(env(variable))?)))
        .collect();

    let file = nonblank(command_line.get_one::<String>(CONFIG).cloned())
        .or_else(|| from_env.get(CONFIG).cloned())
        .map(PathBuf::from);
    let from_file = match &file {
        Some(path) => read_file(path, &variables).map_err(Refused::Config)?,
        None => BTreeMap::new(),
    };

    let mut by_setting = BTreeMap::new();
    let layered = bare.mut_args(|arg| {
        let setting = arg.get_id().as_str().to_owned();
        if !variables.contains_key(&setting) {
            return arg;
        }
        let (origin, value) =
            if command_line.value_source(&setting) == Some(ValueSource::CommandLine) {
                (Origin::CommandLine, None)
            } else if let Some(value) = from_env.get(setting.as_str()) {
                (Origin::Environment, Some(value.clone()))
            } else if let Some(value) = from_file.get(&setting) {
                (Origin::File, Some(value.clone()))
            } else {
                (Origin::Default, None)
            };
        by_setting.insert(setting, origin);
        match value {
            Some(value) => arg.default_value(value),
            None => arg,
        }
    });
    let matches = layered.try_get_matches_from(args).map_err(Refused::Clap)?;
    let parsed = T::from_arg_matches(&matches).map_err(Refused::Clap)?;
    Ok((
        parsed,
        Origins {
            file,
            variables,
            by_setting,
        },
    ))
}

fn nonblank(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The file's settings as text, by key. Every key must be a setting; a list becomes
/// the comma-separated text its variable would hold.
fn read_file(
    path: &Path,
    variables: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            CONFIG_VARIABLE,
            format!("reading {} failed: {e}", path.display()),
        )
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let at = line.map(|n| format!(" line {n}:")).unwrap_or_default();
        invalid(
            CONFIG_VARIABLE,
            format!(
                "{}:{at} not TOML: {}",
                path.display(),
                e.message().trim().replace('\n', " ")
            ),
        )
    })?;
    let mut settings = BTreeMap::new();
    for (key, value) in table {
        if key == CONFIG || !variables.contains_key(&key) {
            return Err(invalid(
                CONFIG_VARIABLE,
                format!(
                    "{}: unknown setting {key:?} (keys are the settings' names, as in `domain-api serve --help`, in snake case)",
                    path.display()
                ),
            ));
        }
        let text = as_text(&value).ok_or_else(|| {
            invalid(
                CONFIG_VARIABLE,
                format!(
                    "{}: {key}: expected a string, a whole number, true or false, or a list of them",
                    path.display()
                ),
            )
        })?;
        if !text.trim().is_empty() {
            settings.insert(key, text);
        }
    }
    Ok(settings)
}

/// A file value as the text of its variable.
fn as_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Boolean(yes) => Some(yes.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Array(_) => None,
                item => as_text(item),
            })
            .collect::<Option<Vec<_>>>()
            .map(|items| items.join(",")),
        _ => None,
    }
}
