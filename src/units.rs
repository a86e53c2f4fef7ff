//! Parsing of the durations and sizes operators type on the command line.

use std::time::Duration;

/// Parse a duration: a plain number is seconds (as check_http's `-t 10`),
/// otherwise humantime syntax (`500ms`, `5s`, `2m`, `1h 30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if (0.0..1e9).contains(&seconds) {
            return Ok(Duration::from_secs_f64(seconds));
        }
        return Err(format!(
            "{text:?} is not a duration (want e.g. 10, 500ms, 5s, 2m)"
        ));
    }
    humantime::parse_duration(text)
        .map_err(|_| format!("{text:?} is not a duration (want e.g. 10, 500ms, 5s, 2m)"))
}

/// Parse a byte size: `4096`, `512K`, `10M`, `1G`, `64KiB` (binary multiples).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a size (want e.g. 4096, 512K, 10M)");
    let number: u64 = number.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    number.checked_mul(multiplier).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert!(parse_size("10X").is_err());
        assert!(parse_size("").is_err());
    }
}
