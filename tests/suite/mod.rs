//! The integration tests, by what they check.

mod accept_queue;
mod check;
mod check_rules;
mod check_unknown;
mod cli;
mod close_wait;
mod diagnosis;
mod drop_counters;
mod fds;
mod lab;
mod listeners;
mod replay;
mod states;
mod text_report;
