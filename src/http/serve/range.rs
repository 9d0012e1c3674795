//! The one reading of a `Range` header, for answers from memory and from
//! files alike, so a client gets the same status and bytes whichever way
//! an asset is held. One range (`a-b`, `a-`, `-n`) is honoured; a
//! malformed header or several ranges are ignored (the whole body, 200),
//! as RFC 9110 allows a server to do; a satisfiable-looking range that
//! selects nothing (start at or past the end, or `-0`) is 416.

/// What to send of a body of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Whole,
    /// Bytes `start..=end` (206).
    Part {
        start: u64,
        end: u64,
    },
    /// Nothing selectable (416 with `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// The answer to `header` (the Range header's value, if any) for a body of
/// `len` bytes.
pub fn answer(header: Option<&str>, len: u64) -> Answer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Answer::Whole;
    };
    if spec.contains(',') {
        return Answer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Answer::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    match (number(first), number(last)) {
        // `-n`: the last n bytes; n = 0 selects nothing.
        (None, Some(n)) if first.is_empty() => match n.min(len) {
            0 => Answer::Unsatisfiable,
            n => Answer::Part {
                start: len - n,
                end: len - 1,
            },
        },
        (Some(start), None) if last.is_empty() => from(start, len.saturating_sub(1), len),
        (Some(start), Some(end)) if start <= end => {
            from(start, end.min(len.saturating_sub(1)), len)
        }
        _ => Answer::Whole,
    }
}

fn from(start: u64, end: u64, len: u64) -> Answer {
    if start >= len {
        Answer::Unsatisfiable
    } else {
        Answer::Part { start, end }
    }
}

/// Digits only: `+5`, ` 5` or `0x5` are not numbers here.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_is_honoured_and_anything_else_is_the_whole_body() {
        let a = |h| answer(Some(h), 100);
        assert_eq!(answer(None, 100), Answer::Whole);
        assert_eq!(a("bytes=0-0"), Answer::Part { start: 0, end: 0 });
        assert_eq!(a("bytes=10-"), Answer::Part { start: 10, end: 99 });
        assert_eq!(a("bytes=90-500"), Answer::Part { start: 90, end: 99 });
        assert_eq!(a("bytes=-10"), Answer::Part { start: 90, end: 99 });
        assert_eq!(a("bytes=-500"), Answer::Part { start: 0, end: 99 });
        for whole in [
            "bytes=0-0,1-1",
            "bytes=abc",
            "bytes=5-1",
            "items=0-1",
            "bytes=-",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(a(whole), Answer::Whole, "{whole}");
        }
        for none in ["bytes=-0", "bytes=100-", "bytes=100-200"] {
            assert_eq!(a(none), Answer::Unsatisfiable, "{none}");
        }
        assert_eq!(answer(Some("bytes=0-"), 0), Answer::Unsatisfiable);
    }
}
