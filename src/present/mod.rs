//! Faces: each renders an [`crate::analyze::Analysis`] to a writer and derives nothing new.
//!
//! Renderers take `&mut impl Write` so tests capture their output; none reads the kernel.

pub mod check;
pub mod json;
pub mod record;
pub mod text;
pub mod tui;
