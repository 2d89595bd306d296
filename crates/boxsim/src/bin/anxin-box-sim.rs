//! `anxin-box-sim`: command-line lock box simulator (see `anxin_boxsim`).

use clap::Parser;

/// Simulates an Anxin take-home lock box.
#[derive(Debug, Parser)]
#[command(name = "anxin-box-sim", version, about)]
struct Cli {
    #[command(flatten)]
    args: anxin_boxsim::BoxSimArgs,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = anxin_boxsim::run(cli.args) {
        if !e.is_refusal() {
            eprintln!("error: {e}");
        }
        std::process::exit(e.exit_code());
    }
}
