//! xlbctl, xlb's command line. `main` only hands over to `xlb::cli`, where
//! each verb has its own module.

fn main() -> std::process::ExitCode {
    xlb::cli::main()
}
