//! A linear pre-scan that refuses config text nested deeper than [`MAX_DEPTH`] before any YAML
//! parser sees it: parsing takes time quadratic in nesting depth (`validate` of 100 000 nested
//! `[` took 32 s in a debug build), and a real config is a few levels deep.
//!
//! The scan knows just enough YAML to count collections: flow `[`/`{` outside quotes and
//! comments, block nesting by indentation and `- ` entries, and it skips quoted and block
//! scalars. It counts a little high rather than low, which only matters far from the limit.

/// The deepest nesting of collections accepted.
pub const MAX_DEPTH: usize = 64;

/// Where the text first goes deeper than [`MAX_DEPTH`]: 1-based line and column.
pub fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    // The indentation of the line that opened a block scalar (`|`, `>`): deeper lines are text.
    let mut block_scalar: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        if let Some(parent) = block_scalar {
            if blank || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        let mut inline = 0usize;
        if quote.is_none() && flow == 0 {
            if blank || line[indent..].starts_with('#') {
                continue;
            }
            while indents.last().is_some_and(|&top| top > indent) {
                indents.pop();
            }
            if indents.last().is_none_or(|&top| top < indent) {
                indents.push(indent);
            }
            if indents.len() > MAX_DEPTH {
                return Some((n + 1, indent + 1));
            }
        }
        let skip = if quote.is_none() && flow == 0 {
            indent
        } else {
            0
        };
        let mut node_start = true;
        let mut prev = ' ';
        let mut chars = line.chars().skip(skip).peekable();
        let mut column = skip;
        while let Some(c) = chars.next() {
            column += 1;
            let next = chars.peek().copied().unwrap_or(' ');
            if let Some(q) = quote {
                if q == '"' && c == '\\' {
                    chars.next();
                    column += 1;
                } else if c == q {
                    quote = None;
                    node_start = false;
                }
                prev = c;
                continue;
            }
            match c {
                '#' if prev == ' ' || prev == '\t' => break,
                ' ' | '\t' => {}
                '"' | '\'' if node_start => quote = Some(c),
                '[' | '{' if node_start || flow > 0 => {
                    flow += 1;
                    node_start = true;
                    if indents.len() + inline + flow > MAX_DEPTH {
                        return Some((n + 1, column));
                    }
                }
                ']' | '}' if flow > 0 => {
                    flow -= 1;
                    node_start = false;
                }
                ',' if flow > 0 => node_start = true,
                '-' | '?' if node_start && flow == 0 && (next == ' ' || next == '\t') => {
                    inline += 1;
                    if indents.len() + inline > MAX_DEPTH {
                        return Some((n + 1, column));
                    }
                }
                ':' if next == ' '
                    || next == '\t'
                    || (flow > 0 && matches!(next, ',' | ']' | '}')) =>
                {
                    node_start = true;
                }
                '|' | '>' if node_start && flow == 0 => {
                    block_scalar = Some(indent);
                    break;
                }
                '&' | '!' if node_start => {
                    // An anchor or tag comes before its node: skip it, the node starts after.
                    while chars.peek().is_some_and(|&c| c != ' ' && c != '\t') {
                        chars.next();
                        column += 1;
                    }
                }
                _ => node_start = false,
            }
            prev = c;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_and_block_nesting_is_refused_where_it_crosses_the_limit() {
        let flow = format!("devices: {}", "[".repeat(100_000));
        assert_eq!(too_deep(&flow), Some((1, 9 + MAX_DEPTH)));
        let braces = format!("a:\n  b: {}", "{x: ".repeat(100));
        assert!(
            too_deep(&braces).is_some_and(|(line, _)| line == 2),
            "{braces}"
        );
        let dashes = format!("checks:\n{}x\n", "- ".repeat(100));
        assert_eq!(too_deep(&dashes), Some((2, 2 * (MAX_DEPTH - 1) + 1)));
        let mut indented = String::new();
        for i in 0..100 {
            indented.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        assert_eq!(too_deep(&indented).map(|(l, _)| l), Some(MAX_DEPTH + 1));
    }

    #[test]
    fn brackets_in_quotes_comments_block_scalars_and_plain_text_are_not_nesting() {
        let many = "[".repeat(200);
        let text = format!(
            "a: \"{many}\"\nb: '{many}'\n# {many}\nc: x{many}\nd: |\n  {many}\n  more {many}\ne: don't {many}\nf: [\"{many}\", '{many}']\n"
        );
        assert_eq!(too_deep(&text), None, "{text}");
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let ok = format!(
            "a: {}{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(too_deep(&ok), None);
    }

    #[test]
    fn the_shipped_configs_are_far_from_the_limit() {
        for text in [
            include_str!("default.yaml"),
            include_str!("../../watchdog.yaml"),
        ] {
            assert_eq!(too_deep(text), None);
        }
        let mut seen = 0;
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests"
        ))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    dirs.push(path);
                } else if kind.is_file() && path.extension().is_some_and(|e| e == "yaml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert_eq!(too_deep(&text), None, "{}", path.display());
                    seen += 1;
                }
            }
        }
        assert!(seen > 0, "the test configs under tests/ were found");
    }
}
