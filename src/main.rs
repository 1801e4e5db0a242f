use std::process::ExitCode;

use clap::Parser;
use freedompay_receiver::cli::{Cli, run};

fn main() -> ExitCode {
    run(Cli::parse())
}
