//! Bounds-checked reading of the MQTT data types (section 1.5 of both standards).
//!
//! Every read checks the remaining length first, so a truncated or lying
//! packet becomes [`CodecError::Truncated`] instead of a panic. Binary fields
//! are zero-copy slices of the packet's `Bytes`.

use bytes::Bytes;

use super::error::CodecError;

/// Largest value a Variable Byte Integer can hold (four bytes).
pub(super) const MAX_VARIABLE_BYTE_INTEGER: u32 = 268_435_455;

/// A cursor over one packet's bytes (or a part of it, e.g. its properties).
#[derive(Debug)]
pub(super) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    /// A reader over all of `buf`.
    pub(super) fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub(super) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// True when everything has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails with `TrailingBytes` unless everything has been read.
    pub(super) fn finish(&self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(CodecError::TrailingBytes(n)),
        }
    }

    /// Takes the next `n` bytes as a zero-copy slice.
    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, CodecError> {
        if n > self.remaining() {
            return Err(CodecError::Truncated(what));
        }
        let end = self.pos + n;
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    /// Takes everything that is left (a PUBLISH payload, a reason-code list).
    pub(super) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos.min(self.buf.len())..);
        self.pos = self.buf.len();
        out
    }

    /// One byte.
    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        let b = self
            .buf
            .get(self.pos)
            .copied()
            .ok_or(CodecError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    /// Two Byte Integer, big-endian.
    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, CodecError> {
        let hi = self.u8(what)?;
        let lo = self.u8(what)?;
        Ok(u16::from_be_bytes([hi, lo]))
    }

    /// Four Byte Integer, big-endian.
    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        let hi = self.u16(what)?;
        let lo = self.u16(what)?;
        Ok((u32::from(hi) << 16) | u32::from(lo))
    }

    /// Variable Byte Integer: at most four bytes, minimal encoding (5.0 1.5.5).
    pub(super) fn variable_int(&mut self, what: &'static str) -> Result<u32, CodecError> {
        let mut value: u32 = 0;
        for i in 0..4u32 {
            let byte = self.u8(what)?;
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                // A zero final byte after a continuation byte is a longer
                // form of a smaller number: not minimal.
                if i > 0 && byte == 0 {
                    return Err(CodecError::MalformedVariableInt);
                }
                return Ok(value);
            }
        }
        Err(CodecError::MalformedVariableInt)
    }

    /// Binary Data: two-byte length, then the bytes.
    pub(super) fn binary(&mut self, what: &'static str) -> Result<Bytes, CodecError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// UTF-8 Encoded String: well-formed (no surrogates, no overlong forms) and free of U+0000.
    pub(super) fn string(&mut self, what: &'static str) -> Result<String, CodecError> {
        let raw = self.binary(what)?;
        utf8_string(&raw)
    }
}

/// Validates MQTT string rules on raw bytes and copies them into a `String`.
///
/// `str::from_utf8` already rejects surrogate code points (U+D800..U+DFFF),
/// overlong encodings and values above U+10FFFF, which is exactly what
/// MQTT-1.5.4-1 forbids; MQTT-1.5.4-2 adds U+0000. Other control characters
/// and non-characters are "SHOULD NOT" for senders, so they are accepted.
pub(super) fn utf8_string(raw: &[u8]) -> Result<String, CodecError> {
    let s = std::str::from_utf8(raw).map_err(|_| CodecError::InvalidUtf8)?;
    if s.contains('\0') {
        return Err(CodecError::InvalidUtf8);
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn integers_and_truncation() {
        let mut r = reader(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.u16("b"), Ok(0x0203));
        assert_eq!(r.u32("c"), Err(CodecError::Truncated("c")));
        let mut r = reader(&[0, 0, 1, 0]);
        assert_eq!(r.u32("c"), Ok(256));
        assert!(r.is_empty());
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn variable_byte_integers() {
        // Boundary values from the table in 5.0 section 1.5.5.
        let cases: &[(&[u8], u32)] = &[
            (&[0x00], 0),
            (&[0x7F], 127),
            (&[0x80, 0x01], 128),
            (&[0xFF, 0x7F], 16_383),
            (&[0x80, 0x80, 0x01], 16_384),
            (&[0xFF, 0xFF, 0x7F], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
            (&[0xFF, 0xFF, 0xFF, 0x7F], MAX_VARIABLE_BYTE_INTEGER),
        ];
        for (bytes, value) in cases {
            assert_eq!(reader(bytes).variable_int("v"), Ok(*value), "{bytes:?}");
        }
        assert!(reader(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01])
            .variable_int("v")
            .is_err());
        assert!(reader(&[0x80, 0x00]).variable_int("v").is_err());
        assert_eq!(
            reader(&[0x80]).variable_int("v"),
            Err(CodecError::Truncated("v"))
        );
    }

    #[test]
    fn strings() {
        assert_eq!(reader(&[0, 2, b'h', b'i']).string("s"), Ok("hi".into()));
        assert_eq!(reader(&[0, 0]).string("s"), Ok(String::new()));
        assert_eq!(
            reader(&[0, 3, b'h', b'i']).string("s"),
            Err(CodecError::Truncated("s"))
        );
        // U+0000.
        assert_eq!(reader(&[0, 1, 0]).string("s"), Err(CodecError::InvalidUtf8));
        // Encoded surrogate U+D800 (ED A0 80) and an overlong '/' (C0 AF).
        assert_eq!(
            reader(&[0, 3, 0xED, 0xA0, 0x80]).string("s"),
            Err(CodecError::InvalidUtf8)
        );
        assert_eq!(
            reader(&[0, 2, 0xC0, 0xAF]).string("s"),
            Err(CodecError::InvalidUtf8)
        );
        // U+FEFF (BOM) is kept, not stripped (MQTT-1.5.4-3).
        assert_eq!(
            reader(&[0, 3, 0xEF, 0xBB, 0xBF]).string("s"),
            Ok("\u{FEFF}".into())
        );
    }

    #[test]
    fn take_and_rest() {
        let mut r = reader(&[1, 2, 3]);
        assert_eq!(r.take(4, "t"), Err(CodecError::Truncated("t")));
        assert_eq!(r.take(1, "t").map(|b| b.to_vec()), Ok(vec![1]));
        assert_eq!(r.rest().to_vec(), vec![2, 3]);
        assert_eq!(r.rest().to_vec(), Vec::<u8>::new());
    }
}
