//! A real S3-compatible server for the store tests: moto's server mode
//! (PyPI `moto[server]`, which `.ci/run` installs) on a free loopback port,
//! in its own process group so that dropping it (also when the test panics)
//! stops the whole server, whatever wrapper (a pyenv shim) started it.
//!
//! moto keeps everything in memory and checks no signatures: buckets are
//! created with plain unsigned requests, and objects read anonymously
//! whatever their ACL (a real store would refuse a private one; the
//! `x-amz-acl` header is sent all the same so the calls are right for one).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::netns::in_ci;
use super::nginx::free_port;

pub struct S3Server {
    child: Child,
    pub port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // The negative pid names the process group the server leads.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `moto_server` on PATH, if any.
fn moto_server() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
}

/// Skips (outside CI) or fails (under CI, which installs moto) saying why.
fn skip(why: String) -> Option<S3Server> {
    assert!(!in_ci(), "{why}");
    let _ = writeln!(std::io::stderr(), "SKIPPED {why}");
    None
}

impl S3Server {
    /// A fresh, empty server that answers; `None` after saying why where
    /// moto is not installed, outside CI.
    pub fn start() -> Option<S3Server> {
        let install = "python3 -m pip install 'moto[server]'";
        let Some(bin) = moto_server() else {
            return skip(format!("moto_server is not installed ({install})"));
        };
        let port = free_port();
        let spawned = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => return skip(format!("{} cannot run: {e} ({install})", bin.display())),
        };
        let mut server = S3Server { child, port };
        // Python takes a few seconds to import moto on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.request("GET", "/", &[]).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                // A pyenv shim exits 127 where moto is not installed for
                // the selected Python.
                return skip(format!(
                    "{} exited ({status}) before answering ({install})",
                    bin.display()
                ));
            }
            assert!(
                Instant::now() < deadline,
                "moto_server never answered on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// `http://127.0.0.1:PORT`, the endpoint clients are given.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket`, readable by anyone when `public_read`.
    pub fn create_bucket(&self, bucket: &str, public_read: bool) {
        let acl = if public_read {
            "public-read"
        } else {
            "private"
        };
        let status = self
            .request("PUT", &format!("/{bucket}"), &[("x-amz-acl", acl)])
            .expect("moto answers a bucket creation");
        assert_eq!(status, 200, "creating bucket {bucket}");
    }

    /// What a `backset` process needs in its environment to use this
    /// server's buckets (`s3://BUCKET/prefix`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// The anonymous (path-style) URL of `key` in `bucket`.
    pub fn url(&self, bucket: &str, key: &str) -> String {
        format!("{}/{bucket}/{key}", self.endpoint())
    }

    /// One unsigned HTTP/1.1 request with an empty body: its status. No
    /// HTTP client here because this module builds with every feature set.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n",
            self.port
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let head = String::from_utf8_lossy(&answer);
        head.split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not HTTP: {head:.80}")))
    }
}
