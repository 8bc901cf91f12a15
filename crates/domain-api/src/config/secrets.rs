//! The secrets (master key, JWT secret, database URL), each given one way only: the
//! setting itself, a file named by its `…_FILE` setting, or a systemd credential; and
//! the SQLite default's master-key file beside the database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keys_rsa::MasterKey;

use super::values::{given as given_value, invalid};
use super::{ConfigError, absolute};

/// A secret setting, given in exactly one of three ways: the variable itself, a file
/// named by `<variable>_FILE` (kept out of the environment of every child and of
/// `/proc/<pid>/environ`), or the systemd credential `credential`
/// (`$CREDENTIALS_DIRECTORY/<credential>`, from the unit's `LoadCredential=`).
pub struct SecretSetting {
    pub variable: &'static str,
    pub file_variable: &'static str,
    pub credential: &'static str,
}

pub const MASTER_KEY: SecretSetting = SecretSetting {
    variable: "DOMAIN_API_MASTER_KEY",
    file_variable: "DOMAIN_API_MASTER_KEY_FILE",
    credential: "master-key",
};
pub const JWT_SECRET: SecretSetting = SecretSetting {
    variable: "DOMAIN_API_JWT_SECRET",
    file_variable: "DOMAIN_API_JWT_SECRET_FILE",
    credential: "jwt-secret",
};
pub const DATABASE_URL: SecretSetting = SecretSetting {
    variable: "DOMAIN_API_DATABASE_URL",
    file_variable: "DOMAIN_API_DATABASE_URL_FILE",
    credential: "database-url",
};

/// The secret's value and where it came from (never the value itself), or `None`
/// when it is given no way. A file's trailing line break is not part of the value.
///
/// # Errors
/// [`ConfigError`] naming the setting when it is given more than one way, or the
/// file's variable when the file cannot be read.
pub(super) fn secret(
    setting: &SecretSetting,
    value: Option<&str>,
    file: Option<&String>,
    credentials_directory: Option<&String>,
) -> Result<Option<(String, String)>, ConfigError> {
    let mut given: Vec<(String, Option<(PathBuf, &'static str)>)> = Vec::new();
    let value = value.filter(|v| !v.trim().is_empty());
    if value.is_some() {
        given.push((setting.variable.to_owned(), None));
    }
    if let Some(path) = given_value(file) {
        let path = PathBuf::from(path);
        given.push((
            format!("{} {}", setting.file_variable, path.display()),
            Some((path, setting.file_variable)),
        ));
    }
    if let Some(directory) = given_value(credentials_directory) {
        let path = Path::new(directory).join(setting.credential);
        // Absent is fine; present but out of reach is not (never fall back to,
        // say, a new key because the credential could not be looked at).
        let present = match std::fs::metadata(&path) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(invalid(
                    "CREDENTIALS_DIRECTORY",
                    format!("{}: {e}", path.display()),
                ));
            }
        };
        if present {
            given.push((
                format!("credential {} ({})", setting.credential, path.display()),
                Some((path, "CREDENTIALS_DIRECTORY")),
            ));
        }
    }
    match given.as_slice() {
        [] => Ok(None),
        [(origin, None)] => Ok(value.map(|value| (value.to_owned(), origin.clone()))),
        [(origin, Some((path, variable)))] => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(variable, format!("reading {} failed: {e}", path.display()))
            })?;
            let value = text.trim_end_matches(['\n', '\r']).to_owned();
            if value.trim().is_empty() {
                return Err(invalid(variable, format!("{} is empty", path.display())));
            }
            Ok(Some((value, origin.clone())))
        }
        several => Err(invalid(
            setting.variable,
            format!(
                "given more than once ({}): give it one way",
                several
                    .iter()
                    .map(|(origin, _)| origin.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `master.key` in the SQLite database's directory (`data/master.key` by default).
pub(super) fn master_key_path(database_url: &str) -> PathBuf {
    let path = Path::new(
        database_url
            .strip_prefix("sqlite://")
            .unwrap_or(database_url),
    );
    path.parent().unwrap_or(Path::new(".")).join("master.key")
}

const KEY_FILE_VARIABLE: &str = "DOMAIN_API_MASTER_KEY";

/// Reads the key file, which must exist.
pub(super) fn read_key_file(path: &Path) -> Result<MasterKey, ConfigError> {
    let contents = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            KEY_FILE_VARIABLE,
            format!(
                "unset, and reading {} failed: {e}",
                absolute(path).display()
            ),
        )
    })?;
    MasterKey::from_base64(&contents).map_err(|e| {
        invalid(
            KEY_FILE_VARIABLE,
            format!("unset, and {}: {e}", absolute(path).display()),
        )
    })
}

pub(super) fn read_or_create_key_file(path: &Path) -> Result<MasterKey, ConfigError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let file_error = |what: &str, e: std::io::Error| {
        invalid(
            KEY_FILE_VARIABLE,
            format!("unset, and {what} {} failed: {e}", path.display()),
        )
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| file_error("creating the directory of", e))?;
    }
    // create_new: of two processes starting at once, exactly one writes the key.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let key =
                MasterKey::generate().map_err(|e| invalid(KEY_FILE_VARIABLE, e.to_string()))?;
            file.write_all(format!("{}\n", key.to_base64()).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| file_error("writing", e))?;
            tracing::warn!(path = %path.display(), "generated a new master key; back it up: without it no DKIM key can be opened");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut contents = String::new();
            for _ in 0..50 {
                contents = std::fs::read_to_string(path).map_err(|e| file_error("reading", e))?;
                if !contents.trim().is_empty() {
                    break;
                }
                // Another process created the file a moment ago and is still writing it.
                std::thread::sleep(Duration::from_millis(20));
            }
            MasterKey::from_base64(&contents).map_err(|e| {
                invalid(
                    KEY_FILE_VARIABLE,
                    format!("unset, and {}: {e}", path.display()),
                )
            })
        }
        Err(e) => Err(file_error("creating", e)),
    }
}
