//! `wdfeed-doctor`: the executable `wdfeed doctor` runs (`wdfeed::doctor_main`, the crate's `doctor` module). Apart from the
//! daemon's, so the daemon neither maps nor locks the doctor's code.

fn main() -> std::process::ExitCode {
    wdfeed::doctor_main()
}
