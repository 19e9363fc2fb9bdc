use std::sync::Arc;

/// Why a call to [`Group::work`](crate::Group::work) returned no value.
///
/// Every caller of one flight receives the same outcome, so the work's own error is shared behind
/// an [`Arc`] instead of being cloned: `Error<E>` is `Clone` whatever `E` is, and
/// [`Arc::ptr_eq`] tells two callers that they saw the very same failure.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E> {
    /// The work ran to completion and returned `Err`; every caller of that flight holds the same
    /// `Arc`. Displays as the error itself.
    #[error("{0}")]
    Failed(Arc<E>),
    /// The work panicked. Callers that were waiting on the flight get this; the caller whose
    /// closure panicked gets the panic itself, resumed (see [`Group::work`](crate::Group::work)).
    #[error("the shared work panicked")]
    Panicked,
}

impl<E> Error<E> {
    /// The work's own error, if it returned one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use geecache_singleflight::Error;
    ///
    /// let err = Error::Failed(Arc::new("no such key"));
    /// assert_eq!(err.failure(), Some(&"no such key"));
    /// assert_eq!(Error::<&str>::Panicked.failure(), None);
    /// ```
    #[must_use]
    pub fn failure(&self) -> Option<&E> {
        match self {
            Error::Failed(error) => Some(error),
            Error::Panicked => None,
        }
    }
}

// Written out rather than derived: the derive would demand `E: Clone`, which the `Arc` makes
// unnecessary.
impl<E> Clone for Error<E> {
    fn clone(&self) -> Self {
        match self {
            Error::Failed(error) => Error::Failed(Arc::clone(error)),
            Error::Panicked => Error::Panicked,
        }
    }
}
