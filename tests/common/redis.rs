//! Debian's redis-server, run by a test on a free loopback port, nothing
//! saved, stopped when dropped.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::netns::in_ci;

pub struct Redis(pub Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Redis on `port` and its URL; `None` (the test skips) where
/// redis-server is not installed, outside CI.
pub fn start_redis_on(port: u16) -> Option<(Redis, String)> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) if !in_ci() => {
            eprintln!("SKIPPED: redis-server cannot run here ({e}); CI installs it");
            return None;
        }
        Err(e) => panic!("redis-server: {e}"),
    };
    let redis = Redis(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((redis, format!("redis://127.0.0.1:{port}/0")))
}
