//! W3C Trace Context (`traceparent`) parsing and formatting, and the AWS X-Ray form of
//! the same ids (`_X_AMZN_TRACE_ID` / `Lambda-Runtime-Trace-Id`) for handler functions.
//!
//! An invalid header is never an error: callers start a new trace instead.

use std::fmt;

/// The `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";

/// A parsed `traceparent`: the trace, the span that is the parent of what comes next,
/// and the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace id (never all zero).
    pub trace_id: [u8; 16],
    /// The parent span id (never all zero).
    pub parent_id: [u8; 8],
    /// Trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

/// Lower-case hex digits of `s` into `out`; `None` unless `s` is exactly that long and
/// all lower-case hex (W3C forbids upper case).
fn hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (i, o) in out.iter_mut().enumerate() {
        *o = (digit(b[2 * i])? << 4) | digit(b[2 * i + 1])?;
    }
    Some(())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

impl TraceParent {
    /// Flag bit meaning the caller records this trace.
    pub const SAMPLED: u8 = 0x01;

    /// A context from ids (all-zero ids make an invalid header; use random ones).
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8], flags: u8) -> Self {
        Self {
            trace_id,
            parent_id,
            flags,
        }
    }

    /// Parses a `traceparent` header value; `None` if it is not valid. Version `00` must
    /// be exactly `00-<32 hex>-<16 hex>-<2 hex>`; a later version (not `ff`) may carry
    /// more fields after a `-`, which are ignored, as the specification asks.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let mut version = [0u8; 1];
        hex_into(value.get(0..2)?, &mut version)?;
        match version[0] {
            0xff => return None,
            0x00 if value.len() != 55 => return None,
            _ if value.len() > 55 && value.as_bytes()[55] != b'-' => return None,
            _ => {}
        }
        let b = value.as_bytes();
        if b.get(2) != Some(&b'-') || b.get(35) != Some(&b'-') || b.get(52) != Some(&b'-') {
            return None;
        }
        let mut tp = Self::new([0; 16], [0; 8], 0);
        hex_into(value.get(3..35)?, &mut tp.trace_id)?;
        hex_into(value.get(36..52)?, &mut tp.parent_id)?;
        let mut flags = [0u8; 1];
        hex_into(value.get(53..55)?, &mut flags)?;
        tp.flags = flags[0];
        if tp.trace_id == [0; 16] || tp.parent_id == [0; 8] {
            return None;
        }
        Some(tp)
    }

    /// Whether the `sampled` flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & Self::SAMPLED != 0
    }

    /// The same trace and flags with another parent span.
    pub fn with_parent(&self, parent_id: [u8; 8]) -> Self {
        Self { parent_id, ..*self }
    }

    /// The trace id as 32 lower-case hex digits (as records and logs store it).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The parent span id as 16 lower-case hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex(&self.parent_id)
    }

    /// The header value, version `00`, with the flags as received.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.parent_id_hex(),
            self.flags
        )
    }

    /// The same ids in AWS X-Ray form, as `_X_AMZN_TRACE_ID` carries them:
    /// `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>` (the first 8 hex digits
    /// of the W3C trace id are X-Ray's epoch field, the other 24 its random part).
    pub fn xray(&self) -> String {
        let t = self.trace_id_hex();
        format!(
            "Root=1-{}-{};Parent={};Sampled={}",
            &t[..8],
            &t[8..],
            self.parent_id_hex(),
            u8::from(self.sampled())
        )
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_specification_example() {
        let tp = TraceParent::parse(GOOD).unwrap();
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id_hex(), "00f067aa0ba902b7");
        assert!(tp.sampled());
        assert_eq!(tp.header(), GOOD);
        assert_eq!(tp.to_string(), GOOD);
        let unsampled =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!unsampled.sampled());
        assert_eq!(TraceParent::parse(&format!(" {GOOD}\t")), Some(tp));
    }

    #[test]
    fn rejects_invalid_headers() {
        for bad in [
            "",
            "garbage",
            // all-zero trace id / parent id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // upper case, short, long, wrong separators, non-hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9z2b7-01",
            // version ff is forbidden, versions must be hex
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // a later version may be longer, but only after a '-'
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-€1",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn accepts_later_versions_by_their_first_fields() {
        let tp = TraceParent::parse(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next",
        )
        .unwrap();
        assert_eq!(tp.header(), GOOD);
    }

    #[test]
    fn with_parent_keeps_the_trace() {
        let tp = TraceParent::parse(GOOD).unwrap();
        let child = tp.with_parent([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            child.header(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
        );
    }

    #[test]
    fn xray_form() {
        let tp = TraceParent::parse(GOOD).unwrap();
        assert_eq!(
            tp.xray(),
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
        let mut unsampled = tp;
        unsampled.flags = 0;
        assert!(unsampled.xray().ends_with(";Sampled=0"));
    }
}
