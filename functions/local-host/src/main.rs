//! `local-host`: serves every Storefront function on 127.0.0.1 from one SQLite file, seeding a demo catalog
//! on first start. Wiring only: see `local_host::run`.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = local_host::Config::parse();
    local_host::init_logging(&config.log);
    local_host::run(config, local_host::shutdown_signal()).await
}
