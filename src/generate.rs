//! `sockscope generate`: the man page and the shell completions, made from the clap
//! definition in [`crate::cli`] so that a new command or option reaches them without being
//! written twice (ripgrep's `--generate`).
//!
//! Owns only the rendering of the definition; it reads nothing of the host. The man page is
//! one page, sockscope(1): the synopsis, the description and the options every command
//! takes, then a section per command with its own options, then the threshold and ignore
//! options once (four commands share them), then the exit codes.

use std::io::{self, Write};

use clap::{Arg, Command, CommandFactory as _};
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use crate::cli::Cli;
use crate::config::{Companion, Shell};

/// The heading clap gives the options that several commands share by flattening
/// [`crate::cli::RuleArgs`]: rendered once, after the commands.
fn shared_heading(command: &Command) -> Option<&str> {
    command
        .get_subcommands()
        .flat_map(Command::get_arguments)
        .find_map(Arg::get_help_heading)
}

/// Write `what` to `out`.
pub fn write(what: Companion, out: &mut dyn Write) -> io::Result<()> {
    let mut command = Cli::command();
    match what {
        Companion::Man => man(command, out),
        Companion::Completion(shell) => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut command, "sockscope", out);
            Ok(())
        }
    }
}

/// The man page, sockscope(1).
fn man(mut command: Command, out: &mut dyn Write) -> io::Result<()> {
    command.build();
    let version = command.get_version().unwrap_or_default().to_owned();
    let page = Man::new(command.clone())
        .title("SOCKSCOPE")
        .section("1")
        .source(format!("sockscope {version}"))
        .manual("User Commands");
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;

    let mut roff = Roff::new();
    roff.control("SH", ["OPTIONS"]);
    roff.text([roman(
        "These options are taken before or after any command.",
    )]);
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        option(&mut roff, arg);
    }

    let shared = shared_heading(&command);
    roff.control("SH", ["COMMANDS"]);
    let mut sharing = Vec::new();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("sockscope {}", sub.get_name());
        roff.control("SS", [name.as_str()]);
        let usage = sub.clone().render_usage().to_string();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_owned();
        roff.text([bold(usage)]);
        roff.control("PP", []);
        paragraphs(&mut roff, sub.get_long_about().or_else(|| sub.get_about()));
        let own = |a: &&Arg| {
            !a.is_hide_set()
                && !a.is_global_set()
                && a.get_help_heading() != shared
                && !matches!(a.get_id().as_str(), "help" | "version")
        };
        for arg in sub.get_arguments().filter(own) {
            option(&mut roff, arg);
        }
        if shared.is_some() && sub.get_arguments().any(|a| a.get_help_heading() == shared) {
            sharing.push(sub.get_name());
            roff.control("PP", []);
            roff.text([roman("It takes the threshold and ignore options below.")]);
        }
        if let Some(after) = sub.get_after_help() {
            roff.control("PP", []);
            roff.control("nf", []);
            for line in after.to_string().lines() {
                roff.text([roman(line)]);
            }
            roff.control("fi", []);
        }
    }

    if let Some(heading) = shared {
        // "Thresholds and ignore rules (defaults in brackets; also in --config)": the title
        // for the heading, the rest for the text.
        let (title, aside) = heading.split_once(" (").unwrap_or((heading, ""));
        roff.control("SH", [title.to_uppercase().as_str()]);
        let aside = aside.trim_end_matches(')');
        let aside = aside.get(..1).map_or(String::new(), |first| {
            format!(" {}{}.", first.to_uppercase(), &aside[1..])
        });
        roff.text([roman(format!(
            "Taken by {}. Each threshold overrides the --config file's value; ignore rules \
             add to the file's.{aside}",
            sharing.join(", ")
        ))]);
        let first = command
            .get_subcommands()
            .find(|s| sharing.first() == Some(&s.get_name()));
        for arg in first
            .into_iter()
            .flat_map(Command::get_arguments)
            .filter(|a| a.get_help_heading() == Some(heading))
        {
            option(&mut roff, arg);
        }
    }
    if let Some(after) = command.get_after_help() {
        roff.control("SH", ["NOTES"]);
        paragraphs(&mut roff, Some(after));
    }
    roff.to_writer(out)?;
    page.render_version_section(out)
}

/// One option (or positional argument) as a tagged paragraph: its spellings and value, then
/// its help and the values it admits.
fn option(roff: &mut Roff, arg: &Arg) {
    let mut tag: Vec<Inline> = Vec::new();
    if let Some(short) = arg.get_short() {
        tag.push(bold(format!("-{short}")));
        if arg.get_long().is_some() {
            tag.push(roman(", "));
        }
    }
    if let Some(long) = arg.get_long() {
        tag.push(bold(format!("--{long}")));
    }
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    if takes_value || arg.is_positional() {
        let names = arg.get_value_names().map_or_else(
            || vec![arg.get_id().as_str().to_uppercase()],
            |names| names.iter().map(ToString::to_string).collect::<Vec<_>>(),
        );
        if !tag.is_empty() {
            tag.push(roman(" "));
        }
        tag.push(italic(names.join(" ")));
    }
    roff.control("TP", []);
    roff.text(tag);
    paragraphs(roff, arg.get_long_help().or_else(|| arg.get_help()));
    let values: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .collect();
    if takes_value && !values.is_empty() && values.iter().any(|v| v.get_help().is_some()) {
        for value in values {
            roff.control(
                "IP",
                [format!("\\fB{}\\fR", value.get_name()).as_str(), "4"],
            );
            paragraphs(roff, value.get_help());
        }
    } else if takes_value && !values.is_empty() {
        let names: Vec<&str> = values
            .iter()
            .map(clap::builder::PossibleValue::get_name)
            .collect();
        roff.text([roman(format!("[possible values: {}]", names.join(", ")))]);
    }
}

/// Help text, a blank line starting a new paragraph.
fn paragraphs(roff: &mut Roff, text: Option<&clap::builder::StyledStr>) {
    let Some(text) = text else { return };
    for line in text.to_string().lines() {
        if line.trim().is_empty() {
            roff.control("PP", []);
        } else {
            roff.text([roman(line)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(what: Companion) -> String {
        let mut out = Vec::new();
        write(what, &mut out).expect("writes");
        String::from_utf8(out).expect("UTF-8")
    }

    /// Every command and every long option, of the top level and of each command, as the
    /// clap definition has them.
    fn definition() -> (Vec<String>, Vec<String>) {
        let mut command = Cli::command();
        command.build();
        let mut longs: Vec<String> = Vec::new();
        let mut subcommands = Vec::new();
        for cmd in std::iter::once(&command).chain(command.get_subcommands()) {
            if cmd.get_name() != "sockscope" {
                subcommands.push(cmd.get_name().to_owned());
            }
            for arg in cmd.get_arguments() {
                longs.extend(arg.get_long().map(str::to_owned));
            }
        }
        longs.sort();
        longs.dedup();
        assert!(
            subcommands.len() >= 6 && longs.len() >= 25,
            "{subcommands:?} {longs:?}"
        );
        (subcommands, longs)
    }

    #[test]
    fn the_man_page_names_every_command_and_every_long_option() {
        let page = generated(Companion::Man);
        let (subcommands, longs) = definition();
        for sub in subcommands {
            assert!(
                page.contains(&format!(".SS \"sockscope {sub}\"")),
                "no section for {sub}:\n{page}"
            );
        }
        for long in longs {
            // roff writes a hyphen as `\-`.
            let written = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(page.contains(&written), "--{long} is missing:\n{page}");
        }
        assert!(page.contains("\n.TH SOCKSCOPE 1 "), "{page}");
        for value in ["complete\\-bash", "prometheus"] {
            assert!(page.contains(value), "{value}");
        }
    }

    #[test]
    fn every_completion_script_offers_every_command() {
        let (subcommands, _) = definition();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = generated(Companion::Completion(shell));
            for sub in &subcommands {
                assert!(script.contains(sub.as_str()), "{shell:?} lacks {sub}");
            }
            assert!(
                script.contains("fill-warn"),
                "{shell:?} lacks the thresholds"
            );
        }
    }
}
