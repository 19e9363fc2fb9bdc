//! How a group keeps copies of its peers' values: the settings behind the group options
//! `hot=` and `hot_qps=`.

/// How a group keeps copies of its peers' values (the group options `hot=` and `hot_qps=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HotConfig {
    /// By the owner's measured rate, at or above this many requests per second (`None`: the
    /// library's default threshold).
    Rate(Option<Qps>),
    /// One value in ten at random, whatever its rate: groupcache's rule.
    Random,
}

/// A rate threshold, compared by bits so that settings stay `Eq` (a parsed threshold is
/// never NaN).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Qps(pub(crate) f64);

impl PartialEq for Qps {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Qps {}

impl Default for HotConfig {
    fn default() -> Self {
        HotConfig::Rate(None)
    }
}

impl HotConfig {
    /// The group's admission rule.
    pub(crate) fn admission(self) -> geecache_group::HotAdmission {
        use geecache_group::HotAdmission;
        match self {
            HotConfig::Rate(None) => HotAdmission::default(),
            HotConfig::Rate(Some(Qps(qps))) => HotAdmission::Rate(qps),
            HotConfig::Random => HotAdmission::Random(10),
        }
    }
}
