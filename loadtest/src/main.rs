//! `loadgen fanout …`: see [`args::USAGE`].

mod args;
mod fanout;
mod http;
mod procfs;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(scenario), rest) = (args.first(), args.get(1..).unwrap_or(&[])) else {
        eprintln!("{}", args::USAGE);
        return ExitCode::from(2);
    };
    if scenario != "fanout" {
        eprintln!("unknown scenario {scenario:?}\n{}", args::USAGE);
        return ExitCode::from(2);
    }
    let opts = match args::Options::parse(rest) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e:#}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fanout::run(opts)) {
        Ok(report) => {
            println!("{report:#}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
