//! The glob patterns of sampling rules: `*` (any run of characters, none
//! included) and `?` (exactly one character); every other character is
//! itself, compared without case, as Datadog's tracers match rules.

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Glob {
    /// `*` alone (or `**`...): everything, an absent value included.
    Any,
    /// No wildcard: one case-insensitive comparison.
    Literal(String),
    /// Wildcards: matched character by character.
    Pattern(Vec<char>),
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Glob {
        if !pattern.is_empty() && pattern.chars().all(|c| c == '*') {
            return Glob::Any;
        }
        let lower: String = pattern.chars().flat_map(char::to_lowercase).collect();
        if lower.contains(['*', '?']) {
            Glob::Pattern(lower.chars().collect())
        } else {
            Glob::Literal(lower)
        }
    }

    pub(crate) fn is_any(&self) -> bool {
        matches!(self, Glob::Any)
    }

    pub(crate) fn matches(&self, subject: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Literal(literal) => {
                literal.len() == subject.len() && literal.eq_ignore_ascii_case(subject)
                    || lower_eq(literal.chars(), subject)
            }
            Glob::Pattern(pattern) => {
                let subject: Vec<char> = subject.chars().flat_map(char::to_lowercase).collect();
                wildcard_match(pattern, &subject)
            }
        }
    }
}

fn lower_eq(literal: std::str::Chars<'_>, subject: &str) -> bool {
    literal.eq(subject.chars().flat_map(char::to_lowercase))
}

/// The classic linear-backtracking wildcard match: on a mismatch, the
/// last `*` takes one more character. O(pattern × subject) at worst, no
/// recursion, so no pattern can blow the stack or take exponential time.
fn wildcard_match(pattern: &[char], subject: &[char]) -> bool {
    let (mut p, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, s));
                p += 1;
            }
            Some(&c) if c == '?' || c == subject[s] => {
                p += 1;
                s += 1;
            }
            _ => match star {
                Some((star_p, star_s)) => {
                    p = star_p + 1;
                    s = star_s + 1;
                    star = Some((star_p, star_s + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn wildcards() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("web*", "web.request", true),
            ("web*", "WEB.Request", true),
            ("*.request", "web.request", true),
            ("w?b", "web", true),
            ("w?b", "wb", false),
            ("w?b", "weeb", false),
            ("?", "", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            (
                "*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("", "", true),
            ("", "x", false),
            ("Café", "CAFÉ", true),
            ("[a-z]", "a", false),
            ("[a-z]", "[A-Z]", true),
            ("a.c", "abc", false),
            ("200", "200", true),
            ("2*", "200", true),
            ("2??", "200", true),
            ("20?", "2000", false),
        ];
        for (pattern, subject, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(subject),
                expected,
                "{pattern:?} on {subject:?}"
            );
        }
    }

    #[test]
    fn only_stars_is_any() {
        assert!(Glob::new("*").is_any());
        assert!(Glob::new("***").is_any());
        assert!(!Glob::new("*a").is_any());
        assert!(!Glob::new("").is_any());
    }
}
