//! The integration tests, by what they check.

mod accept_queue;
mod all_netns;
mod cli;
mod close_wait;
mod fds;
mod lab;
mod listeners;
mod serve;
mod states;
mod text_report;
mod top;
