//! Command-line arguments of the binaries: `--name value` pairs, repeatable.

/// The arguments after the program name, as `(name, value)` pairs; a flag without a value
/// (the next argument starts with `--`, or there is none) gets `""`.
pub fn pairs() -> Vec<(String, String)> {
    parse(std::env::args().skip(1))
}

/// See [`pairs`].
pub fn parse(args: impl Iterator<Item = String>) -> Vec<(String, String)> {
    let mut args = args.peekable();
    let mut out = Vec::new();
    while let Some(arg) = args.next() {
        let Some(name) = arg.strip_prefix("--") else {
            eprintln!("ignoring argument {arg:?} (expected --name value)");
            continue;
        };
        let value = match args.peek() {
            Some(next) if !next.starts_with("--") => args.next().unwrap_or_default(),
            _ => String::new(),
        };
        out.push((name.to_owned(), value));
    }
    out
}

/// Exits with `message` and the usage text.
pub fn fail(message: &str, usage: &str) -> ! {
    eprintln!("{message}\n\n{usage}");
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pairs_and_flags() {
        let got = super::parse(
            ["--a", "1", "--quiet", "--b", "x", "--b", "y"]
                .iter()
                .map(|s| s.to_string()),
        );
        assert_eq!(
            got,
            [("a", "1"), ("quiet", ""), ("b", "x"), ("b", "y")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }
}
