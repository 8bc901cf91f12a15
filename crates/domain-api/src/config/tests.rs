//! The configuration's conversions, layers and declarations.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;

use domain_core::ownership::DEFAULT_CLAIM_TTL;

use super::secrets::read_or_create_key_file;
use super::*;

/// The configuration from `args` (after the program's name) and the variables `vars`.
fn parsed(args: &[&str], vars: &[(&str, &str)]) -> Result<(Config, Origins), ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let args: Vec<std::ffi::OsString> = std::iter::once("domain-api")
        .chain(args.iter().copied())
        .map(Into::into)
        .collect();
    let (cli, origins) = match crate::cli::parse(&args, &|name| map.get(name).cloned()) {
        Ok(parsed) => parsed,
        Err(Refused::Config(error)) => return Err(error),
        Err(Refused::Clap(error)) => panic!("{error}"),
    };
    Config::from_settings(&cli.settings, &origins).map(|config| (config, origins))
}

/// The configuration from the variables `vars` alone.
fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    parsed(&[], vars).map(|(config, _)| config)
}

#[test]
fn defaults_to_the_embedded_sqlite_setup() {
    let config = config(&[]).unwrap();
    assert_eq!(config.bind, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.database_url, "sqlite://data/domain-api.db");
    assert!(
        matches!(&config.master_key, MasterKeySource::File(p) if p == Path::new("data/master.key"))
    );
    assert_eq!(config.spf_ips, vec![IpAddr::from([51, 79, 43, 241])]);
    assert_eq!(
        config.inbound_mx_hosts,
        ["inbound.sendtrim.com", "smtp.sendtrim.com"]
    );
    assert_eq!(config.record_ttl, 3600);
    assert_eq!(config.dns_timeout, Duration::from_millis(2000));
    assert_eq!(config.check_deadline, Duration::from_millis(4000));
    assert_eq!(config.db_statement_timeout, Duration::from_millis(5000));
    assert!(config.dns_servers.is_none());
    assert_eq!(
        config.db_pool_size, 4,
        "SQLite serializes writers: a small pool"
    );
    assert_eq!(config.body_timeout, Duration::from_secs(10));
    assert_eq!(config.dkim_keys.retire_after, chrono::TimeDelta::days(7));
    assert_eq!(config.dkim_keys.revoked_keep, chrono::TimeDelta::days(30));
    assert_eq!(config.setup_frame_ancestors, FrameAncestors::none());
    assert_eq!(config.migrate, MigrateMode::Auto);
    assert_eq!(config.admin_bind, None);
}

#[test]
fn reads_each_secret_from_a_file_or_a_systemd_credential() {
    let dir = tempfile::tempdir().unwrap();
    let key = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";
    let jwt = "a-dashboard-jwt-secret-of-at-least-32-bytes";
    let url = "postgres://u:p@127.0.0.1/db";
    for (name, value) in [("key", key), ("jwt", jwt), ("url", url)] {
        std::fs::write(dir.path().join(name), format!("{value}\n")).unwrap();
    }
    let file = |name: &str| dir.path().join(name).display().to_string();
    let from_files = config(&[
        ("DOMAIN_API_MASTER_KEY_FILE", &file("key")),
        ("DOMAIN_API_JWT_SECRET_FILE", &file("jwt")),
        ("DOMAIN_API_DATABASE_URL_FILE", &file("url")),
    ])
    .unwrap();
    assert_eq!(from_files.database_url, url);
    assert!(matches!(
        &from_files.master_key,
        MasterKeySource::Given { key: k, origin } if k.to_base64() == key
            && *origin == format!("DOMAIN_API_MASTER_KEY_FILE {}", file("key"))
    ));
    // The file's line break is not part of the secret: a token it signs verifies
    // under the secret given as the variable.
    let with_env_secret = config(&[("DOMAIN_API_JWT_SECRET", jwt)]).unwrap();
    let organization = domain_core::OrganizationId::new("org-1");
    let token = from_files
        .jwt_secret
        .as_ref()
        .unwrap()
        .issue(&organization, Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        with_env_secret.jwt_secret.unwrap().verify(&token).unwrap(),
        organization
    );

    let credentials = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("master-key", key),
        ("jwt-secret", jwt),
        ("database-url", url),
    ] {
        std::fs::write(credentials.path().join(name), value).unwrap();
    }
    let directory = credentials.path().display().to_string();
    let from_credentials = config(&[("CREDENTIALS_DIRECTORY", &directory)]).unwrap();
    assert_eq!(from_credentials.database_url, url);
    assert!(from_credentials.jwt_secret.is_some());
    assert!(
        from_credentials
            .master_key
            .describe()
            .starts_with("credential master-key"),
        "{}",
        from_credentials.master_key.describe()
    );

    // Given twice, whichever two ways: the start stops, naming the setting.
    for (variable, twice) in [
        (
            "DOMAIN_API_MASTER_KEY",
            vec![
                ("DOMAIN_API_MASTER_KEY", key),
                ("DOMAIN_API_MASTER_KEY_FILE", &file("key")),
            ],
        ),
        (
            "DOMAIN_API_JWT_SECRET",
            vec![
                ("DOMAIN_API_JWT_SECRET", jwt),
                ("CREDENTIALS_DIRECTORY", &directory),
            ],
        ),
        (
            "DOMAIN_API_DATABASE_URL",
            vec![
                ("DOMAIN_API_DATABASE_URL_FILE", &file("url")),
                ("CREDENTIALS_DIRECTORY", &directory),
            ],
        ),
    ] {
        let error = config(&twice).unwrap_err();
        assert_eq!(error.variable, variable, "{error}");
        assert!(error.reason.contains("more than once"), "{error}");
        assert!(!error.to_string().contains(key) && !error.to_string().contains(jwt));
    }

    let missing = dir.path().join("nowhere").display().to_string();
    let error = config(&[("DOMAIN_API_JWT_SECRET_FILE", &missing)]).unwrap_err();
    assert_eq!(error.variable, "DOMAIN_API_JWT_SECRET_FILE");

    // A credentials directory that cannot be looked into stops the start: never a
    // silent fallback (to a new key file, say).
    let not_a_directory = file("key");
    let error = config(&[("CREDENTIALS_DIRECTORY", &not_a_directory)]).unwrap_err();
    assert_eq!(error.variable, "CREDENTIALS_DIRECTORY", "{error}");
}

#[test]
fn reads_the_migrate_mode() {
    for (value, mode) in [
        ("auto", MigrateMode::Auto),
        ("off", MigrateMode::Off),
        (" check ", MigrateMode::Check),
    ] {
        let config = config(&[("DOMAIN_API_MIGRATE", value)]).unwrap();
        assert_eq!(config.migrate, mode);
    }
    let error = config(&[("DOMAIN_API_MIGRATE", "yes")]).unwrap_err();
    assert_eq!(error.variable, "DOMAIN_API_MIGRATE");
}

#[test]
fn reads_the_origins_that_may_frame_the_setup_page() {
    let config = config(&[(
        "DOMAIN_API_SETUP_FRAME_ANCESTORS",
        "https://dash.example.com, https://admin.example.com",
    )])
    .unwrap();
    assert_eq!(
        config.setup_frame_ancestors.directive(),
        "https://dash.example.com https://admin.example.com"
    );
}

#[test]
fn reads_the_dkim_key_durations() {
    let config = config(&[
        ("DOMAIN_API_DKIM_RETIRE_AFTER", "1s"),
        ("DOMAIN_API_DKIM_REVOKED_KEEP", " 2h 30m "),
    ])
    .unwrap();
    assert_eq!(config.dkim_keys.retire_after, chrono::TimeDelta::seconds(1));
    assert_eq!(
        config.dkim_keys.revoked_keep,
        chrono::TimeDelta::minutes(150)
    );
}

#[test]
fn reads_the_ownership_and_verifier_settings() {
    let defaults = config(&[]).unwrap();
    assert_eq!(defaults.ownership.limits, CreationLimits::default());
    assert!(
        defaults
            .ownership
            .reserved
            .contains(&DomainName::parse("mail.sendtrim.com").unwrap())
    );
    assert_eq!(defaults.claim_ttl, DEFAULT_CLAIM_TTL);
    assert_eq!(defaults.verify_schedule, VerifySchedule::default());
    assert_eq!(
        defaults.verifier,
        Some(VerifierSettings {
            concurrency: 4,
            poll: Duration::from_secs(1)
        })
    );
    let set = config(&[
        ("DOMAIN_API_RESERVED_DOMAINS", "corp.example, other.test"),
        ("DOMAIN_API_MAX_DOMAINS_PER_ORG", "5"),
        ("DOMAIN_API_NEW_DOMAINS_PER_MINUTE", "2"),
        ("DOMAIN_API_CLAIM_TTL", "1h"),
        ("DOMAIN_API_VERIFY_SCHEDULE", "1s, 2s"),
        ("DOMAIN_API_VERIFY_INTERVAL", "1h"),
        ("DOMAIN_API_VERIFIER", "off"),
    ])
    .unwrap();
    assert_eq!(
        set.ownership.reserved.names(),
        ["corp.example", "other.test"]
    );
    assert_eq!(
        set.ownership.limits,
        CreationLimits {
            max_domains: 5,
            per_minute: 2,
            max_senders_per_domain: 1000,
        }
    );
    assert_eq!(set.claim_ttl, Duration::from_secs(3600));
    assert_eq!(
        set.verify_schedule,
        VerifySchedule::new(
            vec![chrono::TimeDelta::seconds(1), chrono::TimeDelta::seconds(2)],
            chrono::TimeDelta::hours(1)
        )
        .unwrap()
    );
    assert_eq!(set.verifier, None);
    for (variable, value) in [
        ("DOMAIN_API_RESERVED_DOMAINS", "not a domain"),
        ("DOMAIN_API_MAX_DOMAINS_PER_ORG", "0"),
        ("DOMAIN_API_NEW_DOMAINS_PER_MINUTE", "many"),
        ("DOMAIN_API_CLAIM_TTL", "forever"),
        ("DOMAIN_API_JWT_MAX_TTL", "soon"),
        ("DOMAIN_API_VERIFY_SCHEDULE", "1m,,5m"),
        ("DOMAIN_API_VERIFY_INTERVAL", "0s"),
        ("DOMAIN_API_VERIFIER", "maybe"),
        ("DOMAIN_API_VERIFY_CONCURRENCY", "0"),
    ] {
        let error = config(&[(variable, value)]).unwrap_err();
        assert_eq!(error.variable, variable, "{value}");
    }
}

#[test]
fn reads_the_body_timeout_in_milliseconds() {
    let config = config(&[("DOMAIN_API_BODY_TIMEOUT_MS", "300")]).unwrap();
    assert_eq!(config.body_timeout, Duration::from_millis(300));
}

#[test]
fn gives_postgres_a_larger_pool() {
    let key = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";
    let pg = config(&[
        ("DOMAIN_API_DATABASE_URL", "postgres://u:p@h/d"),
        ("DOMAIN_API_MASTER_KEY", key),
    ])
    .unwrap();
    assert_eq!(pg.db_pool_size, 16);
}

#[test]
fn names_the_variable_of_a_bad_value() {
    let cases = [
        ("DOMAIN_API_BIND", "nowhere"),
        ("DOMAIN_API_ADMIN_BIND", "9090"),
        ("DOMAIN_API_DATABASE_URL", "mysql://x"),
        ("DOMAIN_API_MASTER_KEY", "short"),
        ("DOMAIN_API_SPF_IPS", "51.79.43.241,not-an-ip"),
        ("DOMAIN_API_DNS_SERVERS", "127.0.0.1"),
        ("DOMAIN_API_DNS_TIMEOUT_MS", "0"),
        ("DOMAIN_API_DNS_TIMEOUT_MS", "soon"),
        ("DOMAIN_API_LOG_FORMAT", "xml"),
        ("DOMAIN_API_JWT_SECRET", "too-short"),
        ("DOMAIN_API_SETUP_FRAME_ANCESTORS", "*"),
        (
            "DOMAIN_API_SETUP_FRAME_ANCESTORS",
            "https://dash.example.com/app",
        ),
        ("DOMAIN_API_SETUP_FRAME_ANCESTORS", "http://*.com"),
        ("DOMAIN_API_SETUP_FRAME_ANCESTORS", "https://*.co.uk"),
        (
            "DOMAIN_API_SETUP_FRAME_ANCESTORS",
            "http://dash.example.com",
        ),
        ("DOMAIN_API_KEY_POOL_SIZE", "-1"),
        ("DOMAIN_API_BODY_TIMEOUT_MS", "0"),
        ("DOMAIN_API_BODY_TIMEOUT_MS", "10s"),
        ("DOMAIN_API_DB_STATEMENT_TIMEOUT_MS", "0"),
        ("DOMAIN_API_DB_STATEMENT_TIMEOUT_MS", "600001"),
        ("DOMAIN_API_DKIM_RETIRE_AFTER", "7"),
        ("DOMAIN_API_DKIM_RETIRE_AFTER", "0s"),
        ("DOMAIN_API_DKIM_REVOKED_KEEP", "forever"),
        ("DOMAIN_API_DKIM_ROTATION_INTERVAL", "daily"),
        ("DOMAIN_API_LIVE_CHECKS_PER_MINUTE", "0"),
        ("DOMAIN_API_CHECK_DEADLINE_MS", "0"),
        ("DOMAIN_API_CHECK_DEADLINE_MS", "2s"),
        ("DOMAIN_API_MAX_SENDERS_PER_DOMAIN", "0"),
        ("DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG", "64MiB"),
        ("DOMAIN_API_EVENT_RETENTION", "59m"),
        ("DOMAIN_API_EVENT_RETENTION", "forever"),
        ("DOMAIN_API_DKIM_REVOKED_KEEP", "100000000000y"),
    ];
    for (variable, value) in cases {
        let error = config(&[(variable, value)]).unwrap_err();
        assert_eq!(error.variable, variable, "{value}");
        assert!(error.to_string().starts_with(variable));
    }
}

#[test]
fn requires_a_master_key_with_postgres() {
    let error = config(&[("DOMAIN_API_DATABASE_URL", "postgres://u:p@localhost/db")]).unwrap_err();
    assert_eq!(error.variable, "DOMAIN_API_MASTER_KEY");
}

#[test]
fn never_echoes_a_bad_master_key() {
    let error =
        config(&[("DOMAIN_API_MASTER_KEY", "c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0")]).unwrap_err();
    assert!(!error.to_string().contains("c2VjcmV0"));
}

#[test]
fn generates_the_key_file_once_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("master.key");

    let first = read_or_create_key_file(&path).unwrap();
    let second = read_or_create_key_file(&path).unwrap();

    assert_eq!(first.to_base64(), second.to_base64());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A configuration file holding `text`, in a directory kept as long as the guard.
fn file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.display().to_string())
}

#[test]
fn the_command_line_wins_over_the_environment_the_file_and_the_default() {
    let (_dir, path) = file("dns_timeout_ms = 300\nkey_pool_size = 3\nclaim_ttl = \"2h\"\n");
    let (config, origins) = parsed(
        &["--config", &path, "--dns-timeout-ms", "100"],
        &[
            ("DOMAIN_API_DNS_TIMEOUT_MS", "200"),
            ("DOMAIN_API_KEY_POOL_SIZE", "2"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.dns_timeout,
        Duration::from_millis(100),
        "command line"
    );
    assert_eq!(config.key_pool_size, 2, "environment over file");
    assert_eq!(
        config.claim_ttl,
        Duration::from_secs(7200),
        "file over default"
    );
    assert_eq!(config.body_timeout, Duration::from_secs(10), "default");
    assert_eq!(origins.of("dns_timeout_ms"), Origin::CommandLine);
    assert_eq!(origins.of("key_pool_size"), Origin::Environment);
    assert_eq!(origins.of("claim_ttl"), Origin::File);
    assert_eq!(origins.of("body_timeout_ms"), Origin::Default);
    assert_eq!(origins.file(), Some(Path::new(&path)));
}

#[test]
fn a_setting_is_taken_after_the_command_too_and_the_file_from_its_variable() {
    let (_dir, path) =
        file("spf_ips = [\"192.0.2.1\", \"2001:db8::1\"]\nwebhook_allow_http = true\n");
    let (config, _) = parsed(
        &["serve", "--bind", "127.0.0.1:9999"],
        // A blank variable is unset: the file's value (or the default) stands.
        &[("DOMAIN_API_CONFIG", &path), ("DOMAIN_API_SPF_IPS", " ")],
    )
    .unwrap();
    assert_eq!(config.bind, "127.0.0.1:9999".parse().unwrap());
    assert_eq!(
        config.spf_ips,
        [
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            "2001:db8::1".parse().unwrap()
        ]
    );
    assert!(config.webhooks.policy.allow_http);
}

#[test]
fn an_unknown_key_in_the_file_stops_the_start_naming_it() {
    let (_dir, path) = file("bind = \"127.0.0.1:8080\"\ndns_timeout = 300\n");
    let error = parsed(&["--config", &path], &[]).unwrap_err();
    assert_eq!(error.variable, "DOMAIN_API_CONFIG");
    assert!(
        error.reason.contains("unknown setting \"dns_timeout\""),
        "{error}"
    );
    assert_eq!(error.to_string().lines().count(), 1);

    // Neither the file's own setting nor a variable's spelling is a key.
    for text in [
        "config = \"other.toml\"",
        "DOMAIN_API_BIND = \"127.0.0.1:1\"",
    ] {
        let (_dir, path) = file(text);
        let error = parsed(&["--config", &path], &[]).unwrap_err();
        assert!(error.reason.contains("unknown setting"), "{text}: {error}");
    }
}

#[test]
fn a_file_that_cannot_be_taken_stops_the_start_in_one_line() {
    for text in ["bind = [", "bind = 1.5", "[server]\nbind = \"127.0.0.1:1\""] {
        let (_dir, path) = file(text);
        let error = parsed(&["--config", &path], &[]).unwrap_err();
        assert_eq!(error.variable, "DOMAIN_API_CONFIG", "{text}");
        assert_eq!(error.to_string().lines().count(), 1, "{error}");
    }
    let error = parsed(&["--config", "/nonexistent/config.toml"], &[]).unwrap_err();
    assert_eq!(error.variable, "DOMAIN_API_CONFIG");
}

#[test]
fn a_bad_value_from_the_file_names_its_variable_and_key() {
    let (_dir, path) = file("dns_timeout_ms = 0\n");
    let args: Vec<std::ffi::OsString> = ["domain-api", "--config", &path]
        .into_iter()
        .map(Into::into)
        .collect();
    let (cli, origins) = crate::cli::parse(&args, &|_| None).unwrap();
    let error = Config::from_settings(&cli.settings, &origins).unwrap_err();
    assert_eq!(error.variable, "DOMAIN_API_DNS_TIMEOUT_MS");
    assert_eq!(
        origins.explain(&error),
        format!(
            "DOMAIN_API_DNS_TIMEOUT_MS: must be between 1 and 60000 (dns_timeout_ms in {path})"
        )
    );
}

#[test]
fn a_secret_in_the_file_and_its_file_variable_is_given_twice() {
    let dir = tempfile::tempdir().unwrap();
    let key = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, key).unwrap();
    let (_dir, path) = file(&format!("master_key = \"{key}\"\n"));
    let from_file = parsed(&["--config", &path], &[]).unwrap().0;
    assert!(matches!(
        from_file.master_key,
        MasterKeySource::Given { .. }
    ));
    let error = parsed(
        &["--config", &path],
        &[(
            "DOMAIN_API_MASTER_KEY_FILE",
            &key_file.display().to_string(),
        )],
    )
    .unwrap_err();
    assert_eq!(error.variable, "DOMAIN_API_MASTER_KEY");
    assert!(error.reason.contains("more than once"), "{error}");
    assert!(!error.to_string().contains(key));

    // The database URL's declared default is no giving: a credential may give it.
    let credentials = tempfile::tempdir().unwrap();
    let url = "sqlite:///var/lib/domain-api/domain-api.db";
    std::fs::write(credentials.path().join("database-url"), url).unwrap();
    let directory = credentials.path().display().to_string();
    let config = config(&[("CREDENTIALS_DIRECTORY", &directory)]).unwrap();
    assert_eq!(config.database_url, url);
    let error = parsed(
        &["--database-url", "sqlite://data/domain-api.db"],
        &[("CREDENTIALS_DIRECTORY", &directory)],
    )
    .unwrap_err();
    assert_eq!(error.variable, "DOMAIN_API_DATABASE_URL");
}

#[test]
fn the_declared_defaults_are_the_domains_defaults() {
    let defaults = config(&[]).unwrap();
    assert_eq!(defaults.ownership.limits, CreationLimits::default());
    assert_eq!(defaults.claim_ttl, DEFAULT_CLAIM_TTL);
    assert_eq!(defaults.verify_schedule, VerifySchedule::default());
    assert_eq!(defaults.dkim_keys, KeyPolicy::default());
    assert_eq!(
        defaults.dkim_rotation_interval,
        domain_core::usecases::manage::DEFAULT_ROTATION_INTERVAL
    );
    assert_eq!(
        defaults.live_checks_per_minute,
        api_actix::live_checks::DEFAULT_PER_MINUTE
    );
    assert_eq!(
        defaults.idempotency_ttl,
        domain_core::usecases::idempotency::DEFAULT_TTL
    );
    assert_eq!(
        defaults.idempotency_lease,
        domain_core::usecases::idempotency::DEFAULT_LEASE
    );
    assert_eq!(
        defaults.idempotency_max_bytes_per_org,
        domain_core::usecases::idempotency::DEFAULT_MAX_BYTES_PER_ORG
    );
    assert_eq!(
        defaults.event_retention,
        domain_core::usecases::retention::DEFAULT_EVENT_RETENTION
    );
    assert_eq!(defaults.webhooks.retry, RetrySchedule::standard());
    assert_eq!(
        defaults.webhooks.max_endpoints,
        domain_core::usecases::webhooks::DEFAULT_MAX_ENDPOINTS
    );
    assert_eq!(defaults.webhooks.policy, AddressPolicy::default());
    let with_secret = config(&[(
        "DOMAIN_API_JWT_SECRET",
        "a-dashboard-jwt-secret-of-at-least-32-bytes",
    )])
    .unwrap();
    assert_eq!(
        with_secret.jwt_secret.unwrap().max_ttl(),
        api_actix::jwt::DEFAULT_MAX_TTL
    );
}

/// The settings' declarations: (setting, variable, default, hidden).
fn declarations() -> Vec<(String, String, Option<String>, bool)> {
    crate::cli::command()
        .get_arguments()
        .filter_map(|arg| {
            let variable = arg.get_env()?.to_str()?.to_owned();
            let default = match arg.get_default_values() {
                [] => None,
                [one] => Some(one.to_str().unwrap().to_owned()),
                several => panic!("{variable}: {several:?}"),
            };
            Some((
                arg.get_id().as_str().to_owned(),
                variable,
                default,
                arg.is_hide_set(),
            ))
        })
        .collect()
}

#[test]
fn every_setting_is_named_after_its_variable() {
    let declared = declarations();
    assert!(declared.len() > 40, "{declared:?}");
    for (setting, variable, _, _) in declared {
        // The systemd's variable keeps its name.
        if variable == "CREDENTIALS_DIRECTORY" {
            assert_eq!(setting, "credentials_directory");
            continue;
        }
        assert_eq!(
            variable,
            format!("DOMAIN_API_{}", setting.to_uppercase()),
            "the file's key, the flag and the variable say the same name"
        );
    }
}

#[test]
fn serve_help_lists_every_setting_with_its_variable_and_default() {
    let mut command = crate::cli::command();
    command.build();
    let help = command
        .find_subcommand_mut("serve")
        .unwrap()
        .render_long_help()
        .to_string();
    for (setting, variable, default, hidden) in declarations() {
        let flag = format!("--{}", setting.replace('_', "-"));
        assert_eq!(help.contains(&flag), !hidden, "{flag}");
        if hidden {
            continue;
        }
        assert!(help.contains(&format!("[env: {variable}")), "{variable}");
        if let Some(default) = default {
            assert!(
                help.contains(&format!("[default: {default}]")),
                "{variable}"
            );
        }
    }
}

/// README's configuration table: variable → default column.
fn readme_table() -> Vec<(String, String)> {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README has a Configuration section");
    section
        .lines()
        .skip_while(|line| !line.starts_with("| variable |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let variable = cells[0].trim_start_matches("| ").trim_matches('`');
            (variable.to_owned(), cells[1].to_owned())
        })
        .collect()
}

#[test]
fn the_readme_table_is_the_declared_settings_with_their_defaults() {
    let table = readme_table();
    let declared = declarations();
    for (_, variable, default, hidden) in &declared {
        if *hidden {
            assert!(
                !table.iter().any(|(v, _)| v == variable),
                "{variable} is for tests only"
            );
            continue;
        }
        let Some((_, cell)) = table.iter().find(|(v, _)| v == variable) else {
            panic!("README's configuration table lacks {variable}");
        };
        match default {
            Some(default) => assert_eq!(cell, &format!("`{default}`"), "{variable}"),
            // A default that is not one value is said in words.
            None => {
                let one_value = cell.starts_with('`') && cell.matches('`').count() == 2;
                assert!(!cell.is_empty() && !one_value, "{variable}: {cell}");
            }
        }
    }
    for (variable, _) in &table {
        // RUST_LOG is tracing's own.
        assert!(
            variable == "RUST_LOG" || declared.iter().any(|(_, v, _, _)| v == variable),
            "README's table lists {variable}, which is not declared"
        );
    }
}

#[test]
fn the_record_ttl_is_a_number_of_seconds_within_a_week() {
    assert_eq!(
        config(&[("DOMAIN_API_RECORD_TTL", "300")])
            .unwrap()
            .record_ttl,
        300
    );
    for bad in ["0", "604801", "1h", "-5"] {
        let error = config(&[("DOMAIN_API_RECORD_TTL", bad)]).unwrap_err();
        assert!(
            error.to_string().contains("DOMAIN_API_RECORD_TTL"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn the_packaged_settings_file_is_taken_and_its_examples_too() {
    let shipped = include_str!("../../../../packaging/config.toml");
    let (_dir, path) = file(shipped);
    parsed(&["--config", &path], &[]).unwrap();
    let examples: String = shipped
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .filter(|line| line.contains(" = "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(examples.lines().count() > 10, "{examples}");
    let (_dir, path) = file(&examples);
    let (config, origins) = parsed(&["--config", &path], &[]).unwrap();
    assert_eq!(origins.of("dns_servers"), Origin::File);
    assert_eq!(
        config.dns_servers,
        Some(vec!["127.0.0.53:53".parse().unwrap()])
    );
}

#[test]
fn domain_connect_is_off_unless_its_three_settings_are_given_together() {
    assert_eq!(config(&[]).unwrap().domain_connect, None);
    let on = config(&[
        ("DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID", "mail.example"),
        ("DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID", "sending-domain"),
        (
            "DOMAIN_API_DOMAIN_CONNECT_KEY_FILE",
            "/etc/domain-api/dc.pem",
        ),
    ])
    .unwrap();
    assert_eq!(
        on.domain_connect,
        Some(DomainConnectSettings {
            identity: ServiceIdentity {
                provider_id: "mail.example".into(),
                service_id: "sending-domain".into(),
                key_host: "_dcpubkeyv1".into(),
            },
            key_file: PathBuf::from("/etc/domain-api/dc.pem"),
        })
    );
    let missing = config(&[
        ("DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID", "mail.example"),
        (
            "DOMAIN_API_DOMAIN_CONNECT_KEY_FILE",
            "/etc/domain-api/dc.pem",
        ),
    ])
    .unwrap_err();
    assert_eq!(missing.variable, "DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID");
    let bad = config(&[
        ("DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID", "mail example/x"),
        ("DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID", "sending-domain"),
        (
            "DOMAIN_API_DOMAIN_CONNECT_KEY_FILE",
            "/etc/domain-api/dc.pem",
        ),
    ])
    .unwrap_err();
    assert_eq!(bad.variable, "DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID");
}
