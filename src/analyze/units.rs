//! Number formatting shared by the findings' text and the faces.

/// Round to one decimal place: rates and percentages in evidence, JSON and tables.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `45s`, `3m12s`, `2h05m`: ages an operator can compare at a glance.
pub fn format_age(secs: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(format_age(0.4), "0s");
        assert_eq!(format_age(59.0), "59s");
        assert_eq!(format_age(192.0), "3m12s");
        assert_eq!(format_age(7500.0), "2h05m");
    }

    #[test]
    fn one_decimal() {
        assert!((round1(112.456) - 112.5).abs() < 1e-9);
    }
}
