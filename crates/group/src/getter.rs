use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use geecache_byteview::ByteView;

use crate::error::{LoadError, Rejected};

/// A boxed, sendable future, the shape dyn-compatible traits here return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A value from a loader, with the time it may be cached for.
///
/// From a peer, it may also carry the key's request rate as the owner measured it
/// ([`with_minute_qps`](Self::with_minute_qps)).
#[derive(Clone, Debug)]
pub struct Loaded {
    value: ByteView,
    ttl: Option<Duration>,
    minute_qps: Option<f64>,
}

impl PartialEq for Loaded {
    fn eq(&self, other: &Self) -> bool {
        // Compared as bits, so that `Eq` holds for a rate that is NaN (a peer may send one).
        let bits = |l: &Loaded| l.minute_qps.map(f64::to_bits);
        self.value == other.value && self.ttl == other.ttl && bits(self) == bits(other)
    }
}

impl Eq for Loaded {}

impl Loaded {
    /// A value that lives as long as the group's default allows.
    pub fn new(value: impl Into<ByteView>) -> Self {
        Loaded {
            value: value.into(),
            ttl: None,
            minute_qps: None,
        }
    }

    /// Caches the value for at most `ttl`, overriding the group's default.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Caches the value for at most `ttl` when it is `Some`.
    #[must_use]
    pub fn with_optional_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// The key's request rate as the peer that owns it measured it, in requests per second (a
    /// decaying average over about a minute): a transport sets it from the peer's answer
    /// (`minute_qps` on the wire), and the group decides by it whether to keep a hot copy
    /// ([`HotAdmission::Rate`](crate::HotAdmission::Rate)). A loader has no reason to set it.
    #[must_use]
    pub fn with_minute_qps(mut self, qps: Option<f64>) -> Self {
        self.minute_qps = qps;
        self
    }

    /// The owner's request rate of the key, if the peer sent one.
    #[must_use]
    pub fn minute_qps(&self) -> Option<f64> {
        self.minute_qps
    }

    /// The value.
    #[must_use]
    pub fn value(&self) -> &ByteView {
        &self.value
    }

    /// The value's own time to live, if it has one.
    #[must_use]
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// The value, taken out.
    #[must_use]
    pub fn into_value(self) -> ByteView {
        self.value
    }
}

impl<T: Into<ByteView>> From<T> for Loaded {
    fn from(value: T) -> Self {
        Loaded::new(value)
    }
}

/// The user's loader: fetches the value of a key from the source of truth.
///
/// Implement it with an `async fn`; the group calls it at most once per key at a time, and
/// only on the node that owns the key (or when the owner cannot be reached).
///
/// ```
/// use geecache_group::{Getter, Loaded, LoadError};
///
/// struct Squares;
///
/// impl Getter for Squares {
///     async fn get(&self, key: &str) -> Result<Loaded, LoadError> {
///         let n: u64 = key.parse().map_err(LoadError::failed)?;
///         Ok(Loaded::from((n * n).to_string()))
///     }
/// }
/// ```
pub trait Getter: Send + Sync + 'static {
    /// Loads `key`. Return [`LoadError::NotFound`] when the source has no such key, and
    /// [`LoadError::Rejected`] when it finds out only now (on disk, say) that it refuses it.
    fn get(&self, key: &str) -> impl Future<Output = Result<Loaded, LoadError>> + Send;

    /// Refuses keys this source would never look up, before any cache or peer sees them.
    ///
    /// The group calls it on every get, cache hits included, so it must be cheap and do no
    /// I/O: check the key's text here (a `..` segment, a NUL byte), and leave checks that need
    /// the disk or the network to [`get`](Self::get), which runs only on a miss. Default:
    /// every key is welcome.
    ///
    /// ```
    /// use geecache_group::{Getter, Loaded, LoadError, Rejected};
    ///
    /// struct Numbers;
    ///
    /// impl Getter for Numbers {
    ///     async fn get(&self, key: &str) -> Result<Loaded, LoadError> {
    ///         Ok(Loaded::from(key.to_owned()))
    ///     }
    ///
    ///     fn check_key(&self, key: &str) -> Result<(), Rejected> {
    ///         match key.bytes().all(|b| b.is_ascii_digit()) {
    ///             true => Ok(()),
    ///             false => Err(Rejected::new("keys are decimal numbers")),
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Rejected`], saying why.
    fn check_key(&self, key: &str) -> Result<(), Rejected> {
        let _ = key;
        Ok(())
    }
}

/// The dyn-compatible form of [`Getter`] the group stores; every `Getter` is one.
pub(crate) trait DynGetter: Send + Sync + 'static {
    fn get_boxed<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Loaded, LoadError>>;
    fn check_key(&self, key: &str) -> Result<(), Rejected>;
}

impl<G: Getter> DynGetter for G {
    fn get_boxed<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Loaded, LoadError>> {
        // One allocation per load: loads go to a database or a disk, so this never shows.
        Box::pin(self.get(key))
    }

    fn check_key(&self, key: &str) -> Result<(), Rejected> {
        Getter::check_key(self, key)
    }
}

/// A [`Getter`] made from a closure; see [`getter_fn`].
#[derive(Clone)]
pub struct GetterFn<F>(F);

/// Makes a [`Getter`] from a closure that takes the key and returns a future.
///
/// The key arrives as an owned `String` so the future can own it too.
///
/// ```
/// use geecache_group::{getter_fn, Loaded, LoadError};
///
/// let loader = getter_fn(|key: String| async move {
///     Ok::<_, LoadError>(Loaded::from(key.to_uppercase()))
/// });
/// # let _ = loader;
/// ```
pub fn getter_fn<F, Fut>(f: F) -> GetterFn<F>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Loaded, LoadError>> + Send + 'static,
{
    GetterFn(f)
}

impl<F, Fut> Getter for GetterFn<F>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Loaded, LoadError>> + Send + 'static,
{
    fn get(&self, key: &str) -> impl Future<Output = Result<Loaded, LoadError>> + Send {
        (self.0)(key.to_owned())
    }
}

impl<F> fmt::Debug for GetterFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GetterFn")
    }
}
