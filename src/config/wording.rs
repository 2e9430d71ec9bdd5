//! serde's messages in the words of `watchdog.yaml`: serde names the Rust types it expected
//! (`struct RawDevice`, `u32`, `path string`, `unit value`); an operator knows mappings,
//! lists, names, whole numbers and paths.

/// The most problems of one kind (control characters, repeated keys, NUL bytes) listed; a
/// file with more says how many more.
pub const MAX_PROBLEMS: usize = 100;

/// Rust's words for what serde expected or found, and the operator's.
const WORDS: &[(&str, &str)] = &[
    ("expected u8", "expected a whole number from 0 to 255"),
    ("expected u16", "expected a whole number from 0 to 65535"),
    (
        "expected u32",
        "expected a whole number from 0 to 4294967295",
    ),
    (
        "expected u64",
        "expected a whole number from 0 to 18446744073709551615",
    ),
    (
        "expected usize",
        "expected a whole number from 0 to 18446744073709551615",
    ),
    ("expected i8", "expected a whole number from -128 to 127"),
    ("expected i16", "expected a whole number"),
    ("expected i32", "expected a whole number"),
    ("expected i64", "expected a whole number"),
    ("expected f32", "expected a number"),
    ("expected f64", "expected a number"),
    ("expected path string", "expected a path"),
    ("expected a sequence", "expected a list"),
    ("expected a map", "expected a mapping"),
    ("expected a borrowed string", "expected a string"),
    ("expected a character", "expected one character"),
    ("expected field identifier", "expected a key name"),
    ("expected variant identifier", "expected a name"),
    ("expected option", "expected a value"),
    ("expected unit", "expected an empty value"),
    (
        "expected a YAML tag starting with '!'",
        "expected one of the names this key takes",
    ),
    ("unknown variant", "unknown name"),
    (
        "data did not match any variant of",
        "the value matches none of the forms this key takes:",
    ),
    (
        "invalid type: unit value",
        "invalid type: an empty value (null)",
    ),
    ("invalid type: map,", "invalid type: a mapping,"),
    ("invalid type: sequence,", "invalid type: a list,"),
    (
        "invalid type: enum,",
        "invalid type: a tagged value (`!tag`),",
    ),
    ("invalid type: floating point", "invalid type: the number"),
    ("invalid value: floating point", "invalid value: the number"),
    ("invalid type: unit variant", "invalid type: a name"),
    (
        "invalid type: newtype variant",
        "invalid type: a tagged value",
    ),
];

/// `message` without Rust type names.
pub fn humanize(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, words) in WORDS {
        if let Some(at) = find_word(&out, rust) {
            out.replace_range(at..at + rust.len(), words);
        }
    }
    // What serde names by the Rust type: `struct RawDevice`, `enum OnExit`.
    for (rust, words) in [
        ("untagged enum ", "see README.md, Configuration"),
        ("struct variant ", "mapping"),
        ("tuple variant ", "list"),
        ("tuple struct ", "list"),
        ("newtype struct ", "value"),
        ("struct ", "a mapping"),
        ("enum ", "one of the names this key takes"),
    ] {
        while let Some(at) = find_word(&out, rust).filter(|&at| type_name_at(&out, at + rust.len()))
        {
            let end = at + rust.len() + type_name_len(&out[at + rust.len()..]);
            out.replace_range(at..end, words);
        }
    }
    let strings = [
        "invalid type: integer",
        "invalid type: boolean",
        "invalid type: the number",
    ];
    if out.contains("expected a string") && strings.iter().any(|s| out.contains(s)) {
        out.push_str(" (write it in quotes to mean the text)");
    }
    out
}

/// Where `word` stands in `text` not inside a longer word.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let in_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(word).map(|(at, _)| at).find(|&at| {
        let end = at + word.len();
        let starts_inside = in_word(text[..at].chars().next_back());
        let ends_inside = in_word(word.chars().next_back()) && in_word(text[end..].chars().next());
        !(starts_inside || ends_inside)
    })
}

/// Whether a Rust type name (`RawDevice`) starts at `at`.
fn type_name_at(text: &str, at: usize) -> bool {
    text[at..]
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase())
}

fn type_name_len(text: &str) -> usize {
    text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len())
}

/// Words a message for an operator never holds: Rust's names for types.
#[cfg(test)]
pub const RUST_WORDS: &[&str] = &[
    "Raw",
    "struct",
    "enum ",
    "u8",
    "u16",
    "u32",
    "u64",
    "usize",
    "i32",
    "i64",
    "f32",
    "f64",
    "String",
    "PathBuf",
    "Vec",
    "Option",
    "HashMap",
    "BTreeMap",
    "Settings",
    "Human",
    "identifier",
    "unit value",
    "path string",
    "variant",
    "serde",
    "YAML tag",
    "newtype",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_become_yaml_words() {
        for (serde, want) in [
            (
                "invalid type: string \"/dev/watchdog0\", expected struct RawDevice",
                "invalid type: string \"/dev/watchdog0\", expected a mapping",
            ),
            (
                "invalid value: integer `-1`, expected u32",
                "invalid value: integer `-1`, expected a whole number from 0 to 4294967295",
            ),
            (
                "invalid type: unit value, expected a sequence",
                "invalid type: an empty value (null), expected a list",
            ),
            (
                "invalid type: integer `1234`, expected a string",
                "invalid type: integer `1234`, expected a string (write it in quotes to mean the text)",
            ),
            (
                "invalid type: floating point `1.5`, expected u64",
                "invalid type: the number `1.5`, expected a whole number from 0 to 18446744073709551615",
            ),
            (
                "data did not match any variant of untagged enum RawKill",
                "the value matches none of the forms this key takes: see README.md, Configuration",
            ),
            (
                "invalid type: sequence, expected enum OnExit",
                "invalid type: a list, expected one of the names this key takes",
            ),
        ] {
            let got = humanize(serde);
            assert_eq!(got, want);
        }
        assert_eq!(
            humanize("unknown field `x`, expected one of `path`, `timeout`"),
            "unknown field `x`, expected one of `path`, `timeout`"
        );
        assert_eq!(
            humanize("`5` has no unit: write `5s`"),
            "`5` has no unit: write `5s`"
        );
    }
}
