//! `sluice-backend-picker`: sluice's command line and modules, plus this
//! example's `backend_picker` — a custom server binary built without
//! forking sluice.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(sluice::run_with(args, sluice_example_backend_picker::server_modules()));
}
