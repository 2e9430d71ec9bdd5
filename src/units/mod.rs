//! Values as operators write them in `watchdog.yaml`: durations (`15s`, `500ms`) and byte
//! sizes (`256MiB`). Neutral ground: config, the checks, the device layer and the fence bound
//! all read and print them, and this module imports none of them.

mod duration;
mod size;
mod term;

pub use duration::{format_duration, parse_duration, HumanDuration};
pub use size::{format_size, HumanSize};
