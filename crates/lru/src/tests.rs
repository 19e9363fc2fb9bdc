//! Unit tests: worked examples of each rule (`unit`), model-based property tests against a plain
//! `Vec` model (`props`, `model`), and, in `--cfg loom` builds, model-checked interleavings of
//! the segment locks (`loom`).

#[cfg(not(loom))]
mod model;
#[cfg(not(loom))]
mod props;
#[cfg(not(loom))]
mod unit;

#[cfg(loom)]
mod loom;
