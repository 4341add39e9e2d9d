//! The integration tests, by what they check.

mod accept_queue;
mod all_netns;
mod check;
mod check_rules;
mod check_unknown;
mod churn;
mod cli;
mod close_wait;
mod connections;
mod diagnosis;
mod drop_counters;
mod fds;
mod hostile_names;
mod kill;
mod lab;
mod listeners;
mod pipes;
mod privileges;
mod replay;
mod scoped_walk;
mod serve;
mod signals;
mod states;
mod text_report;
mod top;
mod udp;
