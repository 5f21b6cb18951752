//! Topic names, topic filters, wildcard matching and shared-subscription syntax.
//!
//! Rules from MQTT 5.0 section 4.7 (identical in 3.1.1): names and filters are
//! non-empty UTF-8; `+` occupies a whole level; `#` is last and occupies a
//! whole level; a name never holds a wildcard; filters that start with a
//! wildcard do not match names that start with `$`.

use super::error::CodecError;

/// Longest topic a 2-byte length prefix can carry.
const MAX_TOPIC_LEN: usize = u16::MAX as usize;

/// Checks a PUBLISH (or will) topic name: non-empty, no wildcards, no U+0000.
pub fn validate_topic_name(topic: &str) -> Result<(), CodecError> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN || topic.contains(['+', '#', '\0']) {
        return Err(CodecError::InvalidTopicName);
    }
    Ok(())
}

/// Checks a subscription topic filter, `$share/{group}/{filter}` included.
pub fn validate_topic_filter(filter: &str) -> Result<(), CodecError> {
    if filter.is_empty() || filter.len() > MAX_TOPIC_LEN || filter.contains('\0') {
        return Err(CodecError::InvalidTopicFilter);
    }
    let plain = match parse_shared(filter)? {
        Some((_, inner)) => inner,
        None => filter,
    };
    validate_plain_filter(plain)
}

fn validate_plain_filter(filter: &str) -> Result<(), CodecError> {
    if filter.is_empty() {
        return Err(CodecError::InvalidTopicFilter);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        match level {
            "+" => {}
            "#" if is_last => {}
            _ if level.contains(['+', '#']) => return Err(CodecError::InvalidTopicFilter),
            _ => {}
        }
    }
    Ok(())
}

/// Splits `$share/{group}/{filter}` into `(group, filter)`; `Ok(None)` for a
/// non-shared filter, an error for a malformed share (empty group, group with
/// wildcards, missing filter).
pub fn parse_shared(filter: &str) -> Result<Option<(&str, &str)>, CodecError> {
    let Some(rest) = filter.strip_prefix("$share/") else {
        if filter == "$share" {
            return Err(CodecError::InvalidTopicFilter);
        }
        return Ok(None);
    };
    let Some((group, inner)) = rest.split_once('/') else {
        return Err(CodecError::InvalidTopicFilter);
    };
    if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
        return Err(CodecError::InvalidTopicFilter);
    }
    Ok(Some((group, inner)))
}

/// Does a valid (non-shared) `filter` match a valid topic `name`?
pub fn matches(filter: &str, name: &str) -> bool {
    // A leading wildcard never matches the $SYS-style topics.
    if name.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(nl)) if fl == nl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when a filter holds `+` or `#` (wildcard subscriptions can be disabled).
pub fn has_wildcard(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_topic_name("a/b").is_ok());
        assert!(validate_topic_name("/").is_ok());
        assert!(validate_topic_name("$SYS/x").is_ok());
        for bad in ["", "a/+", "#", "a/b#", "a\0b"] {
            assert_eq!(
                validate_topic_name(bad),
                Err(CodecError::InvalidTopicName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/+/c",
            "a/#",
            "+/+",
            "/",
            "$share/g/a/#",
            "$SYS/#",
            "sport/+/player1",
        ] {
            assert!(validate_topic_filter(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "a/#/b",
            "a#",
            "a/b+",
            "#/",
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "$share/g/",
            "$share",
        ] {
            assert_eq!(
                validate_topic_filter(bad),
                Err(CodecError::InvalidTopicFilter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn matching() {
        let cases = [
            ("a/b", "a/b", true),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "a/b", true),
            ("+/+", "/x", true),
            ("+", "/x", false),
            ("/+", "/x", true),
            ("#", "$SYS/uptime", false),
            ("+/uptime", "$SYS/uptime", false),
            ("$SYS/#", "$SYS/uptime", true),
            ("a/b", "a/b/", false),
            ("a/+/c", "a//c", true),
        ];
        for (f, n, want) in cases {
            assert_eq!(matches(f, n), want, "{f} vs {n}");
        }
    }

    #[test]
    fn shared() {
        assert_eq!(parse_shared("$share/g/a/+"), Ok(Some(("g", "a/+"))));
        assert_eq!(parse_shared("a/b"), Ok(None));
        assert!(parse_shared("$share/g").is_err());
    }
}
