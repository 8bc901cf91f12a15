//! The `domain-api` command line: the server and the admin commands. Every command
//! reads the same configuration as the server.

use std::io::{BufRead as _, Write as _};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use domain_core::{DomainName, OrganizationId};
use keys_rsa::Sealer;

use crate::app;
use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "domain-api",
    version,
    about = "Provision sender domains: DKIM keys and the SPF, DKIM and DMARC records to publish."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
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
}

#[derive(Debug, Subcommand)]
pub enum JwtCommand {
    /// Mint an HS256 token for an organization (needs DOMAIN_API_JWT_SECRET).
    Issue {
        #[arg(long)]
        org: String,
        /// Lifetime: 30m, 1h, 7d …
        #[arg(long, default_value = "1h", value_parser = crate::jwt::parse_ttl)]
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
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Print a domain's DKIM private key as PKCS#8 PEM.
    Export {
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

fn print_line(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").context("Failed to write to standard output")
}

/// Runs one command to completion.
///
/// # Errors
/// Any failure, with context for the operator.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => app::serve(config).await,
        Command::Migrate => {
            let store = migrated_store(&config).await?;
            tracing::info!(backend = ?store.kind(), "migrations applied");
            Ok(())
        }
        Command::Org(OrgCommand::Create { name }) => {
            let store = migrated_store(&config).await?;
            let (org, token) = store
                .create_organization(&name)
                .await
                .context("Failed to create the organization")?;
            print_issued(&org, &token)
        }
        Command::Token(TokenCommand::Create { org }) => {
            let store = migrated_store(&config).await?;
            let org = OrganizationId::new(org);
            let token = store
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
            let store = migrated_store(&config).await?;
            if store
                .revoke_token(&access_token)
                .await
                .context("Failed to revoke the token")?
            {
                print_line(r#"{"revoked":true}"#)
            } else {
                bail!("no live token has that access token")
            }
        }
        Command::Jwt(JwtCommand::Issue { org, ttl }) => {
            let secret = config
                .jwt_secret
                .as_ref()
                .context("DOMAIN_API_JWT_SECRET is not set: no token can be issued")?;
            print_line(&secret.issue(&OrganizationId::new(org), ttl))
        }
        Command::Dkim(DkimCommand::Export { domain }) => {
            let domain =
                DomainName::parse(&domain).map_err(|e| anyhow::anyhow!("invalid domain: {e}"))?;
            let store = migrated_store(&config).await?;
            let sealed = store
                .sealed_key(&domain)
                .await
                .context("Failed to read the domain")?
                .with_context(|| format!("no domain {domain}"))?;
            let sealer = Sealer::new(&config.load_master_key()?);
            let pem = sealer.export_pkcs8_pem(&domain, &sealed).context(
                "Failed to open the DKIM key (is this the master key it was sealed with?)",
            )?;
            let mut out = std::io::stdout().lock();
            out.write_all(pem.as_bytes())
                .context("Failed to write to standard output")
        }
    }
}

async fn migrated_store(config: &Config) -> anyhow::Result<std::sync::Arc<store_diesel::Store>> {
    let store = app::connect_store(config)?;
    store
        .migrate()
        .await
        .context("Failed to apply database migrations")?;
    Ok(store)
}

fn print_issued(org: &OrganizationId, token: &store_diesel::IssuedToken) -> anyhow::Result<()> {
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
