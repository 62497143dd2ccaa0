//! Distinct copies of one wasm component: the same code with a custom section appended,
//! so each copy has its own sha256 (its own code blob, compiled artefact and loaded
//! component on the node) but behaves the same.
//!
//! A custom section is id `0`, the section's size as unsigned LEB128, then the name (its
//! length as LEB128 and its UTF-8 bytes) and the payload. Custom sections may appear
//! anywhere in a core module or a component, and runtimes ignore unknown ones.

use anyhow::{Result, bail};

/// The preamble magic shared by core modules and components.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Name of the custom section the bench appends.
const SECTION_NAME: &str = "arcus-bench-variant";

/// `component` with a custom section [`SECTION_NAME`] whose payload is `tag`.
pub fn variant(component: &[u8], tag: &str) -> Result<Vec<u8>> {
    if component.len() < 8 || !component.starts_with(WASM_MAGIC) {
        bail!("not a wasm binary (no \\0asm preamble)");
    }
    with_custom_section(component, SECTION_NAME, tag.as_bytes())
}

/// Appends the custom section `name` holding `payload` to the wasm binary `wasm`.
fn with_custom_section(wasm: &[u8], name: &str, payload: &[u8]) -> Result<Vec<u8>> {
    let name_len = leb128(u32::try_from(name.len())?);
    let size = name_len.len() + name.len() + payload.len();
    let mut out = Vec::with_capacity(wasm.len() + size + 6);
    out.extend_from_slice(wasm);
    out.push(0);
    out.extend(leb128(u32::try_from(size)?));
    out.extend(name_len);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Unsigned LEB128: 7 bits a byte, low first, high bit set on all but the last.
fn leb128(mut value: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    loop {
        // The mask keeps the value below 128, so the cast cannot truncate.
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn leb128_encodes_unsigned_values() {
        assert_eq!(leb128(0), [0]);
        assert_eq!(leb128(127), [0x7f]);
        assert_eq!(leb128(128), [0x80, 0x01]);
        assert_eq!(leb128(300), [0xac, 0x02]);
        assert_eq!(leb128(u32::MAX), [0xff, 0xff, 0xff, 0xff, 0x0f]);
    }

    #[test]
    fn appends_a_custom_section() {
        let header = b"\0asm\x0d\x00\x01\x00";
        let out = variant(header, "7").unwrap();
        let name = SECTION_NAME.as_bytes();
        let mut expected = header.to_vec();
        expected.extend([0, u8::try_from(1 + name.len() + 1).unwrap()]);
        expected.push(u8::try_from(name.len()).unwrap());
        expected.extend_from_slice(name);
        expected.push(b'7');
        assert_eq!(out, expected);
        assert_ne!(variant(header, "8").unwrap(), out);
    }

    #[test]
    fn refuses_what_is_not_wasm() {
        assert!(variant(b"PK\x03\x04....", "1").is_err());
    }
}
