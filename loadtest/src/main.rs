//! `loadgen fanout …` (see [`args::USAGE`]) and `loadgen webhooks …` (see
//! [`webhooks::USAGE`]).

mod args;
mod fanout;
mod http;
mod procfs;
mod trigger;
mod webhooks;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(scenario), rest) = (args.first(), args.get(1..).unwrap_or(&[])) else {
        eprintln!("{}", args::USAGE);
        return ExitCode::from(2);
    };
    if scenario == "webhooks" {
        return webhook_scenario(rest);
    }
    if scenario != "fanout" {
        eprintln!(
            "unknown scenario {scenario:?}\n{}\n{}",
            args::USAGE,
            webhooks::USAGE
        );
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

fn webhook_scenario(args: &[String]) -> ExitCode {
    let opts = match webhooks::Options::parse(args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e:#}\n{}", webhooks::USAGE);
            return ExitCode::from(2);
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(webhooks::run(opts)));
    match result {
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
