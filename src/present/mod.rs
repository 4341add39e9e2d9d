//! Faces: each renders an [`crate::analyze::Analysis`] to a writer and derives nothing new.
//!
//! Renderers take `&mut impl Write` so tests capture their output; none reads the kernel.

pub mod json;
pub mod text;

/// Round to one decimal place for display and JSON (rates and percentages).
pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
