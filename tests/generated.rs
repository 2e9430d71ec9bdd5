//! The man pages (`docs/man/*.8`) and shell completions (`completions/`) are generated from
//! the clap definition and checked in, so that the Debian package installs them without a
//! build step and a release binary carries none of the generators. This test generates them
//! again in memory and fails, naming the command that regenerates them, when a checked-in
//! file differs, is missing, or is left over from a command that no longer exists.
//!
//! Regenerate after changing the command line:
//! `WDFEED_REGENERATE=1 cargo test --locked --test generated`, then commit the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

const REGENERATE: &str = "WDFEED_REGENERATE=1 cargo test --locked --test generated";
const MAN_DIR: &str = "docs/man";
const COMPLETIONS_DIR: &str = "completions";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cli() -> clap::Command {
    <wdfeed::cli::Cli as CommandFactory>::command()
}

/// Every generated file: its path in the repository and its bytes.
fn generated() -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    // As clap_mangen::generate_to does: no page for the implicit `help` subcommand.
    let mut cmd = cli().disable_help_subcommand(true);
    cmd.build();
    let top = man_page(&cmd);
    out.insert(
        Path::new(MAN_DIR).join("wdfeed.8"),
        with_extra_sections(top, &cmd),
    );
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = man_page(sub);
        let name = sub.get_display_name().unwrap_or(sub.get_name());
        out.insert(Path::new(MAN_DIR).join(format!("{name}.8")), page);
    }
    for (shell, file) in [
        (Shell::Bash, "wdfeed.bash"),
        (Shell::Zsh, "_wdfeed"),
        (Shell::Fish, "wdfeed.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cli(), "wdfeed", &mut buf);
        out.insert(Path::new(COMPLETIONS_DIR).join(file), buf);
    }
    out
}

/// Section 8: system administration commands and daemons.
fn man_page(cmd: &clap::Command) -> Vec<u8> {
    let source = format!("wdfeed {}", cli().get_version().unwrap_or_default());
    let mut buf = Vec::new();
    Man::new(cmd.clone())
        .section("8")
        .source(source)
        .render(&mut buf)
        .expect("rendering into memory cannot fail");
    buf
}

/// What clap does not know: exit status, environment, files, where the rest is documented.
/// Inserted before VERSION, where man-pages(7) puts them.
fn with_extra_sections(page: Vec<u8>, cmd: &clap::Command) -> Vec<u8> {
    let status_file = cmd
        .find_subcommand("status")
        .and_then(|s| s.get_arguments().find(|a| a.get_id() == "status_file"))
        .and_then(|a| a.get_default_values().first())
        .map(|v| v.to_string_lossy().into_owned())
        .expect("`wdfeed status --status-file` has a default");
    let mut extra = Roff::new();
    extra.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "success; for check, the node is healthy"),
        ("1", "unhealthy (check), or a runtime failure"),
        ("2", "a bad config or command line"),
        (
            "3",
            "a watchdog device problem: missing, busy, refused timeout, vanished",
        ),
        (
            "4",
            "an operator request (fence, pause, resume) refused: not root, a control socket that is not owned by root, or the state of the daemon forbids it",
        ),
    ] {
        extra
            .control("TP", [])
            .text([bold(code)])
            .text([roman(meaning)]);
    }
    extra.control("SH", ["ENVIRONMENT"]);
    extra.control("TP", []).text([bold("WDFEED_ROOT")]).text([
        roman("The same as "),
        bold("--root"),
        roman("."),
    ]);
    extra
        .control("TP", [])
        .text([bold("WDFEED_RUNTIME_DIR")])
        .text([
            roman("The same as "),
            bold("--runtime-dir"),
            roman(" of run, fence, pause and resume."),
        ]);
    extra
        .control("TP", [])
        .text([bold("JOURNAL_STREAM")])
        .text([roman(
        "When set (wdfeed runs under systemd), log lines carry no timestamp: the journal adds it.",
    )]);
    extra.control("SH", ["FILES"]);
    for (path, meaning) in [
        (
            "/etc/wdfeed/watchdog.yaml",
            "The config. Without it, wdfeed uses its embedded default (wdfeed validate --print-default prints it).",
        ),
        (
            status_file.as_str(),
            "The state of the running daemon, rewritten when it changes and at least every ten intervals (a minute at most), read by wdfeed status.",
        ),
        (
            "/run/wdfeed/control",
            "The control socket of the running daemon (root only): wdfeed fence, pause and resume talk to it.",
        ),
        (
            "/usr/share/doc/wdfeed/examples/watchdog.yaml",
            "The documented example config.",
        ),
        (
            "/dev/watchdog*",
            "The watchdog devices. Opening one arms it: only wdfeed run opens them; info reads sysfs.",
        ),
    ] {
        extra.control("TP", []).text([bold(path)]).text([roman(meaning)]);
    }
    extra.control("SH", ["SEE ALSO"]);
    extra.text([
        italic("/usr/share/doc/wdfeed/README.md"),
        roman(" (how it works, the fence bound), "),
        italic("/usr/share/doc/wdfeed/CHECKS.md"),
        roman(" (every check, its keys and evidence), "),
        italic("/usr/share/doc/wdfeed/DEPLOY.md"),
        roman(" (the systemd unit, boot, stop and restart), "),
        bold("systemd.service"),
        roman("(5), "),
        bold("sd_notify"),
        roman("(3)."),
    ]);
    let extra = extra.to_roff();
    assert!(
        !extra.contains('\''),
        "the extra sections are rendered without apostrophe handling: write them without one"
    );
    let page = String::from_utf8(page).expect("clap_mangen writes UTF-8");
    let at = page
        .find(".SH VERSION")
        .expect("the page has a VERSION section (the command has a version)");
    let mut out = page[..at].to_string();
    out.push_str(&extra);
    out.push_str(&page[at..]);
    out.into_bytes()
}

/// The checked-in files of a generated kind that nothing generates any more.
fn leftovers(generated: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [MAN_DIR, COMPLETIONS_DIR] {
        let Ok(entries) = std::fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let rel = Path::new(dir).join(e.file_name());
            let is_page = dir != MAN_DIR || rel.extension().is_some_and(|x| x == "8");
            if is_page && !generated.contains_key(&rel) {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn man_pages_and_completions_match_the_command_line() {
    let files = generated();
    if std::env::var_os("WDFEED_REGENERATE").is_some_and(|v| v == "1") {
        for (rel, bytes) in &files {
            let path = repo().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
            println!("wrote {}", rel.display());
        }
        for rel in leftovers(&files) {
            std::fs::remove_file(repo().join(&rel)).unwrap();
            println!("removed {}", rel.display());
        }
        return;
    }
    let mut problems = Vec::new();
    for (rel, bytes) in &files {
        match std::fs::read(repo().join(rel)) {
            Ok(on_disk) if on_disk == *bytes => {}
            Ok(on_disk) => problems.push(format!(
                "{} differs from what the command line generates (first difference at line {})",
                rel.display(),
                first_different_line(&on_disk, bytes)
            )),
            Err(e) => problems.push(format!("{} cannot be read: {e}", rel.display())),
        }
    }
    for rel in leftovers(&files) {
        problems.push(format!(
            "{} is not generated by the command line any more (a removed subcommand?)",
            rel.display()
        ));
    }
    assert!(
        problems.is_empty(),
        "the checked-in man pages and completions have drifted from the command line:\n  {}\n\
         regenerate them with `{REGENERATE}` and commit the result",
        problems.join("\n  ")
    );
}

/// The 1-based number of the first line where `a` and `b` differ.
fn first_different_line(a: &[u8], b: &[u8]) -> usize {
    let a = String::from_utf8_lossy(a);
    let b = String::from_utf8_lossy(b);
    let same = a.lines().zip(b.lines()).take_while(|(x, y)| x == y).count();
    same + 1
}

#[test]
fn every_subcommand_has_a_page_that_names_its_options() {
    let files = generated();
    let mut cmd = cli().disable_help_subcommand(true);
    cmd.build();
    for sub in cmd.get_subcommands() {
        let rel = Path::new(MAN_DIR).join(format!("wdfeed-{}.8", sub.get_name()));
        let page = String::from_utf8_lossy(&files[&rel]).into_owned();
        assert!(
            page.starts_with(".ie") && page.contains(&format!(".TH wdfeed-{} 8", sub.get_name())),
            "{}: {page}",
            rel.display()
        );
        for arg in sub.get_arguments().filter_map(|a| a.get_long()) {
            // roff escapes the dashes: \-\-config
            let spelled = format!("\\-\\-{}", arg.replace('-', "\\-"));
            assert!(page.contains(&spelled), "{} lacks --{arg}", rel.display());
        }
    }
    let top = String::from_utf8_lossy(&files[Path::new("docs/man/wdfeed.8")]).into_owned();
    for section in [
        "SYNOPSIS",
        "SUBCOMMANDS",
        "EXIT STATUS",
        "FILES",
        "SEE ALSO",
    ] {
        assert!(
            top.contains(&format!(".SH \"{section}\"")) || top.contains(&format!(".SH {section}")),
            "wdfeed.8 lacks {section}"
        );
    }
    assert!(
        top.contains("wdfeed\\-run(8)"),
        "wdfeed.8 lists its subcommands' pages"
    );
}

/// groff warns about bad roff; a page it cannot format cleanly is a broken page.
#[test]
fn the_man_pages_format_without_warnings() {
    if Process::new("groff").arg("--version").output().is_err() {
        println!("SKIPPED: groff is not installed (apt-get install groff-base)");
        return;
    }
    for (rel, bytes) in generated()
        .into_iter()
        .filter(|(rel, _)| rel.starts_with(MAN_DIR))
    {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join(rel.file_name().unwrap());
        std::fs::write(&page, bytes).unwrap();
        let o = Process::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && stderr.trim().is_empty(),
            "{}: groff: {stderr}",
            rel.display()
        );
    }
}

/// The completion scripts parse in their shells (where the shell is installed).
#[test]
fn the_completion_scripts_parse() {
    for (shell, file) in [
        ("bash", "wdfeed.bash"),
        ("zsh", "_wdfeed"),
        ("fish", "wdfeed.fish"),
    ] {
        let script = repo().join(COMPLETIONS_DIR).join(file);
        let args: Vec<&std::ffi::OsStr> = match shell {
            "fish" => vec!["--no-execute".as_ref(), script.as_os_str()],
            _ => vec!["-n".as_ref(), script.as_os_str()],
        };
        match Process::new(shell).args(&args).output() {
            Err(_) => println!("SKIPPED: {shell} is not installed; {file} not parsed"),
            Ok(o) => assert!(
                o.status.success(),
                "{shell} cannot parse {}: {}",
                script.display(),
                String::from_utf8_lossy(&o.stderr)
            ),
        }
    }
}

/// What an operator sees on Tab: the bash script completes subcommands and their options.
#[test]
fn bash_completes_subcommands_and_their_options() {
    let script = repo().join(COMPLETIONS_DIR).join("wdfeed.bash");
    let complete = |words: &[&str]| -> Option<String> {
        // _wdfeed is called as bash calls it: command, word being completed, previous word.
        let cword = words.len() - 1;
        let call = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; _wdfeed wdfeed '{}' '{}'; echo \"${{COMPREPLY[*]}}\"",
            script.display(),
            words.join(" "),
            words[cword],
            words[cword.saturating_sub(1)],
        );
        let o = Process::new("bash").args(["-c", &call]).output().ok()?;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(subcommand) = complete(&["wdfeed", "ch"]) else {
        println!("SKIPPED: bash is not installed");
        return;
    };
    assert_eq!(subcommand, "check");
    assert_eq!(complete(&["wdfeed", "run", "--d"]).unwrap(), "--dry-run");
    assert_eq!(
        complete(&["wdfeed", "validate", "--p"]).unwrap(),
        "--print-default"
    );
}
