//! `sluice-guide`: sluice's command line and modules, plus the guide's
//! `quote` and `status` modules.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(sluice::run_with(args, sluice_example_guide::server_modules()));
}
