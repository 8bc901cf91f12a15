//! The `domain-api` command line: the server and the admin commands. Every command
//! reads the same configuration as the server.

use std::io::{BufRead as _, Read as _, Write as _};

use anyhow::{Context as _, bail};
use clap::{CommandFactory as _, Parser, Subcommand};
use std::sync::Arc;

use domain_core::usecases::sign::SignMessageError;
use domain_core::{IssuedToken, OrganizationId};
use keys_rsa::Sealer;

use crate::app::{self, existing_store, migrated_store};
use crate::config::{Config, MasterKeySource, Origins, Refused, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "domain-api",
    version,
    about = "Provision sender domains: DKIM keys and the SPF, DKIM and DMARC records to publish."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Every setting, taken by every command (made global by [`command`]).
    #[command(flatten)]
    pub settings: Settings,
}

/// The command line's declaration: the commands, and every setting, accepted before
/// or after the command (`domain-api serve --bind …`) and listed by each `--help`.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command().mut_args(|arg| arg.global(true))
}

/// Parses the command line `args`, reading the settings' variables through `env` and
/// the configuration file they name.
///
/// # Errors
/// [`Refused`] for help, version, a bad command line, or a configuration file that
/// cannot be taken.
pub fn parse(
    args: &[std::ffi::OsString],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Cli, Origins), Refused> {
    crate::config::parse(&command(), args, env)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API token pairs.
    #[command(subcommand)]
    Token(TokenCommand),
    /// DKIM key administration.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Dashboard JWTs for the validate endpoint.
    #[command(subcommand)]
    Jwt(JwtCommand),
    /// Copy the SQLite database, consistently, while it serves (VACUUM INTO); prints
    /// one JSON line. The master key is not in the copy: keep it apart.
    Backup {
        /// The copy's path; must not exist.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Master-key administration.
    #[command(subcommand, name = "master-key")]
    MasterKey(MasterKeyCommand),
    /// Domain Connect: the signing key's public half.
    #[command(subcommand, name = "domain-connect")]
    DomainConnect(DomainConnectCommand),
}

#[derive(Debug, Subcommand)]
pub enum DomainConnectCommand {
    /// Print the TXT records to publish at `<DOMAIN_API_DOMAIN_CONNECT_KEY_HOST>.<the
    /// template's syncPubKeyDomain>`, one zone-file line each, relative to
    /// syncPubKeyDomain (`p=1,a=RS256,d=…`, the public key split across records).
    Pubkey,
}

#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Re-seal every domain's DKIM key under a new master key, in one transaction.
    /// Stop every instance first; restart them with the new key.
    Rotate {
        /// File holding the new key: base64 of 32 bytes (`openssl rand -base64 32`).
        #[arg(long = "new-key-file")]
        new_key_file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum JwtCommand {
    /// Mint an HS256 token for an organization (needs DOMAIN_API_JWT_SECRET).
    Issue {
        #[arg(long)]
        org: String,
        /// Lifetime: 30m, 1h, 7d, 1h 30m … or bare seconds.
        #[arg(long, default_value = "1h", value_parser = crate::durations::parse_ttl)]
        ttl: std::time::Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization and its first token pair; prints one JSON line.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List every organization: one JSON line each (id, name, created), oldest first.
    List,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue another token pair for an organization; prints one JSON line.
    Create {
        #[arg(long)]
        org: String,
    },
    /// Revoke a token pair by its access token (`-` reads it from standard input,
    /// keeping it out of the process list).
    Revoke {
        #[arg(long = "access-token")]
        access_token: String,
    },
    /// List an organization's token pairs: one JSON line each (id, created, revoked),
    /// never a token, a secret or a digest.
    List {
        #[arg(long)]
        org: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Print a domain's DKIM private key as PKCS#8 PEM.
    Export {
        #[arg(long)]
        domain: String,
    },
    /// Sign the message on standard input with the domain's DKIM key; print the
    /// signed message (its DKIM-Signature header field, then the message as read).
    Sign {
        #[arg(long)]
        domain: String,
    },
    /// Start a rotation of the domain's DKIM key now, whatever organization owns it,
    /// past the rotation interval and the key budget (a compromised key); print the
    /// new pending key's selector as JSON.
    Rotate {
        #[arg(long)]
        domain: String,
    },
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct IssuedJson<'a> {
    organization_id: &'a str,
    access_token: &'a str,
    secret_token: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct OrganizationJson<'a> {
    organization_id: &'a str,
    name: &'a str,
    created_at: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenJson<'a> {
    token_id: i64,
    organization_id: &'a str,
    created_at: String,
    revoked_at: Option<String>,
}

/// RFC 3339 in UTC to the second: `2026-12-07T01:36:13Z`.
fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn print_line(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").context("Failed to write to standard output")
}

/// Runs one command to completion.
///
/// # Errors
/// Any failure, with context for the operator.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    // Only `serve` and `migrate` may create a database (and its master key); every
    // other command stops here, before anything is created, when there is none.
    if !matches!(
        command,
        Command::Serve | Command::Migrate | Command::DomainConnect(_)
    ) {
        app::require_database(&config)?;
    }
    match command {
        Command::Serve => app::serve(config).await,
        Command::Migrate => {
            if config.sqlite_path().is_some_and(|path| !path.exists()) {
                // A new database gets its key file with it, as `serve` would make it.
                config
                    .load_or_create_master_key()
                    .context("Failed to load the master key")?;
            }
            migrated_store(&config).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Org(OrgCommand::Create { name }) => {
            let admin = app::organizations(&config).await?;
            let (org, token) = admin
                .create_organization(&name)
                .await
                .context("Failed to create the organization")?;
            print_issued(&org, &token)
        }
        Command::Org(OrgCommand::List) => {
            let organizations = app::organizations(&config)
                .await?
                .list_organizations()
                .await
                .context("Failed to list the organizations")?;
            for org in organizations {
                print_line(&serde_json::to_string(&OrganizationJson {
                    organization_id: org.id.as_str(),
                    name: &org.name,
                    created_at: timestamp(org.created_at),
                })?)?;
            }
            Ok(())
        }
        Command::Token(TokenCommand::List { org }) => {
            let organization = OrganizationId::new(org);
            let tokens = app::organizations(&config)
                .await?
                .list_tokens(&organization)
                .await
                .context("Failed to list the tokens")?;
            for token in tokens {
                print_line(&serde_json::to_string(&TokenJson {
                    token_id: token.id,
                    organization_id: organization.as_str(),
                    created_at: timestamp(token.created_at),
                    revoked_at: token.revoked_at.map(timestamp),
                })?)?;
            }
            Ok(())
        }
        Command::Token(TokenCommand::Create { org }) => {
            let admin = app::organizations(&config).await?;
            let org = OrganizationId::new(org);
            let token = admin
                .create_token(&org)
                .await
                .context("Failed to create a token")?;
            print_issued(&org, &token)
        }
        Command::Token(TokenCommand::Revoke { access_token }) => {
            let access_token = if access_token == "-" {
                read_stdin_line()?
            } else {
                access_token
            };
            app::organizations(&config)
                .await?
                .revoke_token(&access_token)
                .await
                .context("Failed to revoke the token")?;
            print_line(r#"{"revoked":true}"#)
        }
        Command::Jwt(JwtCommand::Issue { org, ttl }) => {
            let secret = config
                .jwt_secret
                .as_ref()
                .context("DOMAIN_API_JWT_SECRET is not set: no token can be issued")?;
            if ttl > secret.max_ttl() {
                anyhow::bail!(
                    "--ttl {} is longer than DOMAIN_API_JWT_MAX_TTL ({})",
                    humantime::format_duration(ttl),
                    humantime::format_duration(secret.max_ttl())
                );
            }
            let organization = OrganizationId::new(org);
            app::organizations(&config)
                .await?
                .require(&organization)
                .await
                .context("Failed to issue the token")?;
            let token = secret
                .issue(&organization, ttl)
                .context("Failed to issue the token")?;
            print_line(&token)
        }
        Command::Backup { to } => backup(&config, &to).await,
        Command::DomainConnect(DomainConnectCommand::Pubkey) => {
            let settings = config.domain_connect.as_ref().context(
                "Domain Connect is not configured: set DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID, \
                 DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID and DOMAIN_API_DOMAIN_CONNECT_KEY_FILE",
            )?;
            let key = app::load_domain_connect_key(&settings.key_file)?;
            for record in key.txt_records() {
                print_line(&format!(
                    "{} {} IN TXT \"{record}\"",
                    settings.identity.key_host, config.record_ttl
                ))?;
            }
            Ok(())
        }
        Command::MasterKey(MasterKeyCommand::Rotate { new_key_file }) => {
            rotate_master_key(&config, &new_key_file).await
        }
        Command::Dkim(DkimCommand::Export { domain }) => {
            let pem = app::keys(&config)
                .await?
                .export(&domain)
                .await
                .context("Failed to export the DKIM key")?;
            let mut out = std::io::stdout().lock();
            out.write_all(pem.as_bytes())
                .context("Failed to write to standard output")
        }
        Command::Dkim(DkimCommand::Sign { domain }) => sign(&config, &domain).await,
        Command::Dkim(DkimCommand::Rotate { domain }) => rotate_dkim(&config, &domain).await,
    }
}

/// `dkim rotate`: the operator's rotation of a domain's key.
async fn rotate_dkim(config: &Config, domain: &str) -> anyhow::Result<()> {
    use domain_core::ports::store::DomainStore as _;
    let store = existing_store(config).await?;
    let name = domain_core::DomainName::parse(domain)
        .map_err(|_| anyhow::anyhow!("{domain:?} is not a domain name"))?;
    let Some(found) = store
        .find_domain(&name)
        .await
        .context("Failed to read the domain")?
    else {
        bail!("no domain {domain}");
    };
    let master_key = config.load_master_key()?;
    let built = app::build_state(config, store, &master_key)?;
    let view = built
        .state
        .manage
        .rotate_as_operator(&found.organization, name.as_ascii())
        .await
        .map_err(|error| anyhow::anyhow!("Failed to rotate the DKIM key: {error}"))?;
    let pending = view
        .dkim
        .iter()
        .find(|k| k.key.state == domain_core::lifecycle::KeyState::Pending)
        .map(|k| k.key.selector.as_str().to_owned())
        .unwrap_or_default();
    let json = serde_json::json!({ "domain": name.as_ascii(), "pendingSelector": pending });
    print_line(&json.to_string())
}

/// `backup --to FILE`: a consistent copy of the SQLite database.
async fn backup(config: &Config, to: &std::path::Path) -> anyhow::Result<()> {
    if config.sqlite_path().is_none() {
        bail!(
            "backup copies a SQLite database only; back PostgreSQL up with pg_dump \
             (docs/operations.md, \"Backups\")"
        );
    }
    let store = app::connect_store(config)?;
    store
        .backup_to(to)
        .await
        .with_context(|| format!("Failed to back the database up to {}", to.display()))?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "domain-api: the backup holds no master key: keep the key ({}) apart from it",
        config.master_key.describe()
    );
    print_line(&serde_json::to_string(&serde_json::json!({
        "backup": crate::config::absolute(to).display().to_string(),
        "bytes": bytes,
    }))?)
}

/// `dkim sign`: the message from standard input, signed, to standard output.
async fn sign(config: &Config, domain: &str) -> anyhow::Result<()> {
    let mut message = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut message)
        .context("Failed to read the message from standard input")?;
    let store = existing_store(config).await?;
    let use_case = app::sign_message(config, store)?;
    let signed = match use_case.execute(domain, &message).await {
        Ok(signed) => signed,
        Err(
            error @ (SignMessageError::InvalidDomain(_)
            | SignMessageError::NotFound
            | SignMessageError::MissingFrom),
        ) => bail!("{error}"),
        Err(error @ SignMessageError::KeyDoesNotOpen) => {
            bail!("{error} (is this the master key it was sealed with?)")
        }
        Err(error) => return Err(error).context("Failed to sign the message"),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&signed.prepend_to(&message))
        .and_then(|()| out.flush())
        .context("Failed to write to standard output")
}

fn print_issued(org: &OrganizationId, token: &IssuedToken) -> anyhow::Result<()> {
    let json = serde_json::to_string(&IssuedJson {
        organization_id: org.as_str(),
        access_token: &token.access_token,
        secret_token: &token.secret_token,
    })?;
    print_line(&json)
}

fn read_stdin_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("Failed to read standard input")?;
    Ok(line.trim().to_owned())
}

/// Re-seals every key under the new master key. With the SQLite default's key file,
/// the new key is written beside it first (`master.key.new`) and moved into place
/// only after the database commits, so no moment exists where neither key opens
/// the stored keys.
async fn rotate_master_key(config: &Config, new_key_file: &std::path::Path) -> anyhow::Result<()> {
    let new_text = std::fs::read_to_string(new_key_file)
        .with_context(|| format!("Failed to read {}", new_key_file.display()))?;
    let new_key = keys_rsa::MasterKey::from_base64(&new_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", new_key_file.display()))?;
    let old_key = config.load_master_key()?;
    if old_key.to_base64() == new_key.to_base64() {
        bail!("the new master key is the current one");
    }
    let keys = app::keys(config).await?;

    let staged = match &config.master_key {
        MasterKeySource::File(path) => Some((stage_key_file(path, &new_key)?, path.clone())),
        MasterKeySource::Given { .. } => None,
    };
    let new_sealer = Arc::new(Sealer::new(&new_key));
    let count = keys
        .reseal_all(
            new_sealer.clone(),
            Arc::new(keys_rsa::RingWebhookSecrets::new(new_sealer.clone())),
            Arc::new(keys_rsa::RingAnswerSealer::new(new_sealer)),
        )
        .await
        .context("Failed to re-seal the DKIM keys, webhook secrets and kept answers; nothing was changed")?;
    let (keys_count, secrets, answers) = (count.keys, count.webhook_secrets, count.answers);
    match staged {
        Some((staged, path)) => {
            std::fs::rename(&staged, &path).with_context(|| {
                format!(
                    "Keys are re-sealed, but moving {} to {} failed: move it by hand",
                    staged.display(),
                    path.display()
                )
            })?;
            eprintln!(
                "domain-api: re-sealed {keys_count} DKIM key(s), {secrets} webhook secret(s) and {answers} kept answer(s); {} now holds the new master key",
                path.display()
            );
        }
        None => eprintln!(
            "domain-api: re-sealed {keys_count} DKIM key(s), {secrets} webhook secret(s) and {answers} kept answer(s). Put the new key where the master key is read from ({}) before starting any instance.",
            config.master_key.describe()
        ),
    }
    print_line(&format!(
        r#"{{"resealed":{keys_count},"webhookSecrets":{secrets},"answers":{answers}}}"#
    ))
}

fn stage_key_file(
    path: &std::path::Path,
    key: &keys_rsa::MasterKey,
) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::fs::OpenOptionsExt as _;

    let staged = path.with_extension("key.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&staged)
        .with_context(|| format!("Failed to create {}", staged.display()))?;
    file.write_all(format!("{}\n", key.to_base64()).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("Failed to write {}", staged.display()))?;
    Ok(staged)
}
