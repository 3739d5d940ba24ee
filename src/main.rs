//! The `sluice` command: nginx's command line over sluice's module bundle.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(sluice::run_with(args, sluice::modules()));
}
