//! Socket ids: `<digits>.<digits>`, unique per connection.

/// Formats a socket id from two numbers (the edge supplies unique, unguessable ones).
pub fn format(high: u64, low: u64) -> String {
    format!("{high}.{low}")
}

/// Whether `s` has the `^\d+\.\d+$` shape clients and SDKs check.
pub fn is_valid(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => is_digits(a) && is_digits(b),
        None => false,
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        assert!(is_valid(&format(123, 456)));
        assert!(!is_valid("123"));
        assert!(!is_valid("1.2.3"));
        assert!(!is_valid(".2"));
        assert!(!is_valid("a.2"));
    }
}
