//! Replays the fixture files and edge inputs through every parser family: bytes in, a
//! result out, never a panic (docs/FUZZING.md). The fuzzer has found no crasher; one that it
//! finds becomes a unit test in its parser's module, with the bytes inline.

use std::path::{Path, PathBuf};

use wdfeed::fuzz_entry::{run, FAMILIES};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

#[test]
fn every_fixture_file_through_every_family() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut all = Vec::new();
    files(&dir, &mut all);
    assert!(all.len() > 100, "fixture trees not found");
    for p in &all {
        let data = std::fs::read(p).unwrap();
        for f in FAMILIES {
            assert!(run(f, &data));
        }
    }
}

#[test]
fn edge_inputs_through_every_family() {
    let long_digits = "9".repeat(100_000);
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let nested_key = format!("devices: {}{}", "[".repeat(2_000), "]".repeat(2_000));
    let parens = format!("1 ({} S 1", "(".repeat(10_000));
    let inputs: Vec<&[u8]> = vec![
        b"",
        b"\0",
        b"\xff\xfe",
        b"\\",
        b"\\7",
        b"1 1 0:1 / /\\777 rw - ext4 /dev/x\\0 rw",
        b" - ",
        b")(",
        b"0x",
        b"MemAvailable: 18446744073709551615 kB",
        b"btime 18446744073709551616",
        b"DEVNAME=..\n",
        b"- - - -",
        b"&a [*a, *a]",
        long_digits.as_bytes(),
        nested.as_bytes(),
        nested_key.as_bytes(),
        parens.as_bytes(),
    ];
    for input in inputs {
        for f in FAMILIES {
            assert!(run(f, input), "{f}");
        }
    }
    assert!(!run("no-such-family", b""));
}
