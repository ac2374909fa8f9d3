//! `eye`: the command line of The Eye.

use clap::{Parser, Subcommand};
use eye_server::{Config, Role};

/// The Eye: event ingestion and analytics.
#[derive(Debug, Parser)]
#[command(name = "eye", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    config: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HTTP API and workers in one process (migrates the database first).
    Serve,
    /// HTTP API only.
    Api,
    /// Workers only.
    Worker,
    /// Migrate the database and exit.
    Migrate,
    /// Print the OpenAPI spec (JSON) and exit.
    Openapi,
    /// Manage applications.
    Apps {
        #[command(subcommand)]
        command: AppsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AppsCommand {
    /// Register an application and print its ingest key once, as JSON.
    Create {
        /// A unique name.
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve => run(&cli.config, Role::All).await,
        Command::Api => run(&cli.config, Role::Api).await,
        Command::Worker => run(&cli.config, Role::Worker).await,
        Command::Migrate => migrate(&cli.config).await,
        Command::Openapi => print(&eye_server::api::spec::spec()),
        Command::Apps {
            command: AppsCommand::Create { name },
        } => create_app(&cli.config, &name).await,
    }
}

async fn run(config: &Config, role: Role) -> anyhow::Result<()> {
    let service = eye_server::start(config, role).await?;
    service.run_until_signal().await;
    Ok(())
}

/// Migrates and says what changed, so an operator can tell a fresh schema from a current one.
async fn migrate(config: &Config) -> anyhow::Result<()> {
    let migrated = eye_server::migrate(config).await?;
    match (migrated.applied.first(), migrated.applied.last()) {
        (Some(first), Some(last)) => print(&format!(
            "applied {} of {} migrations ({first} .. {last}); the schema is current",
            migrated.applied.len(),
            migrated.total
        )),
        _ => print(&format!(
            "the schema is already current ({} migrations); nothing to do",
            migrated.total
        )),
    }
}

async fn create_app(config: &Config, name: &str) -> anyhow::Result<()> {
    let store = eye_server::open_store(config).await?;
    let created = store.create_application(name).await?;
    let out = serde_json::json!({
        "id": created.application.id,
        "name": created.application.name,
        "ingest_key": created.ingest_key.expose(),
    });
    print(&out.to_string())
}

/// Command output goes to stdout; everything else is logged.
fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout(), "{text}")?;
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
