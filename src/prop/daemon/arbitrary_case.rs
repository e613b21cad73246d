//! `arbitrary::Arbitrary` for [`Case`] (feature `fuzzing`): fuzz inputs decode into the same
//! cases `prop` generates, with the same biases (the character tables of [`strategy`](super::strategy),
//! delays of 0 to 20 ms that are mostly 0, clients that mostly read), so a fuzz finding is a
//! `prop` case and replays with `streamcheck prop --replay`. Where a choice costs time in every
//! run (delays, clients that leave or pause), it is made rarer and shorter than `prop` makes
//! it: libFuzzer's strength is the number of runs.
//!
//! The layout is fixed, so seeds can be written by hand and a mutated byte changes one decision.
//! Bytes past the end of the input read as 0, and 0 is always the plainest choice:
//!
//! | part | bytes |
//! |------|-------|
//! | framing | 1: bit 0 BOM, bit 1 no space after `data:`, bits 2–3 line end (0 LF, 1 CRLF, 2 CR, 3 LF), bit 4 a comment line before each content event, bit 5 each content event on two `data:` lines |
//! | ending | tag % 5: 0 `[DONE]` (+1: finish_reason, % 5 = 4 none), 1 finish_reason only (+1), 2 truncate (a stall, with no more bytes, when tag / 5 % 8 is 7), 3 reset (each +1: bit 0 partial, +2 LE: where), 4 error status (+1: % 8 a common status, else 400 + byte % 200) |
//! | client | tag % 16: 0–12 reads all, 13 leaves after bytes (+2 LE: 1 + % 160), 14 after events (+1: 1 + % 4, at most the chunks with content), 15 pauses (+2 LE after bytes % 401, +1: 1 + % 20 ms) |
//! | ending cuts | up to 2, each after a byte with bit 0 set; a byte with it clear ends the list |
//! | chunks | up to 6, the same way; each: atoms (up to 4), then cuts (up to 2), the same way |
//! | atom | text kind (% 8) and entry bytes, escape (% 6: 0–2 raw, 3 short, 4 `\u` lower, 5 upper), split (bit 0: present, then selector and delay) |
//! | cut | where (% 4: 0–1 next to a line end, 2 inside `data:`, 3 anywhere; +1, or +2 LE for anywhere), delay |
//! | delay | 1: below 192 none, else 1, 1, 2, 2, 3, 4, 5, 8, 12 or 20 ms by (byte − 192) % 10 |

use arbitrary::{Arbitrary, Result, Unstructured};

use super::case::{Atom, Case, Chunk, Client, Cut, CutAt, Ending, Eol, Escape, Framing, Split};
use super::strategy::{
    COMBINING, CONTROLS, FOUR_BYTE, JSON_SPECIAL, REASONS, SEPARATORS, SEQUENCES, SSE_LOOKALIKE,
    STATUSES, THREE_BYTE, TWO_BYTE,
};

/// Content chunks a case holds at most (as `prop` generates).
pub const MAX_CHUNKS: usize = 6;
/// Atoms per chunk.
const MAX_ATOMS: usize = 4;
/// Cuts per chunk, and in the ending.
const MAX_CUTS: usize = 2;
/// Longest free text of one atom, in bytes.
const MAX_FREE_TEXT: usize = 64;

fn byte(u: &mut Unstructured<'_>) -> Result<u8> {
    u8::arbitrary(u)
}

fn le16(u: &mut Unstructured<'_>) -> Result<u16> {
    Ok(u16::from_le_bytes([byte(u)?, byte(u)?]))
}

/// Entry `b` (modulo the length) of `list`.
fn entry<T: Copy>(list: &[T], b: u8) -> T {
    list[usize::from(b) % list.len()]
}

/// Delays, shortest most often: each costs its length in every run of the case, and one
/// millisecond already puts the writes on either side into separate reads of the daemon.
const DELAYS_MS: &[u8] = &[1, 1, 2, 2, 3, 4, 5, 8, 12, 20];

/// A delay before a write: none three times in four, else 1 to 20 ms.
fn delay_ms(u: &mut Unstructured<'_>) -> Result<u8> {
    let b = byte(u)?;
    Ok(if b < 192 {
        0
    } else {
        entry(DELAYS_MS, b - 192)
    })
}

/// Up to `max` items, each announced by a byte with bit 0 set.
fn list<'a, T>(
    u: &mut Unstructured<'a>,
    max: usize,
    item: impl Fn(&mut Unstructured<'a>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while out.len() < max && byte(u)? & 1 == 1 {
        out.push(item(u)?);
    }
    Ok(out)
}

impl<'a> Arbitrary<'a> for Framing {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let b = byte(u)?;
        Ok(Framing {
            bom: b & 1 == 1,
            space: b & 2 == 0,
            eol: match (b >> 2) & 3 {
                1 => Eol::Crlf,
                2 => Eol::Cr,
                _ => Eol::Lf,
            },
            comments: b & 16 != 0,
            multiline: b & 32 != 0,
        })
    }
}

fn reason(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(entry(REASONS, byte(u)?).to_owned())
}

/// Where a partial last event is cut, if it is.
fn partial(u: &mut Unstructured<'_>) -> Result<Option<u16>> {
    Ok(if byte(u)? & 1 == 1 {
        Some(le16(u)?)
    } else {
        None
    })
}

impl<'a> Arbitrary<'a> for Ending {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let tag = byte(u)?;
        Ok(match tag % 5 {
            0 => {
                let b = byte(u)?;
                let finish = (b % 5 != 4).then(|| entry(REASONS, b % 5).to_owned());
                Ending::Done { finish }
            }
            1 => Ending::Finish { reason: reason(u)? },
            // One truncate tag in eight is a stall instead.
            2 if tag / 5 % 8 == 7 => Ending::Stall,
            2 => Ending::Truncate {
                partial: partial(u)?,
            },
            3 => Ending::Reset {
                partial: partial(u)?,
            },
            _ => {
                let b = byte(u)?;
                let status = if b % 8 < 6 {
                    entry(STATUSES, b / 8)
                } else {
                    400 + u16::from(b) % 200
                };
                Ending::Status { status }
            }
        })
    }
}

impl<'a> Arbitrary<'a> for Client {
    /// Clients that leave or pause cost time in every run (the cancel tail's events are
    /// [`TAIL_GAP`](super::TAIL_GAP) apart, a pause lasts its length), so they are one in six
    /// and leave early in the stream: after 1 to 160 bytes, in the response head or the first
    /// events (a client that leaves before the first byte makes the run wait out the cancel
    /// limit for an upstream request that may never come), or within the generated events
    /// ([`Case::arbitrary`] caps `events` at the number of chunks with content).
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match byte(u)? % 16 {
            13 => Client::AbortAfterBytes {
                bytes: 1 + le16(u)? % 160,
            },
            14 => Client::AbortAfterEvents {
                events: 1 + byte(u)? % 4,
            },
            15 => Client::Pause {
                after_bytes: le16(u)? % 401,
                ms: 1 + byte(u)? % 20,
            },
            _ => Client::Read,
        })
    }
}

impl<'a> Arbitrary<'a> for Cut {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let at = match byte(u)? % 4 {
            0 | 1 => CutAt::LineEnd(byte(u)?),
            2 => CutAt::Field(byte(u)?),
            _ => CutAt::Any(le16(u)?),
        };
        Ok(Cut {
            at,
            delay_ms: delay_ms(u)?,
        })
    }
}

/// Content text: short ASCII, each UTF-8 width, combining marks and emoji sequences, line
/// separators and controls, JSON and SSE look-alikes, or free text from the input.
fn text(u: &mut Unstructured<'_>) -> Result<String> {
    let kind = byte(u)? % 8;
    let b = byte(u)?;
    let pick = |lists: &[&[&str]]| {
        let all: Vec<&str> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        entry(&all, b).to_owned()
    };
    Ok(match kind {
        0 | 1 => {
            let len = 1 + usize::from(b % 3);
            let mut s = String::with_capacity(len);
            for _ in 0..len {
                s.push(char::from(b'a' + byte(u)? % 26));
            }
            s
        }
        2 => entry(TWO_BYTE, b).to_owned(),
        3 => entry(THREE_BYTE, b).to_owned(),
        4 => entry(FOUR_BYTE, b).to_owned(),
        5 => pick(&[COMBINING, SEQUENCES]),
        6 => pick(&[SEPARATORS, CONTROLS, JSON_SPECIAL, SSE_LOOKALIKE]),
        _ => {
            // `b` bytes (at most MAX_FREE_TEXT) of the input, up to its first invalid UTF-8.
            let raw = u.bytes(usize::from(b).min(MAX_FREE_TEXT).min(u.len()))?;
            let valid = match std::str::from_utf8(raw) {
                Ok(s) => s,
                Err(e) => std::str::from_utf8(&raw[..e.valid_up_to()]).unwrap_or_default(),
            };
            valid.to_owned()
        }
    })
}

impl<'a> Arbitrary<'a> for Atom {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let text = text(u)?;
        let escape = match byte(u)? % 6 {
            3 => Escape::Short,
            4 => Escape::Unicode,
            5 => Escape::UnicodeUpper,
            _ => Escape::Raw,
        };
        let split = if byte(u)? & 1 == 1 {
            Some(Split {
                sel: byte(u)?,
                delay_ms: delay_ms(u)?,
            })
        } else {
            None
        };
        Ok(Atom {
            text,
            escape,
            split,
        })
    }
}

impl<'a> Arbitrary<'a> for Chunk {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Chunk {
            atoms: list(u, MAX_ATOMS, Atom::arbitrary)?,
            cuts: list(u, MAX_CUTS, Cut::arbitrary)?,
        })
    }
}

impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let framing = Framing::arbitrary(u)?;
        let ending = Ending::arbitrary(u)?;
        let client = Client::arbitrary(u)?;
        let ending_cuts = list(u, MAX_CUTS, Cut::arbitrary)?;
        let chunks = list(u, MAX_CHUNKS, Chunk::arbitrary)?;
        let with_content = chunks
            .iter()
            .filter(|c| c.atoms.iter().any(|a| !a.text.is_empty()))
            .count();
        let client = match client {
            Client::AbortAfterEvents { events } => Client::AbortAfterEvents {
                events: events
                    .min(u8::try_from(with_content).unwrap_or(u8::MAX))
                    .max(1),
            },
            other => other,
        };
        Ok(Case {
            chunks,
            framing,
            ending,
            ending_cuts,
            client,
        }
        .leaving_on_stall())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Case {
        Case::arbitrary(&mut Unstructured::new(bytes)).expect("every input decodes")
    }

    #[test]
    fn the_empty_input_is_the_plainest_case() {
        let case = decode(&[]);
        assert_eq!(case.framing, Framing::default());
        assert_eq!(
            case.ending,
            Ending::Done {
                finish: Some("stop".into())
            }
        );
        assert_eq!(case.client, Client::Read);
        assert!(case.chunks.is_empty() && case.ending_cuts.is_empty());
    }

    #[test]
    fn the_layout_is_as_documented() {
        // CR, no space; reset with a partial event cut by 0x0102; abort after 7 bytes; no ending
        // cut; one chunk: one atom of free text "data:" escaped short, split 3 with 5 ms; one
        // cut anywhere at 9 after 0 ms.
        let bytes = [
            0b1010, 3, 1, 2, 1, 13, 6, 0, 0, 1, 1, 7, 5, b'd', b'a', b't', b'a', b':', 3, 1, 3,
            198, 0, 1, 3, 9, 0, 0, 0,
        ];
        let case = decode(&bytes);
        assert_eq!(
            case.framing,
            Framing {
                bom: false,
                space: false,
                eol: Eol::Cr,
                comments: false,
                multiline: false,
            }
        );
        assert_eq!(
            case.ending,
            Ending::Reset {
                partial: Some(0x0102)
            }
        );
        assert_eq!(case.client, Client::AbortAfterBytes { bytes: 7 });
        assert_eq!(
            case.chunks,
            vec![Chunk {
                atoms: vec![Atom {
                    text: "data:".into(),
                    escape: Escape::Short,
                    split: Some(Split {
                        sel: 3,
                        delay_ms: 5
                    }),
                }],
                cuts: vec![Cut {
                    at: CutAt::Any(9),
                    delay_ms: 0
                }],
            }]
        );
    }

    #[test]
    fn decoded_cases_stay_within_the_generated_bounds() {
        // Every byte 0xFF: the most of everything the layout allows.
        let case = decode(&[0xFF; 4096]);
        assert_eq!(case.chunks.len(), MAX_CHUNKS);
        assert!(case.chunks.iter().all(|c| c.atoms.len() == MAX_ATOMS));
        let delays = case.chunks.iter().flat_map(|c| {
            let splits = c.atoms.iter().filter_map(|a| a.split.map(|s| s.delay_ms));
            splits.chain(c.cuts.iter().map(|c| c.delay_ms))
        });
        assert!(delays.into_iter().all(|d| d <= 20));
        assert!(matches!(case.client, Client::Pause { ms, .. } if ms <= 20));
        assert_eq!(Case::from_json(&case.to_json()), Ok(case));
    }
}
