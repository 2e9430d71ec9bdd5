//! The NFS client's checker (tests/cluster, heartbeat suite): writes fixed-size numbered
//! records one at a time, each `pwrite` then `fsync`, and prints `ACK n` on stdout (the
//! guest's console, stamped by the host) only after both returned success; and reads a
//! ledger back, printing which records are intact.
//!
//!     ledger write FILE RUN_ID INTERVAL_MS
//!     ledger verify FILE RUN_ID
//!
//! A record is 64 bytes at offset n * 64: `L <run id, 8 hex> <n, 10 digits> <crc32 of what
//! precedes, 8 hex> `, padded with '.', ending in '\n'. On an error the writer prints
//! `ERR n <errno>`, reopens the file and retries the same n (same bytes, same offset), so a
//! retry is idempotent. `verify` prints `INTACT a-b,c-d ...` (the intact records as ranges),
//! `BAD n,...` (present but torn or foreign, at most 64 listed) and `RECORDS total`.
//! Built with rustc alone (std only), so the suite needs no crate.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::time::Duration;

const RECORD: usize = 64;

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn record(run: u32, n: u64) -> [u8; RECORD] {
    let head = format!("L {run:08x} {n:010} ");
    let crc = crc32(head.as_bytes());
    let text = format!("{head}{crc:08x} ");
    let mut out = [b'.'; RECORD];
    out[..text.len()].copy_from_slice(text.as_bytes());
    out[RECORD - 1] = b'\n';
    out
}

fn open(path: &str) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).open(path)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

fn write(path: &str, run: u32, interval: Duration) -> ! {
    let mut file: Option<File> = None;
    let mut n: u64 = 0;
    loop {
        let f = match file.take() {
            Some(f) => f,
            None => match open(path) {
                Ok(f) => f,
                Err(e) => {
                    say(&format!("ERR {n} open {}", errno(&e)));
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            },
        };
        let rec = record(run, n);
        let done = f.write_all_at(&rec, n * RECORD as u64).and_then(|()| f.sync_all());
        match done {
            Ok(()) => {
                say(&format!("ACK {n}"));
                n += 1;
                file = Some(f);
                std::thread::sleep(interval);
            }
            Err(e) => {
                // the file is reopened: after a failover the old open state may be gone
                say(&format!("ERR {n} {}", errno(&e)));
                drop(f);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn verify(path: &str, run: u32) -> i32 {
    let mut data = Vec::new();
    if let Err(e) = File::open(path).and_then(|mut f| f.read_to_end(&mut data)) {
        say(&format!("VERIFY-ERROR {path}: {e}"));
        return 1;
    }
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut bad = Vec::new();
    let total = data.len().div_ceil(RECORD) as u64;
    for n in 0..total {
        let at = n as usize * RECORD;
        let got = &data[at..data.len().min(at + RECORD)];
        if got.len() == RECORD && got == record(run, n) {
            match ranges.last_mut() {
                Some(r) if r.1 + 1 == n => r.1 = n,
                _ => ranges.push((n, n)),
            }
        } else if got.iter().any(|&b| b != 0) {
            bad.push(n);
        }
    }
    let intact: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    say(&format!("INTACT {}", if intact.is_empty() { "none".into() } else { intact.join(",") }));
    let shown: Vec<String> = bad.iter().take(64).map(u64::to_string).collect();
    say(&format!("BAD {} {}", bad.len(), if shown.is_empty() { "none".into() } else { shown.join(",") }));
    say(&format!("RECORDS {total}"));
    0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: ledger write FILE RUN_ID INTERVAL_MS | ledger verify FILE RUN_ID";
    let run = args.get(3).and_then(|s| u32::from_str_radix(s, 16).ok());
    match (args.get(1).map(String::as_str), args.get(2), run) {
        (Some("write"), Some(path), Some(run)) => {
            let ms = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(200);
            write(path, run, Duration::from_millis(ms))
        }
        (Some("verify"), Some(path), Some(run)) => std::process::exit(verify(path, run)),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2)
        }
    }
}
