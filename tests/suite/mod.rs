//! The integration tests, by what they check.

mod accept_queue;
mod churn;
mod cli;
mod close_wait;
mod fds;
mod lab;
mod listeners;
mod pipes;
mod privileges;
mod states;
mod text_report;
