//! The `aligndiff` binary: parse arguments and call the engine.

mod cli;

fn main() -> std::process::ExitCode {
    aligndiff::util::memory::keep_temporaries();
    cli::main()
}
