//! Quantities written on the command line: durations and byte counts.

use std::time::Duration;

/// Parses `250ms`, `2s`, `1.5s`, `3m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| {
        format!("{text:?} is not a duration: write e.g. 500ms, 2s, 1.5s or 3m (a plain number is seconds)")
    })?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "{text:?} is not a duration: it must be zero or more"
        ));
    }
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("{text:?} is too long a duration"))
}

/// A byte count: digits, optionally followed by KiB, MiB or GiB (or K, M, G: also powers of 2).
pub fn byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => {
            return Err(format!(
                "unknown unit `{other}`: write a byte count such as 65536, 64KiB, 16MiB or 1GiB"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a byte count such as 65536, 64KiB or 16MiB"))?;
    if n == 0 {
        return Err("must be at least 1 byte".to_owned());
    }
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "fast", "-1s", "NaN", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_take_binary_units_and_reject_the_rest() {
        assert_eq!(byte_size("65536"), Ok(65536));
        assert_eq!(byte_size("64KiB"), Ok(64 << 10));
        assert_eq!(byte_size("16M"), Ok(16 << 20));
        assert_eq!(byte_size("1gib"), Ok(1 << 30));
        assert!(byte_size("0").is_err());
        assert!(
            byte_size("12 furlongs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(byte_size("KiB").unwrap_err().contains("not a byte count"));
        assert!(byte_size("99999999999999999999G").is_err());
    }
}
