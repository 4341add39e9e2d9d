//! Faces: each renders an [`crate::analyze::Analysis`] and derives nothing new.
//!
//! Report renderers take `&mut impl Write` so tests capture their output; the dashboard
//! ([`tui`]) draws frames that tests capture with ratatui's `TestBackend`. None reads the
//! kernel.

pub mod check;
pub mod json;
pub mod record;
pub mod serve;
pub mod text;
pub mod tui;
