//! `wdfeed validate`: every problem of a config, or "config looks good" and its fence bound.

use std::path::Path;

use crate::config::bound;
use crate::config::{self, EMBEDDED_DEFAULT};
use crate::device::sysfs;
use crate::system::Root;
use crate::Failure;

pub fn run(root: &Root, file: Option<&Path>, print_default: bool) -> Result<(), Failure> {
    if print_default {
        out!("{EMBEDDED_DEFAULT}");
        return Ok(());
    }
    let loaded = config::load(file).map_err(Failure::config)?;
    for w in &loaded.warnings {
        outln!("warning: {w}");
    }
    outln!("{}: config looks good", loaded.origin.name());
    let identities =
        sysfs::identities(root, loaded.config.devices.iter().map(|d| d.path.as_path()));
    outln!("{}", bound::compute(&loaded.config, &identities, None));
    for line in config::notes::validate_lines(&loaded.config) {
        outln!("{line}");
    }
    Ok(())
}
