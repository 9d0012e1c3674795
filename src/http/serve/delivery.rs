//! How fast a response reached the viewer, from the kernel's own count of
//! what the viewer acknowledged, not from how fast the server handed bytes
//! to its socket (the send buffer and the bytes in flight would make a slow
//! link look fast).
//!
//! The method: when the body's first byte is handed over (time t0), the
//! connection's `tcpi_bytes_acked` (Linux `TCP_INFO`) is read; once the
//! whole body is handed over, it is read again, ever less often, until it
//! has grown by the body's length (time t1). The delivery rate is the body's
//! bytes over t1 − t0. A connection that stops acknowledging for
//! [`STALLED`] or takes longer than [`LONGEST`] gives no measurement.
//! [`Meter`] holds those decisions on time passed in; [`tcp_info`] asks the
//! kernel.

use std::os::fd::RawFd;
use std::time::Duration;

/// Give up on a connection that acknowledges nothing for this long.
pub const STALLED: Duration = Duration::from_secs(10);
/// Give up on a measurement that has taken this long.
pub const LONGEST: Duration = Duration::from_secs(120);
/// The first polls are this close, so that a fast delivery is timed well.
const FIRST_POLL: Duration = Duration::from_millis(1);

/// One transfer being timed.
#[derive(Debug, Clone)]
pub struct Meter {
    start: Duration,
    target: u64,
    bytes: u64,
    progress: (Duration, u64),
}

/// What the meter says after a reading of the kernel's counter.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// All acknowledged: the rate, bit/s.
    Delivered { bps: f64, secs: f64 },
    /// Read the counter again after this long.
    Again(Duration),
    /// No measurement from this connection.
    GaveUp,
}

impl Meter {
    /// A body of `bytes` whose first byte was handed over at `start`, when
    /// the connection had `acked` bytes acknowledged.
    pub fn new(start: Duration, acked: u64, bytes: u64) -> Meter {
        Meter {
            start,
            target: acked.saturating_add(bytes),
            bytes,
            progress: (start, acked),
        }
    }

    /// The counter read `acked` at `now`.
    pub fn read(&mut self, now: Duration, acked: u64) -> Reading {
        let elapsed = now.saturating_sub(self.start);
        if acked >= self.target {
            let secs = elapsed.as_secs_f64().max(1e-6);
            return Reading::Delivered {
                bps: self.bytes as f64 * 8.0 / secs,
                secs,
            };
        }
        if acked > self.progress.1 {
            self.progress = (now, acked);
        }
        if now.saturating_sub(self.progress.0) > STALLED || elapsed > LONGEST {
            return Reading::GaveUp;
        }
        // Poll about 50 times over the time taken so far: the error on the
        // end time stays near 2% whether the transfer takes 5 ms or 5 s.
        Reading::Again((elapsed / 50).clamp(FIRST_POLL, Duration::from_millis(100)))
    }
}

/// What the kernel says of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    pub bytes_acked: u64,
    /// The kernel's own estimate of the latest delivery rate, bit/s.
    pub delivery_rate_bps: u64,
    pub rtt_us: u32,
}

/// `TCP_INFO` of the socket `fd`; `None` where the kernel does not give
/// `tcpi_bytes_acked` (before Linux 4.1) or `fd` is not a TCP socket.
pub fn tcp_info(fd: RawFd) -> Option<TcpInfo> {
    // SAFETY: tcp_info is plain integers, so all-zero is a valid value, and
    // getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `info`, which outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_delivery_rate) + 8;
    (rc == 0 && len as usize >= needed).then_some(TcpInfo {
        bytes_acked: info.tcpi_bytes_acked,
        delivery_rate_bps: info.tcpi_delivery_rate.saturating_mul(8),
        rtt_us: info.tcpi_rtt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_rate_is_the_bytes_over_the_time_to_the_last_acknowledgement() {
        let mut m = Meter::new(100 * MS, 5_000, 1_000_000);
        assert!(matches!(m.read(600 * MS, 500_000), Reading::Again(_)));
        let Reading::Delivered { bps, secs } = m.read(2_100 * MS, 1_005_000) else {
            panic!("delivered")
        };
        assert!((secs - 2.0).abs() < 1e-9);
        assert!((bps - 4e6).abs() < 1.0);
    }

    #[test]
    fn polls_grow_with_the_time_taken_and_stay_bounded() {
        let mut m = Meter::new(Duration::ZERO, 0, 1 << 30);
        assert_eq!(m.read(MS, 1), Reading::Again(FIRST_POLL));
        assert_eq!(m.read(1000 * MS, 2), Reading::Again(20 * MS));
        assert_eq!(m.read(9000 * MS, 3), Reading::Again(100 * MS));
    }

    #[test]
    fn a_connection_that_stops_acknowledging_gives_no_measurement() {
        let mut m = Meter::new(Duration::ZERO, 0, 1000);
        assert!(matches!(m.read(5000 * MS, 10), Reading::Again(_)));
        assert_eq!(m.read(15_001 * MS, 10), Reading::GaveUp);
        let mut slow = Meter::new(Duration::ZERO, 0, u64::MAX);
        for s in 1..=121u64 {
            let r = slow.read(Duration::from_secs(s), s);
            assert_eq!(r == Reading::GaveUp, s == 121, "at {s} s");
        }
    }

    #[test]
    fn the_kernel_counts_what_a_loopback_peer_acknowledged() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let before = tcp_info(server.as_raw_fd()).expect("TCP_INFO on Linux");
        server.write_all(&[7u8; 100_000]).unwrap();
        client.read_exact(&mut [0u8; 100_000]).unwrap();
        let mut after = tcp_info(server.as_raw_fd()).unwrap();
        for _ in 0..100 {
            if after.bytes_acked >= before.bytes_acked + 100_000 {
                break;
            }
            std::thread::sleep(MS);
            after = tcp_info(server.as_raw_fd()).unwrap();
        }
        assert_eq!(after.bytes_acked - before.bytes_acked, 100_000);
        assert_eq!(tcp_info(-1), None);
    }
}
