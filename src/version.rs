//! HAProxy language versions that hapx speaks (2.6 through 3.4).
use std::fmt;

/// A HAProxy branch, `major.minor`. Ordered, so `since <= target` reads naturally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl Version {
    pub const OLDEST: Version = Version::new(2, 6);
    pub const NEWEST: Version = Version::new(3, 4);

    pub const fn new(major: u16, minor: u16) -> Version {
        Version { major, minor }
    }

    /// Parses `X.Y` (also `X.Y.Z` and `X.Y-dev`, keeping only `X.Y`); `None` when malformed.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Version { major, minor })
    }

    /// Whether hapx can speak this dialect.
    pub fn is_supported(self) -> bool {
        (Version::OLDEST..=Version::NEWEST).contains(&self)
    }
}

impl Default for Version {
    fn default() -> Version {
        Version::NEWEST
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        assert_eq!(Version::parse("2.6"), Some(Version::new(2, 6)));
        assert_eq!(Version::parse("3.4.1"), Some(Version::new(3, 4)));
        assert_eq!(Version::parse("3.1-dev"), Some(Version::new(3, 1)));
        assert_eq!(Version::parse("x.1"), None);
        assert!(Version::new(2, 10) > Version::new(2, 9));
        assert!(!Version::new(2, 5).is_supported());
        assert!(Version::NEWEST.is_supported());
    }
}
