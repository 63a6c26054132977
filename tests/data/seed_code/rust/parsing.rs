//! Parsing helpers for small text formats.

use std::collections::HashMap;

/// Parses one "key=value" line into a trimmed pair; `None` when there is no `=` or the key is empty.
pub fn parse_key_value(line: &str) -> Option<(String, String)> {
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    Some((key.to_string(), value.trim().to_string()))
}

/// Reads a config text of "key=value" lines, skipping blank lines and lines starting with `#`.
pub fn parse_config(text: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = parse_key_value(line) {
            map.insert(key, value);
        }
    }
    map
}

/// Parses a comma-separated list of integers, failing on the first bad entry.
pub fn parse_int_list(text: &str) -> Result<Vec<i64>, String> {
    text.split(',')
        .map(|part| part.trim())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<i64>().map_err(|e| format!("bad number {:?}: {}", part, e)))
        .collect()
}

/// Parses a duration such as "90s", "15m" or "2h" into seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Parses an inclusive range like "3-7" into its bounds; a single number is a range of one.
pub fn parse_range(text: &str) -> Option<(u32, u32)> {
    let text = text.trim();
    match text.split_once('-') {
        Some((a, b)) => {
            let start: u32 = a.trim().parse().ok()?;
            let end: u32 = b.trim().parse().ok()?;
            if start <= end {
                Some((start, end))
            } else {
                None
            }
        }
        None => {
            let n: u32 = text.parse().ok()?;
            Some((n, n))
        }
    }
}

/// Interprets common spellings of a boolean ("yes", "off", "1", ...), ignoring case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Splits a query string "a=1&b=2" into pairs, keeping keys without a value as empty strings.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (part.to_string(), String::new()),
        })
        .collect()
}

/// Parses a hex colour "#rrggbb" (the `#` is optional) into its red, green and blue parts.
pub fn parse_hex_color(text: &str) -> Option<(u8, u8, u8)> {
    let hex = text.trim().trim_start_matches('#');
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((channel(0)?, channel(2)?, channel(4)?))
}
