//! Small helpers shared by the adapters: time parsing, lenient JSON access, stable ids.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Parses an ISO-8601 / RFC 3339 timestamp into UTC epoch nanoseconds.
///
/// Accepts an offset (`Z`, `+00:00`), no offset at all (taken as UTC, as LangSmith and AG2
/// write them), a space instead of `T`, and any number of fraction digits.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return i64::try_from(ts.as_nanosecond()).ok();
    }
    let normalized;
    let s = if s.len() > 10 && s.as_bytes()[10] == b' ' {
        normalized = format!("{}T{}", &s[..10], &s[11..]);
        normalized.as_str()
    } else {
        s
    };
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return i64::try_from(ts.as_nanosecond()).ok();
    }
    let dt = s.parse::<jiff::civil::DateTime>().ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    i64::try_from(ts.as_nanosecond()).ok()
}

/// Formats epoch nanoseconds as RFC 3339 UTC.
pub fn format_time(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map_or_else(|_| ns.to_string(), |t| t.to_string())
}

/// Epoch milliseconds to nanoseconds.
pub fn ms_to_ns(ms: f64) -> Option<i64> {
    let ns = ms * 1e6;
    ns.is_finite().then_some(ns as i64)
}

/// Epoch seconds to nanoseconds.
pub fn secs_to_ns(secs: f64) -> Option<i64> {
    let ns = secs * 1e9;
    ns.is_finite().then_some(ns as i64)
}

/// A timestamp given either as a string (ISO, or digits) or a number, with the unit of bare
/// numbers guessed from their magnitude (seconds, milliseconds, microseconds, nanoseconds).
pub fn time_value(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse::<u64>().ok().and_then(|n| epoch_guess(n as f64))
            } else if let Ok(f) = t.parse::<f64>() {
                epoch_guess(f)
            } else {
                parse_time(t)
            }
        }
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                // Integers beyond 2^53 are nanoseconds; keep them exact.
                if u > 1_000_000_000_000_000_000 {
                    return i64::try_from(u).ok();
                }
            }
            n.as_f64().and_then(epoch_guess)
        }
        _ => None,
    }
}

fn epoch_guess(n: f64) -> Option<i64> {
    if n <= 0.0 {
        return None;
    }
    if n < 1e11 {
        secs_to_ns(n)
    } else if n < 1e14 {
        ms_to_ns(n)
    } else if n < 1e17 {
        Some((n * 1e3) as i64)
    } else {
        Some(n as i64)
    }
}

/// Parses an ISO-8601 duration such as `PT1.23S` or `PT2M3S` into nanoseconds.
pub fn parse_iso_duration(s: &str) -> Option<i64> {
    let span: jiff::Span = s.trim().parse().ok()?;
    let secs = span.total(jiff::Unit::Second).ok()?;
    secs_to_ns(secs)
}

/// Reads an unsigned integer from a number or a decimal string (OTLP writes 64-bit ints as
/// strings).
pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a float from a number or a decimal string (Dify prices are strings).
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Follows a path of object keys.
pub fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    Some(cur)
}

/// A string at a path of object keys; empty strings count as absent.
pub fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Text of a value: strings as they are, arrays of strings or text parts joined by newlines,
/// anything else as compact JSON. `null` gives `None`.
pub fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    Value::Object(o) => {
                        if let Some(t) = o.get("text").and_then(Value::as_str) {
                            out.push(t.to_owned());
                        } else if let Some(t) = o.get("content").and_then(Value::as_str) {
                            out.push(t.to_owned());
                        } else {
                            out.push(item.to_string());
                        }
                    }
                    other => out.push(other.to_string()),
                }
            }
            Some(out.join("\n"))
        }
        other => Some(other.to_string()),
    }
}

/// Flattens nested objects into `a.b.c` keys (arrays are kept as values).
pub fn flatten_into(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(&key, child, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// Keys of an object, for error messages.
pub fn keys_of(map: &Map<String, Value>) -> Vec<String> {
    map.keys().take(12).cloned().collect()
}

/// A stable 64-bit FNV-1a hash, hex-encoded: used for synthesized trace ids so the same input
/// always gets the same id.
pub fn stable_id(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Parses a JSON string that may itself hold JSON (OpenInference `input.value`, Codex
/// arguments); returns the parsed value, or the string itself when it is not JSON.
pub fn maybe_json(s: &str) -> Value {
    let t = s.trim_start();
    if (t.starts_with('{') || t.starts_with('['))
        && let Ok(v) = serde_json::from_str::<Value>(s)
    {
        return v;
    }
    Value::String(s.to_owned())
}

/// Shortens text to at most `max` characters on a character boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times() {
        let z = parse_time("2025-03-01T10:00:00Z").unwrap();
        assert_eq!(parse_time("2025-03-01T10:00:00").unwrap(), z);
        assert_eq!(parse_time("2025-03-01 10:00:00.000000").unwrap(), z);
        assert_eq!(parse_time("2025-03-01T11:00:00+01:00").unwrap(), z);
        assert_eq!(
            parse_time("2025-03-01T10:00:00.5Z").unwrap(),
            z + 500_000_000
        );
        assert_eq!(time_value(&json!(1_740_823_200)).unwrap(), z);
        assert_eq!(time_value(&json!(1_740_823_200_000_u64)).unwrap(), z);
        assert_eq!(time_value(&json!("1740823200000000000")).unwrap(), z);
        assert_eq!(parse_iso_duration("PT1.5S").unwrap(), 1_500_000_000);
        assert_eq!(parse_iso_duration("PT2M").unwrap(), 120_000_000_000);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn big_numeric_nanos_stay_exact() {
        let v: Value = serde_json::from_str("1544712660300000123").unwrap();
        assert_eq!(time_value(&v).unwrap(), 1_544_712_660_300_000_123);
    }

    #[test]
    fn stable_ids() {
        assert_eq!(stable_id(&["a", "b"]), stable_id(&["a", "b"]));
        assert_ne!(stable_id(&["ab"]), stable_id(&["a", "b"]));
    }
}
