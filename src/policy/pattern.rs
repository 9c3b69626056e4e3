//! A policy's pattern: a regular expression on queue and exchange names. RabbitMQ compiles it
//! with PCRE and reports a bad one as `{"missing )",1}` (PCRE's message and the byte offset
//! where it noticed). warren compiles it with the `regex` crate and gives PCRE's message and
//! offset for the mistakes both engines see alike. The engines differ at the edges: `a**` is
//! refused by PCRE and taken by `regex`; backreferences and lookaround are the reverse.

use super::erl::Term;
use regex_syntax::ast::ErrorKind;

/// Compile `pattern`, or give the (message, offset) PCRE would report.
pub fn compile(pattern: &str) -> Result<regex::Regex, (String, usize)> {
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(pattern) {
        let span = e.span();
        let (start, end) = (span.start.offset, span.end.offset);
        let (text, at) = match e.kind() {
            ErrorKind::GroupUnclosed => ("missing )", pattern.len()),
            ErrorKind::ClassUnclosed => {
                ("missing terminating ] for character class", pattern.len())
            }
            ErrorKind::GroupUnopened => ("unmatched parentheses", start),
            ErrorKind::RepetitionMissing => ("nothing to repeat", start),
            ErrorKind::ClassRangeInvalid => (
                "range out of order in character class",
                end.saturating_sub(1),
            ),
            ErrorKind::RepetitionCountInvalid => (
                "numbers out of order in {} quantifier",
                end.saturating_sub(1),
            ),
            ErrorKind::GroupNameDuplicate { .. } => {
                ("two named subpatterns have the same name", end)
            }
            ErrorKind::GroupNameUnexpectedEof => (
                "syntax error in subpattern name (missing terminator)",
                pattern.len(),
            ),
            ErrorKind::FlagUnrecognized => ("unrecognized character after (? or (?-", start),
            other => return Err((other.to_string(), start)),
        };
        return Err((text.to_string(), at));
    }
    regex::Regex::new(pattern).map_err(|e| (e.to_string(), 0))
}

/// The validation text of a pattern that does not compile.
pub fn invalid_text(pattern: &str) -> Option<String> {
    let (text, at) = compile(pattern).err()?;
    let prefix = "pattern should be regular expression but is invalid: ";
    let term = Term::Tuple(vec![Term::Str(text), Term::Int(at.to_string())]);
    Some(format!("{prefix}{}", term.pretty(prefix.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcre_messages_and_offsets() {
        // As RabbitMQ 3.10.8 answered (its line breaks included).
        let wrap = |msg: &str, at: usize| format!("{{\"{msg}\",\n{}{at}}}", " ".repeat(54));
        let cases = [
            ("(", "{\"missing )\",1}".to_string()),
            ("a(b", "{\"missing )\",3}".to_string()),
            ("[", wrap("missing terminating ] for character class", 1)),
            ("ab[c", wrap("missing terminating ] for character class", 4)),
            ("*", "{\"nothing to repeat\",0}".to_string()),
            ("+a", "{\"nothing to repeat\",0}".to_string()),
            (")", wrap("unmatched parentheses", 0)),
            ("a)", wrap("unmatched parentheses", 1)),
            ("a{2,1}", wrap("numbers out of order in {} quantifier", 5)),
            ("[z-a]", wrap("range out of order in character class", 3)),
            (
                "(?P<x>a)(?P<x>b)",
                wrap("two named subpatterns have the same name", 13),
            ),
            (
                "(?<n",
                wrap("syntax error in subpattern name (missing terminator)", 4),
            ),
            ("(?z)", wrap("unrecognized character after (? or (?-", 2)),
            ("é(", "{\"missing )\",3}".to_string()),
        ];
        for (pattern, term) in cases {
            assert_eq!(
                invalid_text(pattern).as_deref(),
                Some(
                    format!("pattern should be regular expression but is invalid: {term}").as_str()
                ),
                "{pattern}"
            );
        }
        assert_eq!(invalid_text("^q\\."), None);
        assert_eq!(invalid_text(""), None);
    }
}
