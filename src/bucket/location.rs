//! Where a stream directory is: a local folder or `s3://bucket/prefix`.

use std::fmt;
use std::path::PathBuf;

/// An object-store stream directory: the bucket and the key prefix its
/// objects are under (no leading or trailing `/`; empty for the bucket's
/// root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub prefix: String,
}

/// A stream directory as a command line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamDir {
    Local(PathBuf),
    Bucket(Location),
}

impl Location {
    pub fn new(bucket: &str, prefix: &str) -> Location {
        Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// The object key of `name` in this stream directory.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// `s3://bucket/prefix/name`, for messages.
    pub fn url_of(&self, name: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(name))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

impl fmt::Display for StreamDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamDir::Local(p) => write!(f, "{}", p.display()),
            StreamDir::Bucket(l) => l.fmt(f),
        }
    }
}

/// The scheme of a URL-looking argument (`s3` of `s3://…`), if it is one.
fn scheme(given: &str) -> Option<&str> {
    given.split_once("://").map(|(s, _)| s).filter(|s| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

impl StreamDir {
    /// A folder, or `s3://bucket[/prefix]`; any other URL is refused by
    /// name rather than taken for a folder called `gs:`.
    pub fn parse(given: &str) -> Result<StreamDir, String> {
        match scheme(given) {
            None => Ok(StreamDir::Local(PathBuf::from(given))),
            Some("s3") => Location::parse_s3(given).map(StreamDir::Bucket),
            Some(other) => Err(format!(
                "{given}: a {other}:// URL; stream directories are local folders or s3://bucket/prefix"
            )),
        }
    }

    /// The local folder, or an error naming the command that reads only
    /// local folders.
    pub fn local(&self, what: &str) -> Result<&PathBuf, String> {
        match self {
            StreamDir::Local(p) => Ok(p),
            StreamDir::Bucket(l) => Err(format!("{l}: {what} reads local stream directories only")),
        }
    }
}

impl Location {
    fn parse_s3(given: &str) -> Result<Location, String> {
        let rest = &given["s3://".len()..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c));
        if !valid_bucket {
            return Err(format!(
                "{given}: `{bucket}` is not a bucket name (3 to 63 lowercase letters, digits, `.` or `-`)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(format!(
                "{given}: the prefix may not hold `.`, `..` or an empty part"
            ));
        }
        Ok(Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_folders_and_other_schemes() {
        let l = match StreamDir::parse("s3://live/ch1/").unwrap() {
            StreamDir::Bucket(l) => l,
            other => panic!("{other:?}"),
        };
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("live", "ch1"));
        assert_eq!(l.key("index-head.bin"), "ch1/index-head.bin");
        assert_eq!(l.url_of("a.mp4"), "s3://live/ch1/a.mp4");
        let root = Location::parse_s3("s3://live").unwrap();
        assert_eq!(root.key("stream.json"), "stream.json");
        assert_eq!(
            StreamDir::parse("out/ch1").unwrap(),
            StreamDir::Local("out/ch1".into())
        );
        assert!(StreamDir::parse("gs://b/p").unwrap_err().contains("gs://"));
        assert!(StreamDir::parse("s3://Bad_Bucket/p").is_err());
        assert!(StreamDir::parse("s3://live/a/../b").is_err());
    }
}
