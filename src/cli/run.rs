//! `wdfeed run`: the daemon (src/daemon/), with what the command line asked of it.

use std::path::PathBuf;

use crate::daemon::{self, Options};
use crate::system::Root;
use crate::Failure;

pub fn run(
    root: Root,
    config: Option<PathBuf>,
    dry_run: bool,
    status_file: PathBuf,
    runtime_dir: PathBuf,
    state_dir: PathBuf,
) -> Result<(), Failure> {
    daemon::run(Options {
        root,
        config,
        dry_run,
        status_file,
        runtime_dir,
        state_dir,
    })
}
