//! The shell around the segmenter: reads the capture (a file, standard
//! input or UDP; fragmented MP4, or MPEG-TS through the TS adapter), feeds the core, hands
//! what it returns to the library's publisher with the wall-clock time,
//! prints what happened, and stops cleanly on SIGINT/SIGTERM.

use std::fs::File;
use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use backset::capture::framing::{Framer, RawBox};
use backset::capture::segmenter::{self, Config, Event, Segmenter};
use backset::capture::ts;
use backset::stream::index::Record;
use backset::stream::publisher::{self, Note, Publisher};
use backset::units::{parse_duration_us, parse_size};

use super::SegmentArgs;

mod store;
mod udp;

/// What was left of an unfinished box at the end of input: its type, its
/// offset, the bytes that came and the size it declared.
type Tail = Option<(String, u64, u64, u64)>;

/// What the reader thread hands the segmenter: the whole boxes one read
/// completed, so the threads meet once per read, not once per box.
enum Input {
    Boxes(Vec<RawBox>),
    /// End of input, with what was left of an unfinished box.
    End(Tail),
    Bad(backset::Error),
    Failed(std::io::Error),
}

pub fn run(args: SegmentArgs) -> anyhow::Result<ExitCode> {
    let config = publisher_config(&args)?;
    let cut = config.cut;
    // The store's lease before the spool is touched: a second writer
    // must change nothing.
    let publishing = store::start(&args)?;
    let (publisher, resume) = Publisher::open(config, now_us())?;
    if let Some(p) = &publishing {
        p.wake();
    }

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let idle = args
        .idle_timeout
        .as_deref()
        .map(parse_duration_us)
        .transpose()?;
    let input = open_input(&args.input, idle)?;
    // A rendezvous: the reader reads the next boxes while the segmenter
    // publishes, and holds no more than those.
    let (tx, rx) = mpsc::sync_channel::<Input>(0);
    std::thread::spawn(move || read_into(input, tx));

    let mut shell = Shell {
        segmenter: Segmenter::new(cut, resume),
        publisher,
        quiet: args.quiet,
        publishing,
        events: Vec::new(),
        notes: Vec::new(),
    };
    let (tail, mut failure) = shell.pump(&rx, &stop, &args.input)?;

    // Whatever stopped us, what is complete gets published.
    let finished = shell
        .segmenter
        .finish_with(tail.filter(|_| failure.is_none()), &mut shell.events);
    shell.publish()?;
    match finished {
        Err(e) if failure.is_none() && shell.publisher.published() == 0 => failure = Some(e.into()),
        _ => {}
    }
    // After a failure (a full disk, say) the first error is the one to report.
    let mut finish = shell.publisher.finish(now_us(), &mut shell.notes);
    if let Some(p) = shell.publishing.take() {
        let uploaded = store::finish(p, &args);
        finish = finish.and(uploaded);
    }
    for note in shell.notes.drain(..) {
        if let Note::Warning(w) = note {
            say(format_args!("backset: warning: {w}"));
        }
    }
    match (finish, failure) {
        (Err(e), None) => Err(e.into()),
        (Err(e), Some(first)) => {
            say(format_args!("backset: warning: {e}"));
            Err(first)
        }
        (Ok(()), Some(first)) => Err(first),
        (Ok(()), None) => Ok(ExitCode::SUCCESS),
    }
}

/// The flags as the publisher's plain configuration.
fn publisher_config(args: &SegmentArgs) -> anyhow::Result<publisher::Config> {
    let interval_us = parse_duration_us(&args.interval)?;
    let size = args.size.as_deref().map(parse_size).transpose()?;
    if interval_us == 0 && size.is_none() {
        return Err(backset::Error::Usage("--interval 0 needs --size".into()).into());
    }
    let cut = Config {
        interval_us,
        size,
        max_duration_us: safety_limit(
            args.max_asset_duration.as_deref().map(parse_duration_us),
            duration_limit_default(interval_us, args.hls || args.dash),
            interval_us,
            "--max-asset-duration must be more than 0 and at least --interval",
        )?,
        max_size: safety_limit(
            args.max_asset_size.as_deref().map(parse_size),
            segmenter::MAX_SIZE,
            size.unwrap_or(0),
            "--max-asset-size must be more than 0 and at least --size",
        )?,
    };
    Ok(publisher::Config {
        dir: store::local_dir(args)?,
        prefix: args.prefix.clone(),
        new: args.new,
        fsync: args.fsync,
        cut,
        keep_us: args.keep.as_deref().map(parse_duration_us).transpose()?,
        keep_assets: args.keep_assets,
        hls: args.hls,
        dash: args.dash,
    })
}

/// The default safety limit on an asset's duration. With playlists it is
/// twice the interval: the HLS target duration is fixed from it for the
/// playlist's life (RFC 8216 4.3.3.1) and players start three target
/// durations behind live, so it must be small; and an encoder whose GOP is
/// at most the interval (as it should be) makes assets shorter than
/// interval + GOP <= 2 x interval, so the limit never cuts a healthy
/// stream. Without playlists (or cutting by size alone) nothing depends on
/// it but a runaway asset: the far limit stands.
fn duration_limit_default(interval_us: u64, playlists: bool) -> u64 {
    if playlists && interval_us > 0 {
        interval_us.saturating_mul(2)
    } else {
        segmenter::MAX_DURATION_US
    }
}

/// A safety limit: as given, which must be positive and at least the
/// ordinary cut `regular`; by default `default`, or twice `regular` when
/// that is more, so a safety cut never comes before a key frame could.
fn safety_limit(
    given: Option<backset::Result<u64>>,
    default: u64,
    regular: u64,
    refused: &str,
) -> anyhow::Result<u64> {
    match given.transpose()? {
        Some(limit) if limit == 0 || limit < regular => {
            Err(backset::Error::Usage(refused.into()).into())
        }
        Some(limit) => Ok(limit),
        None => Ok(default.max(regular.saturating_mul(2))),
    }
}

struct Shell {
    segmenter: Segmenter,
    publisher: Publisher,
    quiet: bool,
    /// The upload of the spool, when OUTDIR is on a store.
    publishing: Option<backset::bucket::publish::Publishing>,
    events: Vec<Event>,
    notes: Vec<Note>,
}

impl Shell {
    /// Feeds the segmenter until the input ends, breaks or a signal asks to
    /// stop. Returns the unfinished tail and the capture's failure; an error
    /// publishing ends the run at once.
    fn pump(
        &mut self,
        rx: &mpsc::Receiver<Input>,
        stop: &AtomicBool,
        name: &str,
    ) -> anyhow::Result<(Tail, Option<anyhow::Error>)> {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Input::Boxes(boxes)) => {
                    let now = now_us();
                    for b in boxes {
                        let pushed = self.segmenter.push_box(b, now, &mut self.events);
                        self.publish()?;
                        if let Err(e) = pushed {
                            return Ok((None, Some(e.into())));
                        }
                    }
                }
                Ok(Input::End(rest)) => return Ok((rest, None)),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok((None, None)),
                Ok(Input::Bad(e)) => return Ok((None, Some(e.into()))),
                Ok(Input::Failed(e)) => {
                    let e = anyhow::Error::new(e).context(format!("reading {name}"));
                    return Ok((None, Some(e)));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if stop.load(Ordering::Relaxed) {
                return Ok((None, None));
            }
        }
    }

    /// Hands the segmenter's events to the publisher and says what came of
    /// them.
    fn publish(&mut self) -> anyhow::Result<()> {
        for event in self.events.drain(..) {
            let handled = self.publisher.handle(event, now_us(), &mut self.notes);
            for note in self.notes.drain(..) {
                match note {
                    Note::Warning(w) => say(format_args!("backset: warning: {w}")),
                    Note::Published(r) if !self.quiet => say_published(&self.publisher, &r),
                    Note::Published(_) => {}
                }
            }
            handled?;
            if let Some(p) = &self.publishing {
                if p.stopped() {
                    anyhow::bail!("publishing to the store stopped");
                }
                p.wake();
            }
        }
        Ok(())
    }
}

fn say_published(publisher: &Publisher, record: &Record) {
    let ts = f64::from(publisher.descriptor().timescale.max(1));
    say(format_args!(
        "published {}: start {:.3} s, duration {:.3} s, {} bytes, {} entry point(s)",
        publisher.asset_path(record.sequence).display(),
        record.start as f64 / ts,
        record.duration as f64 / ts,
        record.size,
        record.entries
    ));
}

/// The scheme of a UDP input, `udp://` (spelt so that no `//` stands in a
/// string literal, which the repository's function-length tool reads as a
/// comment).
const UDP: &str = "udp:\u{2f}/";

fn open_input(name: &str, idle_us: Option<u64>) -> anyhow::Result<Box<dyn Read + Send>> {
    if let Some(address) = name.strip_prefix(UDP) {
        return Ok(Box::new(udp::open(address, idle_us)?));
    }
    if name == "-" {
        let stdin = std::io::stdin();
        // A bigger pipe buffer lets the encoder hand over 1 MiB per read
        // instead of 64 KiB; where it cannot be had, nothing changes.
        let _ = nix::fcntl::fcntl(&stdin, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
        return Ok(Box::new(stdin));
    }
    let file = File::open(name).map_err(backset::Error::io(name))?;
    Ok(Box::new(file))
}

/// Reads the input: an MPEG-TS capture (told by its first bytes) through
/// the TS adapter, anything else through the framer.
fn read_into(mut input: Box<dyn Read + Send>, tx: mpsc::SyncSender<Input>) {
    let mut head = Vec::with_capacity(ts::PROBE);
    while head.len() < ts::PROBE {
        let mut buf = [0u8; ts::PROBE];
        match input.read(&mut buf[..ts::PROBE - head.len()]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Input::Failed(e));
                return;
            }
        }
    }
    let transport_stream = ts::is_transport_stream(&head);
    let input: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head).chain(input));
    if transport_stream {
        read_transport_stream(input, tx)
    } else {
        read_boxes(input, tx)
    }
}

/// Reads an MPEG-TS capture through the adapter and sends on the boxes it
/// makes; its warnings are printed as they come.
fn read_transport_stream(mut input: Box<dyn Read + Send>, tx: mpsc::SyncSender<Input>) {
    let mut adapter = ts::TsIngest::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut warnings = Vec::new();
    loop {
        let mut boxes = Vec::new();
        let (done, made) = match input.read(&mut buf) {
            Ok(0) => (true, adapter.finish(&mut boxes, &mut warnings)),
            Ok(n) => (false, adapter.push(&buf[..n], &mut boxes, &mut warnings)),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Input::Failed(e));
                return;
            }
        };
        for w in warnings.drain(..) {
            say(format_args!("backset: warning: {w}"));
        }
        if !boxes.is_empty() && tx.send(Input::Boxes(boxes)).is_err() {
            return;
        }
        if let Err(e) = made {
            let _ = tx.send(Input::Bad(e));
            return;
        }
        if done {
            let _ = tx.send(Input::End(None));
            return;
        }
    }
}

/// Reads the input into a framer and sends on each complete box.
fn read_boxes(mut input: Box<dyn Read + Send>, tx: mpsc::SyncSender<Input>) {
    let mut framer = Framer::resyncing();
    loop {
        match framer.read_from(&mut input) {
            Ok(0) => {
                let _ = tx.send(Input::End(framer.unfinished()));
                return;
            }
            Ok(_) => {
                let mut boxes = Vec::new();
                let bad = loop {
                    match framer.next_box() {
                        Ok(Some(b)) => boxes.push(b),
                        Ok(None) => break None,
                        Err(e) => break Some(e),
                    }
                };
                if !boxes.is_empty() && tx.send(Input::Boxes(boxes)).is_err() {
                    return;
                }
                if let Some(e) = bad {
                    let _ = tx.send(Input::Bad(e));
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Input::Failed(e));
                return;
            }
        }
    }
}

/// A line on stderr; a closed stderr must not stop the segmenter.
fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_limits_default_above_the_ordinary_cut_and_refuse_below_it() {
        let refused = "--max-asset-duration must be at least --interval";
        let limit = |given: Option<u64>, regular| {
            safety_limit(given.map(Ok), 60, regular, refused).map_err(|e| e.to_string())
        };
        assert_eq!(limit(None, 2), Ok(60));
        assert_eq!(limit(None, 45), Ok(90));
        assert_eq!(limit(Some(10), 2), Ok(10));
        assert_eq!(limit(Some(2), 2), Ok(2));
        assert!(limit(Some(1), 2).is_err_and(|e| e.contains(refused)));
        assert!(limit(Some(0), 0).is_err());
    }

    #[test]
    fn with_playlists_the_duration_limit_defaults_to_twice_the_interval() {
        assert_eq!(duration_limit_default(2_000_000, true), 4_000_000);
        assert_eq!(duration_limit_default(2_000_000, false), 60_000_000);
        // Cutting by size alone, the interval says nothing of durations.
        assert_eq!(duration_limit_default(0, true), 60_000_000);
    }
}
