//! `anxin`: the one binary of a deployment. It starts the server, manages sites and staff from
//! the command line, migrates, backs up and verifies the audit trail, and simulates a lock box.
//! It owns argument parsing and start-up only; everything else lives in the library crates.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anxin_domain::Role;
use anxin_server::clock::{Clock, ShiftedClock, SystemClock};
use anxin_server::i18n::I18n;
use anxin_server::{demo, AppState, Config, Settings};
use anxin_storage::vault::Vault;
use anxin_storage::{redact_url, Actor, NewUser, Store};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

/// Anxin (安心): the operating system of a community drug-treatment centre.
#[derive(Debug, Parser)]
#[command(name = "anxin", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML); every key is listed in docs/configuration.md.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the embedded SQLite database (ignored when database_url is set).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the web server (pages and the JSON API).
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Fill an empty database with a realistic demo centre and print its logins.
        #[arg(long)]
        demo: bool,
    },
    /// Staff accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Sites (centres) of the deployment.
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Organisation units: provinces, cities, districts; where centres sit; outside accounts' scopes.
    Unit {
        #[command(subcommand)]
        command: UnitCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Copy the embedded database to a new file (SQLite; use pg_dump for PostgreSQL).
    Backup {
        /// The backup file to create; it must not exist.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The take-home eligibility policy of a site.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Simulate a take-home lock box (provision, type codes, export its signed log).
    BoxSim(anxin_boxsim::BoxSimArgs),
    /// Text messages (the SMS outbox).
    Sms {
        #[command(subcommand)]
        command: SmsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a staff account; the password is read from standard input (one line).
    Add {
        /// Code of the site the account belongs to.
        #[arg(long, value_name = "CODE")]
        site: String,
        #[arg(long, value_name = "NAME")]
        username: String,
        /// admin, manager, prescriber, dispenser, counsellor, peer_educator, cdc_analyst or psb_officer.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// Interface language: zh-CN or en.
        #[arg(long, default_value = "zh-CN")]
        language: String,
    },
}

#[derive(Debug, Subcommand)]
enum UnitCommand {
    /// Add a unit (province, city or district) under its parent one level up.
    Add {
        /// Short code, e.g. YXS (capital letters, digits, -).
        #[arg(long, value_name = "CODE")]
        code: String,
        #[arg(long, value_name = "NAME")]
        name: String,
        /// province, city or district.
        #[arg(long, value_name = "LEVEL")]
        level: String,
        /// The code of the unit one level up.
        #[arg(long, value_name = "CODE")]
        parent: Option<String>,
        /// Its DHIS2 org-unit code [default: the code].
        #[arg(long, value_name = "CODE")]
        dhis2: Option<String>,
    },
    /// Place a centre in a city or district.
    Place {
        /// The centre's code.
        #[arg(long, value_name = "CODE")]
        site: String,
        /// The unit's code.
        #[arg(long, value_name = "CODE")]
        unit: String,
        /// The centre's DHIS2 org-unit code [default: its centre code].
        #[arg(long, value_name = "CODE")]
        dhis2: Option<String>,
    },
    /// Scope a CDC or police account to a unit (without --unit: the whole deployment).
    Scope {
        #[arg(long, value_name = "NAME")]
        username: String,
        #[arg(long, value_name = "CODE")]
        unit: Option<String>,
    },
    /// List the units and where the centres sit.
    List,
}

#[derive(Debug, Subcommand)]
enum SiteCommand {
    /// Add a site.
    Add {
        /// Short code, e.g. YX01 (capital letters, digits, -).
        #[arg(long, value_name = "CODE")]
        code: String,
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// List the sites.
    List,
}

#[derive(Debug, Subcommand)]
enum SmsCommand {
    /// Queue one neutral test message; the running server's worker sends it.
    Test {
        /// The phone number: +8613812345678 or 13812345678.
        #[arg(long, value_name = "NUMBER")]
        to: String,
        /// Code of the sending site [default: the only site].
        #[arg(long, value_name = "CODE")]
        site: Option<String>,
        /// Language of the text: zh-CN or en.
        #[arg(long, default_value = "zh-CN")]
        language: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Adopt a policy written in TOML (version, approval_valid_days, [[tiers]]) for a site.
    Adopt {
        #[arg(long, value_name = "CODE")]
        site: String,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the policy in force at a site, as TOML.
    Show {
        #[arg(long, value_name = "CODE")]
        site: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain (keyed with the data key file) and the signed checkpoints; exits 2
    /// and names the first altered, removed, reordered or forged entry.
    Verify {
        /// Directory of signed checkpoints to check the log against (default:
        /// `<data_dir>/audit-checkpoints` when it exists). Keep a copy somewhere else too.
        #[arg(long, value_name = "DIR")]
        checkpoints: Option<PathBuf>,
    },
    /// Sign a checkpoint of the chain head (sequence, hash, time) and write it to DIR
    /// (default `<data_dir>/audit-checkpoints`); `serve` does it at start and daily. Also
    /// prints it, to hand to a second party.
    Checkpoint {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Where `serve` and `anxin audit checkpoint` put signed checkpoints unless told otherwise.
fn checkpoint_dir(config: &Config) -> PathBuf {
    config.checkpoint_dir()
}

/// Writes a checkpoint as `checkpoint-<seq>-<ms>.txt` in `dir` (made if missing).
fn write_checkpoint(
    dir: &std::path::Path,
    cp: &anxin_domain::audit::Checkpoint,
) -> anyhow::Result<PathBuf> {
    anxin_server::checkpoints::write(dir, cp)
        .with_context(|| format!("writing in {}", dir.display()))
}

/// Every `checkpoint-*.txt` in `dir`; a file that is not one is an error naming it.
fn read_checkpoints(dir: &std::path::Path) -> anyhow::Result<Vec<anxin_domain::audit::Checkpoint>> {
    anxin_server::checkpoints::read_all(dir)
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    open_store_keyed(config, true).await
}

/// Opens the store and gives the audit trail its key, derived from the data key file (outside
/// the database). With `make_key` a fresh deployment gets a new key file, as `serve` would;
/// without it (verifying, say, a restored backup) a missing key file leaves keyed entries
/// uncheckable, and the verifier says so.
async fn open_store_keyed(config: &Config, make_key: bool) -> anyhow::Result<Store> {
    let store = match &config.database_url {
        Some(url) => Store::open(url.expose_secret()).await?,
        None => {
            let store = Store::open_data_dir(&config.data_dir).await?;
            store.migrate().await?;
            store
        }
    };
    let key_path = config.key_path();
    if make_key || key_path.exists() {
        let vault = Vault::from_key_file(&key_path, make_key)?;
        anxin_storage::audit::use_audit_key(vault.audit_key());
    }
    Ok(store)
}

fn where_is(config: &Config) -> String {
    match &config.database_url {
        Some(url) => redact_url(url.expose_secret()),
        None => format!("SQLite in {}", config.data_dir.display()),
    }
}

fn clock_of(config: &Config) -> anyhow::Result<Arc<dyn Clock>> {
    Ok(match config.clock_start()? {
        Some(start) => Arc::new(ShiftedClock::starting_at(start)),
        None => Arc::new(SystemClock),
    })
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Password (at least 12 characters): ")
            .context("reading the password");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// A use case's refusal as the command line says it: the field and the English message.
fn explain(e: anxin_app::Error) -> anyhow::Error {
    match e {
        anxin_app::Error::Domain(anxin_domain::DomainError::Refused(p)) => {
            let message = I18n::global().problem(anxin_server::i18n::Lang::En, &p);
            match &p.field {
                Some(field) => anyhow::anyhow!("{field}: {message}"),
                None => anyhow::anyhow!("{message}"),
            }
        }
        other => anyhow::anyhow!("{other}"),
    }
}

async fn serve(config: Config, listen: Option<String>, load_demo: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let listen = listen.unwrap_or_else(|| config.listen.clone());
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen: `{listen}` is not an address like 127.0.0.1:8080"))?;
    let store = open_store(&config).await?;
    anxin_server::throttle::configure(config.login.hash_permits, config.login.hash_wait_ms);
    tracing::info!(
        permits = anxin_server::throttle::gate().permits(),
        "password hashes computed at once"
    );
    let mut settings = Settings::from_config(&config)?;
    if load_demo && settings.box_station.is_none() {
        // The demo centre's boxes sit on a simulated bench (real protocol, simulated boxes).
        let bench = config.data_dir.join("box-bench");
        println!("Box station: simulated boxes in {}", bench.display());
        settings.box_station = Some(anxin_app::station::Line::Bench(bench));
    }
    let app = anxin_app::App::new(
        store.clone(),
        clock_of(&config)?,
        settings.app_settings(),
        Vault::from_key_file(&config.key_path(), true)?,
    );
    let indexed = anxin_app::identity::index_phones(&app)
        .await
        .map_err(|e| anyhow::anyhow!("phone index: {e}"))?;
    if indexed > 0 {
        tracing::info!(records = indexed, "phone numbers indexed for search");
    }
    let state = AppState::new(app, I18n::load()?, settings);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    if load_demo {
        let d = demo::load(&state.app, config.demo_seed)
            .await
            .map_err(|e| anyhow::anyhow!("demo: {e}"))?;
        if d.loaded {
            println!("Demo centre {} loaded: {} clients.", d.site.name, d.clients);
        } else {
            println!("The database already holds data; the demo centre was not reloaded.");
        }
        println!("Demo logins (password for all: {}):", demo::DEMO_PASSWORD);
        for (username, role, _) in demo::DEMO_LOGINS {
            println!("  {username:<11} {role}");
        }
        for (username, role, _, centre, unit) in demo::DEMO_CITY_LOGINS {
            match unit {
                Some(unit) => println!("  {username:<13} {role}, scoped to {unit}"),
                None => println!("  {username:<13} {role} at {centre}"),
            }
        }
    }
    println!(
        "Anxin is listening on {url}  (database: {})",
        where_is(&config)
    );
    tracing::info!(ms = started.elapsed().as_millis() as u64, "ready");
    let _sms_worker = anxin_server::sms::spawn_worker(state.clone(), &url, std::future::pending())?;
    // A signed checkpoint of the audit chain at start and every day, outside the database.
    let checkpoints = {
        let (state, store, dir) = (state.clone(), store.clone(), checkpoint_dir(&config));
        tokio::spawn(async move {
            let mut every_day = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
            loop {
                every_day.tick().await;
                match store.audit_checkpoint(state.now()).await {
                    Ok(Some(cp)) => match write_checkpoint(&dir, &cp) {
                        Ok(path) => {
                            tracing::info!(seq = cp.seq, path = %path.display(), "audit checkpoint")
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "AUDIT ALARM: checkpoint not written")
                        }
                    },
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "AUDIT ALARM: checkpoint not taken"),
                }
            }
        })
    };
    let _gps = if config.gps.enabled {
        Some(anxin_server::gps::start(state.clone()).await?)
    } else {
        None
    };
    anxin_server::serve(state, listener).await?;
    checkpoints.abort();
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::BoxSim(args) = cli.command {
        return Ok(match anxin_boxsim::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                if !e.is_refusal() {
                    eprintln!("error: {e}");
                }
                ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
            }
        });
    }
    let config = load_config(&cli)?;
    match cli.command {
        Command::Serve { listen, demo } => serve(config, listen, demo).await?,
        Command::Migrate => {
            open_store(&config).await?;
            println!("Database is up to date ({}).", where_is(&config));
        }
        Command::Site {
            command: SiteCommand::Add { code, name },
        } => {
            let store = open_store(&config).await?;
            let site = store
                .create_site(&Actor::cli(), &code, &name, clock_of(&config)?.now())
                .await?;
            println!("Site {} ({}) created.", site.code, site.name);
        }
        Command::Unit { command } => unit_command(&config, command).await?,
        Command::Site {
            command: SiteCommand::List,
        } => {
            let store = open_store(&config).await?;
            for s in store.list_sites().await? {
                println!("{}\t{}", s.code, s.name);
            }
        }
        Command::User {
            command:
                UserCommand::Add {
                    site,
                    username,
                    role,
                    language,
                },
        } => {
            let role: Role = role.parse()?;
            anxin_domain::validate::username(&username)?;
            let store = open_store(&config).await?;
            let site = store.site_by_code(&site).await?;
            let password = read_password()?;
            let password_hash = anxin_app::staff::new_password_hash(&password, &username, &site)
                .await
                .map_err(explain)?;
            let user = store
                .create_user(
                    &Actor::cli(),
                    NewUser {
                        site_id: site.id,
                        username,
                        full_name: String::new(),
                        role,
                        password_hash,
                        language,
                    },
                    clock_of(&config)?.now(),
                )
                .await?;
            println!(
                "Account {} ({}) created at {}.",
                user.username, user.role, site.code
            );
        }
        Command::Policy {
            command: PolicyCommand::Adopt { site, file },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let policy: anxin_domain::takehome::Policy = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message()))?;
            policy
                .validate()
                .map_err(|p| explain(anxin_app::Error::from(p)))?;
            let store = open_store(&config).await?;
            let site = store.site_by_code(&site).await?;
            let body = serde_json::to_string(&policy)?;
            store
                .adopt_policy(
                    &Actor::cli(),
                    site.id,
                    policy.version.trim(),
                    &body,
                    clock_of(&config)?.now(),
                )
                .await
                .map_err(|e| explain(anxin_app::Error::from(e)))?;
            println!(
                "Policy {} adopted at {}: {} tiers.",
                policy.version,
                site.code,
                policy.tiers.len()
            );
        }
        Command::Policy {
            command: PolicyCommand::Show { site },
        } => {
            let store = open_store(&config).await?;
            let site = store.site_by_code(&site).await?;
            let policy: anxin_domain::takehome::Policy = match store.current_policy(site.id).await?
            {
                Some(body) => serde_json::from_str(&body)?,
                None => anxin_domain::takehome::Policy::default(),
            };
            print!("{}", toml::to_string(&policy)?);
        }
        Command::Backup { to } => {
            let store = open_store(&config).await?;
            store.backup_to(&to).await?;
            println!(
                "Backup written to {} (readable by its owner only).\n\
                 It holds clients' identifying fields encrypted with the data key {}: keep a \
                 copy of that key too, stored apart from the backups. Without the key a \
                 restored backup cannot show who a client is nor verify the audit trail; with \
                 both, anyone can read everything.",
                to.display(),
                config.key_path().display()
            );
        }
        Command::Audit {
            command: AuditCommand::Verify { checkpoints },
        } => {
            let store = open_store_keyed(&config, false).await?;
            let dir = checkpoints.or_else(|| {
                let d = checkpoint_dir(&config);
                d.is_dir().then_some(d)
            });
            let signed = match &dir {
                Some(d) => {
                    let found = read_checkpoints(d)?;
                    if found.is_empty() {
                        bail!("--checkpoints: no checkpoint-*.txt in {}", d.display());
                    }
                    found
                }
                None => Vec::new(),
            };
            match store.verify_audit_against(&signed).await? {
                Ok(n) => match (&dir, signed.last()) {
                    (Some(d), Some(last)) => println!(
                        "Audit trail intact: {n} entries; {} signed checkpoints in {} match \
                         (the latest at entry {}).",
                        signed.len(),
                        d.display(),
                        last.seq
                    ),
                    _ => println!("Audit trail intact: {n} entries."),
                },
                Err(broken) => {
                    eprintln!("AUDIT TRAIL BROKEN: {broken}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
        Command::Audit {
            command: AuditCommand::Checkpoint { dir },
        } => {
            let store = open_store(&config).await?;
            let dir = dir.unwrap_or_else(|| checkpoint_dir(&config));
            let Some(cp) = store.audit_checkpoint(clock_of(&config)?.now()).await? else {
                bail!("no audit key: the data key file could not be used");
            };
            let path = write_checkpoint(&dir, &cp)?;
            print!("{}", cp.to_text());
            println!("Written to {}.", path.display());
        }
        Command::Sms {
            command: SmsCommand::Test { to, site, language },
        } => {
            let store = open_store(&config).await?;
            let site = match site {
                Some(code) => store.site_by_code(&code).await?,
                None => match store.list_sites().await?.as_slice() {
                    [only] => only.clone(),
                    _ => bail!("--site: name the sending site (there is not exactly one)"),
                },
            };
            let sms = anxin_sms::SmsSettings::new(config.sms.clone(), config.data_dir.clone());
            let m = anxin_server::sms::enqueue_test(
                &store,
                &sms,
                &Actor::cli(),
                site.id,
                &to,
                Some(&language),
                clock_of(&config)?.now(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Test message {} queued for {}.", m.id, m.recipient);
        }
        Command::BoxSim(_) => bail!("unreachable"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The `unit` subcommands, through the store as the other administration commands.
async fn unit_command(config: &Config, command: UnitCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = clock_of(config)?.now();
    let unit_named = |code: String| {
        let store = store.clone();
        async move {
            store
                .org_unit_by_code(&code)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no organisation unit has the code {code}"))
        }
    };
    match command {
        UnitCommand::Add {
            code,
            name,
            level,
            parent,
            dhis2,
        } => {
            let level: anxin_domain::org::OrgLevel =
                level.parse().map_err(anxin_domain::DomainError::from)?;
            let parent = match parent {
                Some(p) => Some(unit_named(p).await?),
                None => None,
            };
            let u = store
                .create_org_unit(
                    &Actor::cli(),
                    &anxin_storage::org_units::NewOrgUnit {
                        code: &code,
                        name: &name,
                        level,
                        parent: parent.as_ref(),
                        dhis2_code: dhis2.as_deref(),
                    },
                    now,
                )
                .await?;
            println!("Unit {} ({}, {}) created.", u.code, u.name, u.level);
        }
        UnitCommand::Place { site, unit, dhis2 } => {
            let s = store.site_by_code(&site).await?;
            let u = unit_named(unit).await?;
            store
                .place_site(&Actor::cli(), s.id, Some(&u), dhis2.as_deref(), now)
                .await?;
            println!("Centre {} placed in {}.", s.code, u.code);
        }
        UnitCommand::Scope { username, unit } => {
            let user = store
                .user_auth(&username)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account {username}"))?
                .user;
            if !user.role.is_outside() {
                anyhow::bail!(
                    "only CDC and police accounts are scoped to a unit ({username} is a {})",
                    user.role
                );
            }
            let u = match unit {
                Some(code) => Some(unit_named(code).await?),
                None => None,
            };
            store
                .scope_user(&Actor::cli(), user.id, u.as_ref(), now)
                .await?;
            println!(
                "{username} now sees {}.",
                u.map_or_else(|| "the whole deployment".to_owned(), |u| u.code)
            );
        }
        UnitCommand::List => {
            let units = store.org_units().await?;
            let code_of = |id: Option<i64>| {
                id.and_then(|id| units.iter().find(|u| u.id == id))
                    .map_or("-".to_owned(), |u| u.code.clone())
            };
            for u in &units {
                println!(
                    "{}\t{}\t{}\tin {}\tDHIS2 {}",
                    u.code,
                    u.level,
                    u.name,
                    code_of(u.parent_id),
                    u.dhis2_code
                );
            }
            for p in store.site_places().await? {
                println!(
                    "centre {}\tin {}\tDHIS2 {}",
                    p.code,
                    code_of(p.unit_id),
                    p.dhis2_code
                );
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ANXIN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
