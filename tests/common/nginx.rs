//! Debian's nginx, run by a test: one foreground process on a free loopback
//! port, its configuration and temporary paths in a directory the test
//! owns, stopped when dropped (also when the test panics).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::netns::in_ci;

pub struct Nginx(pub Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx, or `None` after saying why the test is skipped (under CI, a
/// failure: CI installs it).
pub fn nginx_or_skip(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file());
    if found.is_none() {
        let why = format!("{test}: nginx is not installed (apt-get install -y nginx)");
        assert!(!in_ci(), "{why}");
        let _ = writeln!(std::io::stderr(), "SKIPPED {why}");
    }
    found
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx configured in `dir` with `http` (the inside of its `http` block,
/// `PORT` standing for the port it is to listen on): its URL, and the
/// access log, one line per request with the viewer id follow sends.
pub fn start_nginx(bin: &Path, dir: &Path, http: &str) -> (Nginx, String, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let d = dir.display();
    let log = dir.join("access.log");
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log stderr;\n\
         pid {d}/nginx.pid;\nevents {{ worker_connections 256; }}\nhttp {{\n\
         default_type application/octet-stream;\n\
         log_format ids '$http_x_backset_client $request_uri $status';\n\
         access_log {log} ids;\n\
         client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
         {http}\n}}\n",
        log = log.display(),
        http = http.replace("PORT", &port.to_string()),
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let nginx = Nginx(
        Command::new(bin)
            .args(["-p", dir.to_str().unwrap(), "-e", "stderr", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx never listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (nginx, format!("http://127.0.0.1:{port}/"), log)
}

/// nginx as a CDN in front of a bucket: `/NAME` is fetched from `origin`
/// (`http://127.0.0.1:PORT/BUCKET/PREFIX/`, the store's anonymous URL of
/// the stream directory) and kept in a cache under `dir` for as long as
/// the object's own `Cache-Control` allows (nothing is cached on nginx's
/// say-so: an object without it, or `no-store`, goes to the store every
/// time). A Range request is answered 206 from the whole object, which
/// nginx fetches and caches once. `X-Cache-Status` (MISS, HIT, EXPIRED…)
/// tells a test where an answer came from.
pub fn start_cdn(bin: &Path, dir: &Path, origin: &str) -> (Nginx, String, PathBuf) {
    assert!(origin.ends_with('/'), "{origin}: the origin is a directory");
    let cache = dir.join("cache");
    let http = format!(
        "proxy_cache_path {cache} levels=1:2 keys_zone=store:4m max_size=512m \
         inactive=10m use_temp_path=off;\n\
         server {{\n listen 127.0.0.1:PORT;\n\
          location / {{\n\
           proxy_pass {origin};\n\
           proxy_http_version 1.1;\n\
           proxy_cache store;\n\
           proxy_cache_key $uri;\n\
           proxy_cache_lock on;\n\
           add_header X-Cache-Status $upstream_cache_status always;\n\
          }}\n}}",
        cache = cache.display(),
    );
    start_nginx(bin, dir, &http)
}

/// nginx balancing over `replicas`, passing to the next one on a
/// connection error or a gateway error, without buffering the answers.
pub fn balancer_config(replicas: &[&str]) -> String {
    let servers: String = replicas
        .iter()
        .map(|r| {
            format!(
                "server {} max_fails=1 fail_timeout=30s;\n",
                r.trim_end_matches('/').trim_start_matches("http://")
            )
        })
        .collect();
    format!(
        "upstream replicas {{\n{servers}}}\n\
         server {{ listen 127.0.0.1:PORT;\n\
         location / {{ proxy_pass http://replicas; proxy_http_version 1.1;\n\
         proxy_set_header Connection \"\"; proxy_buffering off;\n\
         proxy_connect_timeout 1s; proxy_next_upstream error timeout http_502 http_503; }} }}"
    )
}
