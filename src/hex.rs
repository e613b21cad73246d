//! Lower-case hex, the one spelling of raw bytes in every report, log and script.

use std::fmt;

/// Why a hex string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HexError {
    /// The string has an odd number of digits, so its last byte is incomplete.
    OddLength(usize),
    /// A character that is not a hex digit, at this character offset.
    NotHex { at: usize, found: char },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::OddLength(len) => write!(
                f,
                "hex has an odd number of digits ({len}); write two digits per byte"
            ),
            HexError::NotHex { at, found } => {
                write!(f, "{found:?} at position {at} is not a hex digit")
            }
        }
    }
}

/// The value of one ASCII hex digit, either case.
pub(crate) fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `bytes` as lower-case hex, two digits per byte.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// The bytes `hex` spells, two digits (either case) per byte.
pub(crate) fn decode(hex: &str) -> Result<Vec<u8>, HexError> {
    let not_hex = |at: usize| HexError::NotHex {
        at,
        found: hex[at..].chars().next().unwrap_or('\u{fffd}'),
    };
    // A non-ASCII character is never a digit; reporting it before the length check names the
    // real mistake ("é" is two bytes, so its string can look even).
    if let Some(at) = hex.bytes().position(|b| digit(b).is_none()) {
        return Err(not_hex(at));
    }
    if !hex.len().is_multiple_of(2) {
        return Err(HexError::OddLength(hex.len()));
    }
    Ok(hex
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => hi << 4 | lo,
            // Every byte was checked to be a digit above.
            _ => 0,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let hex = encode(&all);
        assert!(hex.starts_with("000102") && hex.ends_with("fdfeff"));
        assert_eq!(decode(&hex), Ok(all));
        assert_eq!(decode("E282ac"), Ok(vec![0xe2, 0x82, 0xac]));
        assert_eq!(decode(""), Ok(Vec::new()));
    }

    #[test]
    fn errors_name_the_position_or_the_length() {
        assert_eq!(decode("abc"), Err(HexError::OddLength(3)));
        assert_eq!(decode("0g"), Err(HexError::NotHex { at: 1, found: 'g' }));
        // A two-byte character is named whole, not as half a digit pair.
        let err = decode("aé").unwrap_err();
        assert_eq!(err, HexError::NotHex { at: 1, found: 'é' });
        assert_eq!(err.to_string(), "'é' at position 1 is not a hex digit");
        assert!(HexError::OddLength(3).to_string().contains("odd number"));
    }
}
