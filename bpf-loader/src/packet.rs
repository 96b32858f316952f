//! Crafted packets for test runs: Ethernet + IPv4 + TCP/UDP headers.

use anyhow::{bail, Context, Result};
use std::net::Ipv4Addr;

fn endpoint(s: &str) -> Result<(Ipv4Addr, u16)> {
    match s.split_once(':') {
        Some((ip, port)) => Ok((
            ip.parse().context("address")?,
            port.parse().context("port")?,
        )),
        None => Ok((s.parse().context("address")?, 0)),
    }
}

/// Builds a packet from `proto:SRC[:SPORT]-DST[:DPORT]`, proto one of tcp, udp, icmp.
pub fn build(spec: &str) -> Result<Vec<u8>> {
    let (proto, rest) = spec.split_once(':').context("expected proto:SRC-DST")?;
    let (src, dst) = rest.split_once('-').context("expected SRC-DST")?;
    let ((saddr, sport), (daddr, dport)) = (endpoint(src)?, endpoint(dst)?);
    let (number, l4_len) = match proto {
        "tcp" => (6u8, 20usize),
        "udp" => (17, 8),
        "icmp" => (1, 8),
        _ => bail!("unknown protocol {proto}"),
    };
    let mut p = Vec::with_capacity(14 + 20 + l4_len);
    p.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = (20 + l4_len) as u16;
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, number, 0, 0]);
    p.extend_from_slice(&saddr.octets());
    p.extend_from_slice(&daddr.octets());
    let mut l4 = vec![0u8; l4_len];
    if number != 1 {
        l4[0..2].copy_from_slice(&sport.to_be_bytes());
        l4[2..4].copy_from_slice(&dport.to_be_bytes());
    }
    if number == 6 {
        l4[12] = 0x50;
    }
    p.extend_from_slice(&l4);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::build;

    #[test]
    fn tcp_packet_layout() {
        let p = build("tcp:10.0.0.1:1234-10.0.0.2:23").unwrap();
        assert_eq!(p.len(), 54);
        assert_eq!(&p[12..14], &[0x08, 0x00]);
        assert_eq!(p[23], 6);
        assert_eq!(&p[26..30], &[10, 0, 0, 1]);
        assert_eq!(&p[34..38], &[0x04, 0xd2, 0, 23]);
        assert!(build("sctp:1.2.3.4-5.6.7.8").is_err());
        assert!(build("udp:1.2.3.4").is_err());
    }
}
