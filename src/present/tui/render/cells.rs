//! Text for table cells: numbers, rates, bars, sparklines, truncation, word wrap and column
//! layout. Plain functions of their arguments, so every shape the screen shows is tested here.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// Width in terminal columns. Everything sockscope draws is one column per char (ASCII, box
/// drawing, blocks, `…`), and so are process names in practice.
pub fn width(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `max` columns, with `…` where it was cut.
pub fn cut(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// `s` cut from the left (a path's end is the part that tells paths apart).
pub fn cut_left(s: &str, max: usize) -> String {
    let n = width(s);
    if n <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::from("…");
    out.extend(s.chars().skip(n - (max - 1)));
    out
}

/// `100,102`: counts read at a glance.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate per second: `+21/s`, `+0.5/s`, `0/s`, or `-` before there is one.
pub fn rate(r: Option<f64>) -> String {
    match r {
        None => "-".to_owned(),
        Some(r) if r.abs() < 0.05 => "0/s".to_owned(),
        Some(r) => format!("{}/s", signed(r)),
    }
}

/// `+21`, `+0.5`, `-3`: one decimal below ten.
pub fn signed(r: f64) -> String {
    if r.abs() >= 9.95 {
        format!("{r:+.0}")
    } else {
        format!("{r:+.1}")
    }
}

const EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// A horizontal bar `cells` wide, full at `frac` = 1 (and beyond), in eighths of a cell.
pub fn bar(frac: f64, cells: usize) -> String {
    let frac = if frac.is_finite() {
        frac.clamp(0.0, 1.0)
    } else {
        0.0
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let eighths = (frac * (cells * 8) as f64).round() as usize;
    let mut out: String = std::iter::repeat_n('█', eighths / 8).collect();
    if !eighths.is_multiple_of(8) {
        out.push(EIGHTHS[eighths % 8 - 1]);
    }
    let pad = cells.saturating_sub(width(&out));
    out.extend(std::iter::repeat_n(' ', pad));
    out
}

const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `cells` values as a sparkline scaled from zero to their maximum; a series of
/// zeros sits on the floor, a missing value is a space, and the newest value is on the right.
pub fn spark(values: &[Option<f64>], cells: usize) -> String {
    sparkline(values, cells, false)
}

/// A sparkline of a level rather than a rate: scaled from the lowest value shown to the
/// highest, so growth shows however high the level; a steady level is a flat middle line.
pub fn spark_level(values: &[Option<f64>], cells: usize) -> String {
    sparkline(values, cells, true)
}

fn sparkline(values: &[Option<f64>], cells: usize, from_min: bool) -> String {
    let shown = &values[values.len().saturating_sub(cells)..];
    let max = shown
        .iter()
        .flatten()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let min = if from_min {
        shown.iter().flatten().fold(f64::INFINITY, |m, &v| m.min(v))
    } else {
        0.0
    };
    let mut out = String::with_capacity(cells * 3);
    out.extend(std::iter::repeat_n(' ', cells - shown.len()));
    for v in shown {
        out.push(match *v {
            None => ' ',
            Some(v) if v <= 0.0 || max <= 0.0 => LEVELS[0],
            Some(_) if max - min <= 0.0 => LEVELS[3],
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(v) => LEVELS[(((v - min) / (max - min)) * 7.0).round().clamp(0.0, 7.0) as usize],
        });
    }
    out
}

/// Word-wrap `text` to lines of at most `max` columns; a word longer than a line is cut.
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && width(&line) + 1 + width(word) > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&cut(word, max));
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// At most `max` lines of wrapped text; when some are left out the last one ends in `…`.
pub fn wrap_lines(text: &str, max_width: usize, max_lines: usize) -> Vec<String> {
    let mut lines = wrap(text, max_width);
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            let kept = cut(last, max_width.saturating_sub(1));
            *last = format!("{}…", kept.trim_end_matches('…'));
        }
    }
    lines
}

/// A part of a line: its priority (0 is kept first) and its spans.
pub type Part<'a> = (u8, Vec<Span<'a>>);

/// The parts that fit in `max` columns, in their display order, two spaces apart (or
/// `sep`); lower priorities go first when space runs out.
pub fn fit<'a>(parts: Vec<Part<'a>>, sep: &'a str, max: usize) -> Vec<Span<'a>> {
    let widths: Vec<usize> = parts
        .iter()
        .map(|(_, spans)| spans.iter().map(|s| width(&s.content)).sum())
        .collect();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| parts[i].0);
    let mut keep = vec![false; parts.len()];
    let mut used = 0;
    for i in order {
        let extra = widths[i] + if used == 0 { 0 } else { width(sep) };
        if used + extra > max {
            // Stop at the first part that does not fit, so a line never shows a minor part
            // in place of a more important one.
            break;
        }
        keep[i] = true;
        used += extra;
    }
    let mut out = Vec::new();
    for (i, (_, spans)) in parts.into_iter().enumerate() {
        if keep[i] {
            if !out.is_empty() {
                out.push(Span::raw(sep));
            }
            out.extend(spans);
        }
    }
    out
}

/// How a column is sized and aligned.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub title: &'static str,
    /// Columns wide; a flexible column takes at least this.
    pub width: usize,
    /// Flexible columns share what the fixed ones leave, by weight.
    pub flex: usize,
    pub right: bool,
}

impl Column {
    pub const fn fixed(title: &'static str, width: usize, right: bool) -> Column {
        Column {
            title,
            width,
            flex: 0,
            right,
        }
    }

    pub const fn flex(title: &'static str, min: usize, weight: usize) -> Column {
        Column {
            title,
            width: min,
            flex: weight,
            right: false,
        }
    }
}

/// The widths of `columns` one space apart in `total` columns: fixed ones as asked, flexible
/// ones sharing the rest by weight.
pub fn widths(columns: &[Column], total: usize) -> Vec<usize> {
    let gaps = columns.len().saturating_sub(1);
    let fixed: usize = columns.iter().map(|c| c.width).sum::<usize>() + gaps;
    let spare = total.saturating_sub(fixed);
    let weights: usize = columns.iter().map(|c| c.flex).sum();
    let mut given = 0;
    let mut out: Vec<usize> = columns
        .iter()
        .map(|c| {
            if c.flex == 0 || weights == 0 {
                return c.width;
            }
            let extra = spare * c.flex / weights;
            given += extra;
            c.width + extra
        })
        .collect();
    // What integer division left over goes to the last flexible column.
    if let Some(i) = columns.iter().rposition(|c| c.flex > 0) {
        out[i] += spare.saturating_sub(given);
    }
    out
}

/// One row: each cell cut or padded to its column, one space apart.
pub fn row<'a>(cells: Vec<Span<'a>>, columns: &[Column], widths: &[usize]) -> Line<'a> {
    let mut spans = Vec::with_capacity(cells.len() * 2);
    for (i, ((cell, col), &w)) in cells.into_iter().zip(columns).zip(widths).enumerate() {
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        let text = cut(&cell.content, w);
        let pad = " ".repeat(w.saturating_sub(width(&text)));
        let body = Span::styled(text, cell.style);
        if col.right {
            spans.push(Span::raw(pad));
            spans.push(body);
        } else {
            spans.push(body);
            spans.push(Span::raw(pad));
        }
    }
    Line::from(spans)
}

/// The header row of `columns`.
pub fn header(columns: &[Column], widths: &[usize], style: Style) -> Line<'static> {
    let cells = columns
        .iter()
        .map(|c| Span::styled(c.title, style))
        .collect();
    row(cells, columns, widths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_marks_the_cut() {
        assert_eq!(cut("127.0.0.1:5000", 20), "127.0.0.1:5000");
        assert_eq!(cut("127.0.0.1:5000", 8), "127.0.0…");
        assert_eq!(cut_left("/run/app/api.sock", 10), "…/api.sock");
        assert_eq!(cut("x", 0), "");
    }

    #[test]
    fn numbers_and_rates() {
        assert_eq!(count(100_102), "100,102");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(rate(Some(21.0)), "+21/s");
        assert_eq!(rate(Some(0.5)), "+0.5/s");
        assert_eq!(rate(Some(0.0)), "0/s");
        assert_eq!(rate(None), "-");
    }

    #[test]
    fn bars_fill_in_eighths_and_stop_at_full() {
        assert_eq!(bar(0.0, 4), "    ");
        assert_eq!(bar(0.5, 4), "██  ");
        assert_eq!(bar(1.125, 4), "████");
        assert_eq!(bar(1.0 / 16.0, 4), "▎   ");
        assert_eq!(bar(1.0 / 8.0, 4), "▌   ");
        assert_eq!(bar(f64::NAN, 2), "  ");
    }

    #[test]
    fn sparklines_scale_to_their_maximum() {
        assert_eq!(spark(&[Some(0.0), Some(1.0), Some(2.0)], 3), "▁▅█");
        assert_eq!(spark(&[Some(0.0), Some(0.0)], 4), "  ▁▁");
        assert_eq!(spark(&[None, Some(3.0)], 2), " █");
        assert_eq!(spark_level(&[Some(200.0), Some(200.0)], 2), "▄▄");
        assert_eq!(
            spark_level(&[Some(200.0), Some(210.0), Some(220.0)], 3),
            "▁▅█"
        );
        let long: Vec<Option<f64>> = (0..10).map(|i| Some(f64::from(i))).collect();
        assert_eq!(spark(&long, 3).chars().count(), 3);
    }

    #[test]
    fn wrapping_and_eliding() {
        assert_eq!(wrap("one two three four", 9), ["one two", "three", "four"]);
        assert_eq!(
            wrap_lines("one two three four", 9, 2),
            ["one two", "three…"]
        );
    }

    #[test]
    fn fit_keeps_the_important_parts_in_order() {
        let parts = vec![
            (0, vec![Span::raw("aaaa")]),
            (2, vec![Span::raw("bbbb")]),
            (1, vec![Span::raw("cccc")]),
        ];
        let text: String = fit(parts, " ", 9)
            .iter()
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(text, "aaaa cccc");
    }

    #[test]
    fn flexible_columns_share_the_rest() {
        let cols = [
            Column::flex("a", 4, 1),
            Column::fixed("b", 5, true),
            Column::flex("c", 4, 1),
        ];
        let w = widths(&cols, 30);
        assert_eq!(w.iter().sum::<usize>() + 2, 30);
        assert_eq!(w[1], 5);
        let line = row(
            vec![Span::raw("x"), Span::raw("12"), Span::raw("y")],
            &cols,
            &w,
        );
        assert_eq!(line.width(), 30);
    }
}
