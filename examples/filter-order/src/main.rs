//! `sluice-filter-order`: sluice's command line and modules, plus this
//! example's own — a custom server binary built without forking sluice.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(sluice::run_with(args, sluice_example_filter_order::server_modules()));
}
