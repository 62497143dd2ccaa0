//! Printing: padded tables, JSON, and formatting of times, durations and targets.
//!
//! Everything goes through [`outln!`] so that a closed pipe (`arcus ... | head`)
//! ends the command quietly instead of panicking.

use arcus_core::model::AliasTarget;
use serde::Serialize;
use std::io::Write as _;
use time::OffsetDateTime;

/// `writeln!` to stdout, returning an error (with `?`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}
pub(crate) use outln;

/// Prints a value as pretty JSON.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints a list as the API returns it: `{"items": [...]}`.
pub fn print_json_list<T: Serialize>(items: &[T]) -> anyhow::Result<()> {
    print_json(&serde_json::json!({ "items": items }))
}

/// A table printed as left-aligned columns separated by two spaces.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with the given column headers.
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// A table without a header row (e.g. `key  value` lines).
    pub fn without_header() -> Self {
        Self { rows: Vec::new() }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders the table, one line per row, each ending with a newline.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c].saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table to stdout.
    pub fn print(&self) -> anyhow::Result<()> {
        std::io::stdout()
            .lock()
            .write_all(self.render().as_bytes())?;
        Ok(())
    }
}

/// A time in UTC to the second: `2025-01-31T12:00:00Z`.
pub fn time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A time in UTC to the millisecond, fixed width: `2025-01-31T12:00:00.120Z`.
pub fn time_ms(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    let seconds = time(utc);
    let base = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{base}.{:03}Z", utc.millisecond())
}

/// A duration given in microseconds, e.g. `850µs`, `12.3ms`, `1.20s`.
pub fn duration_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// The first 12 hex digits of a sha256.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The text, or `-` when it is empty.
pub fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// An alias target: `3` or `3 (canary 4 at 10%)`.
pub fn alias_target(t: &AliasTarget) -> String {
    match t.canary {
        Some(c) => format!("{} (canary {} at {}%)", t.version, c.version, c.weight),
        None => t.version.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    #[test]
    fn table_columns_are_aligned() {
        let mut t = Table::new(&["NAME", "DESCRIPTION"]);
        t.row(vec!["a-long-name".into(), "x".into()]);
        t.row(vec!["b".into(), String::new()]);
        assert_eq!(t.render(), "NAME         DESCRIPTION\na-long-name  x\nb\n");
    }

    #[test]
    fn formats() {
        assert_eq!(duration_us(850), "850µs");
        assert_eq!(duration_us(12_345), "12.3ms");
        assert_eq!(duration_us(1_204_000), "1.20s");
        assert_eq!(short_sha("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_sha("ab"), "ab");
        let t = OffsetDateTime::parse("2025-01-31T13:00:00.123456+01:00", &Rfc3339).unwrap();
        assert_eq!(time(t), "2025-01-31T12:00:00Z");
        assert_eq!(time_ms(t), "2025-01-31T12:00:00.123Z");
        let t = OffsetDateTime::parse("2025-01-31T12:00:02.5Z", &Rfc3339).unwrap();
        assert_eq!(time_ms(t), "2025-01-31T12:00:02.500Z");
        let canary = arcus_core::model::Canary {
            version: 4,
            weight: 10,
        };
        let target = AliasTarget {
            version: 3,
            canary: Some(canary),
        };
        assert_eq!(alias_target(&target), "3 (canary 4 at 10%)");
    }
}
