//! The monitoring-plugins output format, read strictly: the status line
//! `SOCKSCOPE <STATE> - <text> | <perfdata>` and each perfdata item
//! `'label'=value[UOM];[warn];[crit];[min];[max]`, as the Monitoring Plugins development
//! guidelines define them. Pure parsers, tested below on hand-written lines; the check tests
//! run them on what the binary prints.
//!
//! The rules enforced: a label is quoted when it holds a space or a quote (a quote inside is
//! doubled) and never holds `=`; the value is a number in the class `[-0-9.]` or `U`; the UOM
//! is one of `s ms us % B KB MB TB c` or nothing; warn and crit are empty or a threshold
//! range (`10`, `10:`, `~:10`, `10:20`, `@10:20`); min and max are empty or numbers; at most
//! five `;`-separated fields; items are separated by spaces.

/// Units of measurement the format allows.
pub const UOMS: [&str; 10] = ["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"];

/// Plugin states, by exit code.
pub const STATES: [&str; 4] = ["OK", "WARNING", "CRITICAL", "UNKNOWN"];

/// One perfdata item.
#[derive(Debug, Clone, PartialEq)]
pub struct Perf {
    pub label: String,
    /// `None` for `U`: the plugin could not determine it.
    pub value: Option<f64>,
    pub uom: String,
    /// Threshold ranges as written.
    pub warn: Option<String>,
    pub crit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The first line of a plugin's output.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    pub state: String,
    pub text: String,
    pub perfdata: Vec<Perf>,
}

/// `PREFIX <STATE> - <text>[ | <perfdata>]`.
pub fn parse_status_line(prefix: &str, line: &str) -> Result<StatusLine, String> {
    let (head, perf) = match line.split_once('|') {
        Some((head, perf)) => (head, Some(perf)),
        None => (line, None),
    };
    let rest = head
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| format!("{line:?} does not start with {prefix:?} and a space"))?;
    let (state, text) = rest
        .split_once(" - ")
        .ok_or_else(|| format!("no \" - \" after the state in {line:?}"))?;
    if !STATES.contains(&state) {
        return Err(format!("{state:?} is not a plugin state in {line:?}"));
    }
    let perfdata = match perf {
        Some(perf) => {
            let perf = perf
                .strip_prefix(' ')
                .ok_or_else(|| format!("no space after `|` in {line:?}"))?;
            let items = parse_perfdata(perf)?;
            if items.is_empty() {
                return Err(format!("`|` with no perfdata after it in {line:?}"));
            }
            items
        }
        None => Vec::new(),
    };
    Ok(StatusLine {
        state: state.to_owned(),
        text: text.trim_end().to_owned(),
        perfdata,
    })
}

/// Space-separated perfdata items.
pub fn parse_perfdata(text: &str) -> Result<Vec<Perf>, String> {
    let mut items = Vec::new();
    let mut rest = text.trim_end_matches('\n');
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return Ok(items);
        }
        let (label, after) = label(rest)?;
        let after = after
            .strip_prefix('=')
            .ok_or_else(|| format!("no `=` after label {label:?} in {text:?}"))?;
        let end = after.find(' ').unwrap_or(after.len());
        items.push(item(label, &after[..end])?);
        rest = &after[end..];
    }
}

/// The label at the start of `text`, and what follows it.
fn label(text: &str) -> Result<(String, &str), String> {
    if let Some(quoted) = text.strip_prefix('\'') {
        let mut label = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                label.push(c);
                continue;
            }
            // A doubled quote is a quote in the label; a single one ends it.
            if quoted[i + 1..].starts_with('\'') {
                label.push('\'');
                chars.next();
                continue;
            }
            if label.is_empty() || label.contains('=') {
                return Err(format!("bad label {label:?} in {text:?}"));
            }
            return Ok((label, &quoted[i + 1..]));
        }
        return Err(format!("unterminated quoted label in {text:?}"));
    }
    let end = text.find('=').unwrap_or(text.len());
    let label = &text[..end];
    if label.is_empty() || label.contains([' ', '\'']) {
        return Err(format!(
            "label {label:?} is empty or needs quotes (it has a space or a quote) in {text:?}"
        ));
    }
    Ok((label.to_owned(), &text[end..]))
}

/// A number as the format writes one: characters of `[-0-9.]`, at least one digit.
fn number(text: &str) -> Option<f64> {
    let well_formed = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && !text[1..].contains('-')
        && text.matches('.').count() <= 1;
    well_formed.then(|| text.parse().ok()).flatten()
}

/// `[@]start:end`, `[@]end`, `[@]start:` or `[@]~:end`.
fn range(text: &str) -> Result<(), String> {
    let bad = || format!("{text:?} is not a threshold range");
    let body = text.strip_prefix('@').unwrap_or(text);
    let (start, end) = match body.split_once(':') {
        Some((start, end)) => (Some(start), end),
        None => (None, body),
    };
    let start = match start {
        None => Some(0.0),
        Some("~") => None,
        Some(s) => Some(number(s).ok_or_else(bad)?),
    };
    let end = if end.is_empty() && body.contains(':') {
        None
    } else {
        Some(number(end).ok_or_else(bad)?)
    };
    if let (Some(start), Some(end)) = (start, end) {
        if start > end {
            return Err(format!("{text:?}: the range starts after it ends"));
        }
    }
    Ok(())
}

/// `value[UOM];[warn];[crit];[min];[max]` for `label`.
fn item(label: String, text: &str) -> Result<Perf, String> {
    let fields: Vec<&str> = text.split(';').collect();
    if fields.len() > 5 {
        return Err(format!("{label}: more than five fields in {text:?}"));
    }
    let field = |i: usize| fields.get(i).copied().filter(|f| !f.is_empty());
    let first = fields[0];
    let (value, uom) = if first == "U" {
        (None, String::new())
    } else {
        let split = first
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(first.len());
        let value = number(&first[..split])
            .ok_or_else(|| format!("{label}: value {first:?} is neither a number nor U"))?;
        let uom = &first[split..];
        if !UOMS.contains(&uom) {
            return Err(format!("{label}: {uom:?} is not a unit of measurement"));
        }
        (Some(value), uom.to_owned())
    };
    let threshold = |i: usize| -> Result<Option<String>, String> {
        field(i)
            .map(|t| range(t).map(|()| t.to_owned()))
            .transpose()
            .map_err(|e| format!("{label}: {e}"))
    };
    let bound = |i: usize| -> Result<Option<f64>, String> {
        field(i)
            .map(|b| number(b).ok_or_else(|| format!("{label}: {b:?} is not a number")))
            .transpose()
    };
    Ok(Perf {
        value,
        uom,
        warn: threshold(1)?,
        crit: threshold(2)?,
        min: bound(3)?,
        max: bound(4)?,
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Perf {
        let items = parse_perfdata(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(items.len(), 1, "{items:?}");
        items.into_iter().next().expect("one item")
    }

    #[test]
    fn a_full_item() {
        let p = one("'fd_use_max'=97.5%;80;95;0;100");
        assert_eq!(
            p,
            Perf {
                label: "fd_use_max".into(),
                value: Some(97.5),
                uom: "%".into(),
                warn: Some("80".into()),
                crit: Some("95".into()),
                min: Some(0.0),
                max: Some(100.0),
            }
        );
    }

    #[test]
    fn unknown_values_empty_fields_and_no_unit() {
        let p = one("'listen_drops_per_s'=U;;10;0");
        assert_eq!((p.value, p.warn, p.crit), (None, None, Some("10".into())));
        assert_eq!((p.min, p.max), (Some(0.0), None));
        let p = one("close_wait_max=200");
        assert_eq!(
            (p.label.as_str(), p.value, p.uom.as_str()),
            ("close_wait_max", Some(200.0), "")
        );
        let p = one("time=-1.5s;;;;");
        assert_eq!((p.value, p.uom.as_str()), (Some(-1.5), "s"));
    }

    #[test]
    fn every_unit_of_measurement() {
        for uom in UOMS {
            assert_eq!(one(&format!("x=1{uom}")).uom, uom);
        }
        for bad in ["x=1ops", "x=1%%", "x=1e5", "x=1 %", "x=U%", "x=1kb"] {
            assert!(parse_perfdata(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn threshold_ranges() {
        for ok in [
            "10", "10:", "~:10", "10:20", "@10:20", "-5:5", "0.5", "@~:0",
        ] {
            let p = one(&format!("x=1;{ok};{ok}"));
            assert_eq!(p.warn.as_deref(), Some(ok));
        }
        for bad in [
            "x=1;20:10",
            "x=1;abc",
            "x=1;;1:2:3",
            "x=1;;@",
            "x=1;~",
            "x=1;1e3",
        ] {
            assert!(parse_perfdata(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn numbers_are_plain_decimals() {
        for bad in [
            "x=NaN",
            "x=inf",
            "x=-",
            "x=.",
            "x=1.2.3",
            "x=1-2",
            "x=",
            "x=1;;;min",
            "x=1;;;0;1e2",
        ] {
            assert!(parse_perfdata(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(one("x=.5").value, Some(0.5));
    }

    #[test]
    fn labels_with_spaces_and_quotes_are_quoted() {
        assert_eq!(one("'queue fill'=1").label, "queue fill");
        assert_eq!(one("'it''s'=1").label, "it's");
        for bad in [
            "queue fill=1",
            "it's=1",
            "'open=1",
            "''=1",
            "'a=b'=1",
            "=1",
            "'x'1",
        ] {
            assert!(parse_perfdata(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn too_many_fields() {
        assert!(parse_perfdata("x=1;1;2;0;10;extra").is_err());
    }

    #[test]
    fn several_items() {
        let items = parse_perfdata("'a'=1%;80;100;0 'b c'=U;;10;0  d=3c").expect("parses");
        let labels: Vec<&str> = items.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["a", "b c", "d"]);
    }

    #[test]
    fn status_lines() {
        let line = "SOCKSCOPE WARNING - 0 critical, 1 warning: close-wait-leak process leaky \
                    (pid 7) | 'close_wait_max'=200;50;500;0 'findings_warning'=1;;;0";
        let s = parse_status_line("SOCKSCOPE", line).expect("parses");
        assert_eq!(s.state, "WARNING");
        assert!(s.text.starts_with("0 critical"), "{s:?}");
        assert_eq!(s.perfdata.len(), 2);
        let unknown = parse_status_line("SOCKSCOPE", "SOCKSCOPE UNKNOWN - no config").expect("ok");
        assert_eq!(
            (unknown.state.as_str(), unknown.perfdata.len()),
            ("UNKNOWN", 0)
        );
        for bad in [
            "SOCKSCOPE FINE - all good",
            "SOCKSCOPE OK all good",
            "sockscope OK - all good",
            "SOCKSCOPE OK - all good |",
            "SOCKSCOPE OK - all good | x=1 | y=2",
            "SOCKSCOPE OK - all good |x=1",
        ] {
            assert!(
                parse_status_line("SOCKSCOPE", bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
