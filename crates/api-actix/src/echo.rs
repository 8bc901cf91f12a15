//! Making rejected input safe to echo in a 400 body (and so in any log that shows it).

/// Unicode format characters that can disguise text: bidi overrides and isolates,
/// zero-width characters, line/paragraph separators, the BOM.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The rejected value as it may be echoed: whole (the body it came in is already
/// capped at 16 KiB), with control and invisible format characters escaped so a 400
/// body cannot inject a header, a log line or disguised text.
#[must_use]
pub fn echo(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_control() || is_invisible_format(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::echo;

    #[test]
    fn escapes_control_and_invisible_characters() {
        assert_eq!(echo("a\r\nb"), "a\\r\\nb");
        assert_eq!(echo("bob@"), "bob@");
        assert_eq!(echo("a\u{202E}b\u{2028}c"), "a\\u{202e}b\\u{2028}c");
    }

    #[test]
    fn echoes_a_long_value_whole() {
        // Regression: values were cut at 256 characters with '…', breaking the
        // seed's "Invalid sender address: <email>" sentence.
        let long = format!("{}@example.com", "x".repeat(1000));
        assert_eq!(echo(&long), long);
    }
}
