//! Packet captures: the packets of a pcap or pcapng file (what `bpfld run
//! --pcap` feeds a program), and a pcap file written from packets (what
//! `--data-out` writes). The input is outside bytes: every length is
//! checked before use, and an error names the record and its offset.

use crate::error::{Error, Result};

/// One captured packet: its bytes as captured (possibly cut to the
/// capture's snap length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The packet's bytes (as captured).
    pub data: Vec<u8>,
    /// Capture time in nanoseconds since the epoch (0 when unknown).
    pub time_ns: u64,
}

/// A capture's packets and its link type (1 = Ethernet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The link type (`LINKTYPE_ETHERNET` is 1).
    pub linktype: u32,
    /// Its packets, in order.
    pub packets: Vec<Packet>,
}

/// The largest packet accepted: bigger than any link's frame, small enough
/// that a damaged length cannot make the reader allocate gigabytes.
pub const MAX_PACKET: usize = 256 * 1024;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;

/// Reads a pcap or pcapng file.
pub fn parse(data: &[u8]) -> Result<Capture> {
    let Some(magic) = data.get(..4) else {
        return Err(Error::new(format!(
            "not a pcap or pcapng file: {} bytes, shorter than a header",
            data.len()
        )));
    };
    let le = u32::from_le_bytes(magic.try_into().unwrap_or_default());
    let be = u32::from_be_bytes(magic.try_into().unwrap_or_default());
    if le == PCAPNG_SHB {
        return parse_pcapng(data);
    }
    for (m, little) in [(le, true), (be, false)] {
        if m == PCAP_MAGIC_US || m == PCAP_MAGIC_NS {
            return parse_pcap(data, little, m == PCAP_MAGIC_NS);
        }
    }
    Err(Error::new(format!(
        "not a pcap or pcapng file: magic {le:#010x} is neither"
    )))
}

fn u16_at(data: &[u8], off: usize, little: bool) -> Option<u16> {
    let b: [u8; 2] = data.get(off..off.checked_add(2)?)?.try_into().ok()?;
    Some(if little {
        u16::from_le_bytes(b)
    } else {
        u16::from_be_bytes(b)
    })
}

fn u32_at(data: &[u8], off: usize, little: bool) -> Option<u32> {
    let b: [u8; 4] = data.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

fn too_big(what: &str, len: usize) -> Error {
    Error::new(format!(
        "{what}: packet of {len} bytes, more than the {MAX_PACKET} accepted"
    ))
}

fn parse_pcap(data: &[u8], little: bool, nanos: bool) -> Result<Capture> {
    if data.len() < 24 {
        return Err(Error::new(format!(
            "pcap header: {} bytes, the header is 24",
            data.len()
        )));
    }
    let linktype = u32_at(data, 20, little).unwrap_or(0) & 0x0fff_ffff;
    let mut packets = Vec::new();
    let mut off = 24usize;
    while off < data.len() {
        let what = format!("pcap record {} at offset {off}", packets.len());
        let (Some(sec), Some(frac), Some(incl)) = (
            u32_at(data, off, little),
            u32_at(data, off + 4, little),
            u32_at(data, off + 8, little),
        ) else {
            return Err(Error::new(format!(
                "{what}: truncated record header ({} bytes left, 16 needed)",
                data.len() - off
            )));
        };
        if data.len() - off < 16 {
            return Err(Error::new(format!(
                "{what}: truncated record header ({} bytes left, 16 needed)",
                data.len() - off
            )));
        }
        let incl = incl as usize;
        if incl > MAX_PACKET {
            return Err(too_big(&what, incl));
        }
        let start = off + 16;
        let Some(bytes) = data.get(start..start + incl) else {
            return Err(Error::new(format!(
                "{what}: the record says {incl} bytes, the file has {} left",
                data.len() - start
            )));
        };
        let frac_ns = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        packets.push(Packet {
            data: bytes.to_vec(),
            time_ns: u64::from(sec) * 1_000_000_000 + frac_ns,
        });
        off = start + incl;
    }
    Ok(Capture { linktype, packets })
}

/// pcapng: section header, interface description, enhanced and simple
/// packet blocks (others are skipped). The first interface's link type is
/// the capture's.
fn parse_pcapng(data: &[u8]) -> Result<Capture> {
    let mut packets = Vec::new();
    let mut linktype = None;
    let mut little = true;
    let mut off = 0usize;
    let mut index = 0usize;
    while off < data.len() {
        let what = format!("pcapng block {index} at offset {off}");
        let Some(btype) = u32_at(data, off, true) else {
            return Err(Error::new(format!("{what}: truncated block header")));
        };
        if btype == PCAPNG_SHB {
            // The byte order of the section follows from its magic.
            little = match u32_at(data, off + 8, true) {
                Some(PCAPNG_BYTE_ORDER) => true,
                Some(m) if m.swap_bytes() == PCAPNG_BYTE_ORDER => false,
                _ => {
                    return Err(Error::new(format!(
                        "{what}: section header without a byte-order magic"
                    )))
                }
            };
        }
        let Some(len) = u32_at(data, off + 4, little) else {
            return Err(Error::new(format!("{what}: truncated block header")));
        };
        let len = len as usize;
        if len < 12 || len % 4 != 0 {
            return Err(Error::new(format!(
                "{what}: block length {len} (at least 12, a multiple of 4)"
            )));
        }
        let Some(block) = data.get(off..off.saturating_add(len)) else {
            return Err(Error::new(format!(
                "{what}: the block says {len} bytes, the file has {} left",
                data.len() - off
            )));
        };
        let btype = u32_at(block, 0, little).unwrap_or(0);
        let body = &block[8..len - 4];
        match btype {
            // Interface description: link type (u16), reserved, snaplen.
            1 if linktype.is_none() => {
                linktype = u16_at(body, 0, little).map(u32::from);
            }
            // Enhanced packet: interface, timestamp (2 x u32), captured
            // and original lengths, data.
            6 => {
                let (Some(hi), Some(lo), Some(cap)) = (
                    u32_at(body, 4, little),
                    u32_at(body, 8, little),
                    u32_at(body, 12, little),
                ) else {
                    return Err(Error::new(format!(
                        "{what}: enhanced packet block shorter than its fields"
                    )));
                };
                let cap = cap as usize;
                if cap > MAX_PACKET {
                    return Err(too_big(&what, cap));
                }
                let Some(bytes) = body.get(20..20 + cap) else {
                    return Err(Error::new(format!(
                        "{what}: the packet says {cap} bytes, the block holds {}",
                        body.len().saturating_sub(20)
                    )));
                };
                packets.push(Packet {
                    data: bytes.to_vec(),
                    // Microseconds, the default resolution (if_tsresol
                    // options are not read).
                    time_ns: ((u64::from(hi) << 32) | u64::from(lo)).saturating_mul(1000),
                });
            }
            // Simple packet: original length, data (to the block's end).
            3 => {
                let Some(orig) = u32_at(body, 0, little) else {
                    return Err(Error::new(format!(
                        "{what}: simple packet block shorter than its fields"
                    )));
                };
                let cap = (orig as usize).min(body.len() - 4);
                if cap > MAX_PACKET {
                    return Err(too_big(&what, cap));
                }
                packets.push(Packet {
                    data: body[4..4 + cap].to_vec(),
                    time_ns: 0,
                });
            }
            _ => {}
        }
        off += len;
        index += 1;
    }
    Ok(Capture {
        linktype: linktype.unwrap_or(1),
        packets,
    })
}

/// A pcap file (microsecond timestamps, little-endian) of `packets`.
pub fn write_pcap(linktype: u32, packets: &[Packet]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + packets.iter().map(|p| 16 + p.data.len()).sum::<usize>());
    out.extend_from_slice(&PCAP_MAGIC_US.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    let snap = packets
        .iter()
        .map(|p| p.data.len())
        .max()
        .unwrap_or(0)
        .max(65535) as u32;
    out.extend_from_slice(&snap.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
    for p in packets {
        let len = p.data.len() as u32;
        out.extend_from_slice(&((p.time_ns / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((p.time_ns % 1_000_000_000 / 1000) as u32).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&p.data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(data: &[u8], time_ns: u64) -> Packet {
        Packet {
            data: data.to_vec(),
            time_ns,
        }
    }

    #[test]
    fn pcap_round_trip() {
        let ps = vec![
            pkt(&[1, 2, 3], 1_500_000_000),
            pkt(&[], 0),
            pkt(&[9; 70], 7_000),
        ];
        let bytes = write_pcap(1, &ps);
        assert_eq!(
            parse(&bytes).unwrap(),
            Capture {
                linktype: 1,
                packets: ps
            }
        );
    }

    #[test]
    fn pcapng_blocks() {
        let mut f = Vec::new();
        // Section header: type, len 28, byte order, version 1.0, length -1.
        f.extend_from_slice(&PCAPNG_SHB.to_le_bytes());
        f.extend_from_slice(&28u32.to_le_bytes());
        f.extend_from_slice(&PCAPNG_BYTE_ORDER.to_le_bytes());
        f.extend_from_slice(&[1, 0, 0, 0]);
        f.extend_from_slice(&u64::MAX.to_le_bytes());
        f.extend_from_slice(&28u32.to_le_bytes());
        // Interface: Ethernet.
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&20u32.to_le_bytes());
        f.extend_from_slice(&[1, 0, 0, 0]);
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&20u32.to_le_bytes());
        // Enhanced packet of 5 bytes (padded to 8).
        f.extend_from_slice(&6u32.to_le_bytes());
        f.extend_from_slice(&40u32.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&2u32.to_le_bytes());
        f.extend_from_slice(&5u32.to_le_bytes());
        f.extend_from_slice(&5u32.to_le_bytes());
        f.extend_from_slice(&[1, 2, 3, 4, 5, 0, 0, 0]);
        f.extend_from_slice(&40u32.to_le_bytes());
        let c = parse(&f).unwrap();
        assert_eq!(c.linktype, 1);
        assert_eq!(c.packets, vec![pkt(&[1, 2, 3, 4, 5], 2000)]);

        // A block length beyond the file names the block.
        let mut bad = f.clone();
        bad[52..56].copy_from_slice(&400u32.to_le_bytes());
        assert_eq!(
            parse(&bad).unwrap_err().to_string(),
            "pcapng block 2 at offset 48: the block says 400 bytes, the file has 40 left"
        );
    }

    #[test]
    fn damaged_pcap_names_the_record() {
        let mut bytes = write_pcap(1, &[pkt(&[1, 2, 3], 0), pkt(&[4; 10], 0)]);
        bytes.truncate(bytes.len() - 1);
        assert_eq!(
            parse(&bytes).unwrap_err().to_string(),
            "pcap record 1 at offset 43: the record says 10 bytes, the file has 9 left"
        );
        assert!(parse(&bytes[..30])
            .unwrap_err()
            .to_string()
            .starts_with("pcap record 0 at offset 24: truncated record header (6 bytes left"));
        assert!(parse(b"xy").is_err());
        assert!(parse(b"\0\0\0\0").is_err());
    }
}
