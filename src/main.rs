fn main() -> std::process::ExitCode {
    wdfeed::cli::main()
}
