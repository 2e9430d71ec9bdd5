//! A mutation fuzzer on stable Rust: seeds from tests/fixtures, byte and token mutations,
//! every input through `wdfeed::fuzz_entry::run`. A panic is caught, the input is written to
//! `fuzz/crashes/<family>-<n>.bin`, and the run goes on. The slowest input is reported, so
//! a parser that turns quadratic shows up as a figure.
//!
//! Usage: wdfeed-fuzz FAMILY ITERATIONS [SEED]  (FAMILY `all` runs every family in turn)
//!        wdfeed-fuzz replay FAMILY FILE...       (times each file, says whether it panicked)

use std::panic;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wdfeed::fuzz_entry::{run, FAMILIES};

/// Tokens the parsers treat specially, spliced in whole.
const TOKENS: &[&str] = &[
    " ",
    "\n",
    "\t",
    "\r",
    "\0",
    " - ",
    "-",
    "(",
    ")",
    ":",
    "\\",
    "\\040",
    "\\777",
    "0x",
    "0x",
    "kB",
    "MemAvailable:",
    "btime ",
    "DEVNAME=",
    "..",
    "/",
    ",",
    "ro",
    "rw",
    "0",
    "1",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "4294967295",
    "4294967296",
    "99999999999999999999999",
    "NaN",
    "inf",
    "1e300",
    "\u{ff}",
    "\u{fffd}",
    "é",
    "[",
    "]",
    "{",
    "}",
    "- ",
    ": ",
    "&a ",
    "*a",
    "!!str ",
    "<<: ",
    "---\n",
    "...\n",
    "'",
    "\"",
    "#",
    "? ",
    "| ",
    "> ",
    "~",
    "null",
    "true",
    "1ns",
    "1ms",
    "0s",
    "1h",
    "500ms",
    "1y",
    "1.5s",
    "1e9s",
    "18446744073709551615s",
    "devices:",
    "checks:",
    "fence:",
    "interval:",
    "timeout:",
    "pretimeout:",
    "every:",
    "deadline:",
    "tolerance:",
    "stuck-after:",
    "kind:",
    "path:",
    "mount:",
    "pidfile:",
    "name:",
    "argv:",
    "kill:",
    "mode:",
    "on-exit:",
    "label:",
    "user:",
    "exe:",
    "writable",
    "block-io",
    "process",
    "memory",
    "load",
    "command",
    "fresh-file",
    "/dev/watchdog0",
    "min-available:",
    "max:",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Seed files for a family, from the fixture trees.
fn seeds(family: &str, repo: &Path) -> Vec<Vec<u8>> {
    let wanted: &[&str] = match family {
        "config" => &[".yaml"],
        "mountinfo" => &["mountinfo"],
        "diskstats" => &["diskstats", "/stat"],
        "loadavg" => &["loadavg"],
        "meminfo" => &["meminfo"],
        "process" => &["/stat", ".pid"],
        "ext4" => &["_time", "errors_count", "proc/stat"],
        "blockdev" => &["inflight", "uevent", "state", "/dev"],
        "sysfile" | "sysfs" => &["inflight", "_time", "errors_count", ".pid", "state"],
        _ => &[],
    };
    let mut files = Vec::new();
    walk(&repo.join("tests/fixtures"), &mut files);
    if family == "config" {
        files.push(repo.join("watchdog.yaml"));
        files.push(repo.join("src/config/default.yaml"));
        walk(&repo.join("deploy"), &mut files);
    }
    let mut out: Vec<Vec<u8>> = files
        .iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            wanted.iter().any(|w| s.ends_with(w))
        })
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| b.len() < 256 * 1024)
        .collect();
    out.sort();
    out.dedup();
    if family == "drbd" {
        // /proc/drbd as the 6.1 kernel's DRBD 8.4.11 printed it (src/system/drbd/tests.rs)
        for s in [
            "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: F73C670A7EC572DB9CF3E5B \n 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r----s\n    ns:0 nr:0 dw:0 dr:0 al:8 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:65496\n\n 2: cs:Unconfigured\n 3: cs:Unconfigured\n",
            "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: F73C670A7EC572DB9CF3E5B \n 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C s----s\n    ns:0 nr:0 dw:0 dr:0 al:8 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:65496\n",
            "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: X\n 0: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----\n    ns:0 nr:9216 dw:9216 dr:0 al:0 bm:0 lo:0 pe:2 ua:0 ap:0 ep:1 wo:f oos:121856\n\t[=>..................] sync'ed: 10.0% (121856/131032)K\n\tfinish: 0:00:11 speed: 10,240 (10,240) want: 10,240 K/sec\n",
            "version: 9.2.12 (api:2/proto:86-122)\nGIT-hash: abc build by x\n",
            "r0",
        ] {
            out.push(s.as_bytes().to_vec());
        }
    }
    if family == "sysfs" {
        for s in [
            "0x8180\n",
            "30\n",
            "i6300ESB timer\n",
            "inactive\n",
            "0xffffffff",
            "4294967296",
        ] {
            out.push(s.as_bytes().to_vec());
        }
    }
    if out.is_empty() {
        out.push(b"0\n".to_vec());
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&p, out);
        } else if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            out.push(p);
        }
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&seeds[rng.below(seeds.len())]);
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = buf.len();
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                buf[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                buf[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                buf.drain(i..i + n);
            }
            3 => {
                let i = rng.below(len + 1);
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                buf.splice(i..i, t.iter().copied());
            }
            4 if len > 0 => {
                // Repeat a chunk many times: long lines, deep nesting, many entries.
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                let chunk: Vec<u8> = buf[i..i + n].to_vec();
                let cap = if rng.below(16) == 0 { 2000 } else { 8 };
                let times = 1 + rng.below(cap);
                for _ in 0..times {
                    buf.splice(i..i, chunk.iter().copied());
                }
            }
            5 if len > 0 => buf.truncate(rng.below(len)),
            6 => {
                // Splice in part of another seed.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.below(other.len() - a) + 1;
                    let i = rng.below(len + 1);
                    buf.splice(i..i, other[a..b].iter().copied());
                }
            }
            7 if len > 0 => {
                // Replace a digit run or a byte with a digit string.
                let i = rng.below(len);
                let digits = (1 + rng.below(25)).to_string().repeat(1 + rng.below(3));
                buf.splice(i..i, digits.bytes());
            }
            8 if len > 1 => {
                // Swap two lines' worth: cut at one newline, paste at another.
                let i = rng.below(len);
                let j = rng.below(len);
                buf.swap(i, j);
            }
            9 => {
                let i = rng.below(len + 1);
                let b = [
                    b' ', b'\n', b'\t', b'0', b'9', b')', b'(', b':', b'-', b'\\',
                ][rng.below(10)];
                buf.insert(i, b);
            }
            _ => {
                let i = rng.below(len + 1);
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                buf.splice(i..i, t.iter().copied());
            }
        }
        if buf.len() > 1 << 20 {
            buf.truncate(1 << 20);
        }
    }
}

fn fuzz(family: &str, iterations: u64, seed: u64, repo: &Path) -> u64 {
    let seeds = seeds(family, repo);
    let mut rng = Rng(seed | 1);
    let mut buf = Vec::new();
    let mut crashes = 0u64;
    let mut slowest = (Duration::ZERO, 0usize);
    let start = Instant::now();
    for n in 0..iterations {
        mutate(&mut rng, &seeds, &mut buf);
        let t = Instant::now();
        let ok = panic::catch_unwind(|| run(family, &buf));
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, buf.len());
        }
        match ok {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("unknown family {family}; known: {}", FAMILIES.join(" "));
                std::process::exit(2);
            }
            Err(_) => {
                crashes += 1;
                let dir = repo.join("fuzz/crashes");
                let _ = std::fs::create_dir_all(&dir);
                let path = dir.join(format!("{family}-{seed}-{n}.bin"));
                let _ = std::fs::write(&path, &buf);
                eprintln!("CRASH {family} input {n}: saved {}", path.display());
            }
        }
    }
    let wall = start.elapsed();
    println!(
        "{family}: {iterations} inputs, {crashes} panics, {} seeds, {:.1} s, {:.0} exec/s, slowest {:.3} ms ({} bytes)",
        seeds.len(),
        wall.as_secs_f64(),
        iterations as f64 / wall.as_secs_f64(),
        slowest.0.as_secs_f64() * 1e3,
        slowest.1
    );
    crashes
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!(
            "usage: wdfeed-fuzz FAMILY|all ITERATIONS [SEED]\nfamilies: {}",
            FAMILIES.join(" ")
        );
        std::process::exit(2);
    }
    if args[1] == "replay" {
        // wdfeed-fuzz replay FAMILY FILE...: time each file through the family's parsers.
        for file in &args[3..] {
            let data = std::fs::read(file).expect("FILE is readable");
            let t = Instant::now();
            let ok = panic::catch_unwind(|| run(&args[2], &data));
            println!(
                "{file}: {} bytes, {:.3} s, {}",
                data.len(),
                t.elapsed().as_secs_f64(),
                if ok.is_ok() { "no panic" } else { "PANIC" }
            );
        }
        return;
    }
    let iterations: u64 = args[2].parse().expect("ITERATIONS is a number");
    let seed: u64 = args
        .get(3)
        .map_or(0x5eed, |s| s.parse().expect("SEED is a number"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    // Panics are counted and saved; the default hook's message says where.
    let families: Vec<&str> = if args[1] == "all" {
        FAMILIES.to_vec()
    } else {
        vec![args[1].as_str()]
    };
    let mut crashes = 0;
    for f in families {
        crashes += fuzz(f, iterations, seed, &repo);
    }
    std::process::exit(i32::from(crashes > 0));
}
