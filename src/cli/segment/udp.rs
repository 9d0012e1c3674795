//! UDP input for `segment`: `udp://host:port` binds that address, or, when
//! the host is a multicast group, binds the port on every interface and
//! joins the group. Each datagram is one read (a datagram is never cut:
//! reads go through a 64 KiB buffer), RTP headers in front of transport
//! stream packets are dropped, and with an idle timeout the input ends
//! once no datagram has come for that long after the first one.

use std::io::{BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use anyhow::Context;

/// The largest datagram: all of a UDP payload.
const DATAGRAM: usize = 64 << 10;

/// What the kernel is asked to hold while the segmenter publishes: a
/// quarter of a second of a 100 Mbit/s feed.
const RECEIVE_BUFFER: usize = 4 << 20;

pub(super) fn open(address: &str, idle_us: Option<u64>) -> anyhow::Result<BufReader<Datagrams>> {
    let usage = || backset::Error::Usage(format!("UDP input {address:?}: expected host:port"));
    let addr: SocketAddr = address
        .to_socket_addrs()
        .map_err(|_| usage())?
        .next()
        .ok_or_else(usage)?;
    let socket = match addr.ip() {
        IpAddr::V4(group) if group.is_multicast() => {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, addr.port()))?;
            s.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                .with_context(|| format!("joining multicast group {group}"))?;
            s
        }
        IpAddr::V6(group) if group.is_multicast() => {
            let s = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, addr.port()))?;
            s.join_multicast_v6(&group, 0)
                .with_context(|| format!("joining multicast group {group}"))?;
            s
        }
        _ => UdpSocket::bind(addr).with_context(|| format!("binding UDP address {address}"))?,
    };
    // Best effort: where the kernel caps it lower, the default stays.
    let _ =
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBuf, &RECEIVE_BUFFER);
    let idle = idle_us.filter(|&us| us > 0).map(Duration::from_micros);
    socket.set_read_timeout(idle)?;
    Ok(BufReader::with_capacity(
        DATAGRAM,
        Datagrams {
            socket,
            idle,
            started: false,
        },
    ))
}

pub(super) struct Datagrams {
    socket: UdpSocket,
    idle: Option<Duration>,
    /// A datagram has come: from now on, silence ends the input.
    started: bool,
}

impl Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.socket.recv(buf) {
                Ok(n) => {
                    self.started = true;
                    let skip = rtp_header_len(&buf[..n]);
                    if skip == 0 {
                        return Ok(n);
                    }
                    buf.copy_within(skip..n, 0);
                    return Ok(n - skip);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.started && self.idle.is_some() {
                        return Ok(0);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The length of an RTP header in front of transport stream packets, or 0
/// when the datagram starts with a packet.
fn rtp_header_len(d: &[u8]) -> usize {
    match d.first() {
        Some(&b) if b >> 6 == 2 => {
            let len = 12 + 4 * usize::from(b & 0x0f);
            if d.get(len) == Some(&0x47) {
                len
            } else {
                0
            }
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rtp_header_before_packets_is_found_and_plain_packets_kept() {
        let mut rtp = vec![0x80, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        rtp.push(0x47);
        assert_eq!(rtp_header_len(&rtp), 12);
        assert_eq!(rtp_header_len(&[0x47, 0x40, 0, 0x10]), 0);
        assert_eq!(rtp_header_len(&[0x80, 0, 0]), 0);
    }
}
