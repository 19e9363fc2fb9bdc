//! Why a cache could not be built.

/// A [`SegmentedBuilder`](crate::SegmentedBuilder) setting that cannot work.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The segment count is zero or not a power of two (a key picks its segment with a mask).
    #[error("segments must be a non-zero power of two, got {segments}")]
    SegmentsNotPowerOfTwo {
        /// The count asked for.
        segments: usize,
    },
    /// The segment count is above [`MAX_SEGMENTS`](crate::MAX_SEGMENTS).
    #[error("at most {max} segments are supported, got {segments}")]
    TooManySegments {
        /// The count asked for.
        segments: usize,
        /// The largest count allowed.
        max: usize,
    },
    /// A non-zero budget smaller than the segment count would leave some segment a budget of 0,
    /// which means unbounded.
    #[error("a budget of {max_bytes} bytes cannot be split over {segments} segments")]
    BudgetTooSmall {
        /// The total budget asked for.
        max_bytes: usize,
        /// The segment count asked for.
        segments: usize,
    },
}
