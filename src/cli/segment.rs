//! The shell around the segmenter: reads the capture, feeds the core,
//! publishes what it returns, and stops cleanly on SIGINT/SIGTERM.

use std::fs::File;
use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use backset::capture::framing::{Framer, RawBox};
use backset::capture::segmenter::{Config, Event, Segmenter};
use backset::stream::descriptor::{self, Descriptor};
use backset::stream::naming::Naming;
use backset::stream::retention::Retention;
use backset::stream::store::{self, OutDir, INDEX_FILE};
use backset::units::{parse_duration_us, parse_size};

use super::SegmentArgs;

/// What the reader thread hands the segmenter: the whole boxes one read
/// completed, so the threads meet once per read, not once per box.
enum Input {
    Boxes(Vec<RawBox>),
    /// End of input, with what was left of an unfinished box.
    End(Option<(String, u64, u64, u64)>),
    Bad(backset::Error),
    Failed(std::io::Error),
}

pub fn run(args: SegmentArgs) -> anyhow::Result<ExitCode> {
    let config = Config {
        interval_us: parse_duration_us(&args.interval)?,
        size: args.size.as_deref().map(parse_size).transpose()?,
    };
    if config.interval_us == 0 && config.size.is_none() {
        return Err(backset::Error::Usage("--interval 0 needs --size".into()).into());
    }
    let keep_us = args.keep.as_deref().map(parse_duration_us).transpose()?;
    let naming = Naming::new(&args.prefix);
    let (out, resume) = OutDir::open(&args.outdir, naming.clone(), args.new, args.fsync)?;
    let previous = match resume {
        Some(_) => store::read_descriptor(&args.outdir)?,
        None => None,
    };

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let input = open_input(&args.input)?;
    // A rendezvous: the reader reads the next boxes while the segmenter
    // publishes, and holds no more than those.
    let (tx, rx) = mpsc::sync_channel::<Input>(0);
    std::thread::spawn(move || read_into(input, tx));

    let mut shell = Shell {
        out,
        playlists: (args.hls, args.dash),
        quiet: args.quiet,
        descriptor: Descriptor {
            version: descriptor::VERSION,
            prefix: naming.prefix.clone(),
            pattern: naming.pattern(),
            index: INDEX_FILE.into(),
            timescale: 0,
            interval_us: config.interval_us,
            size: config.size,
            tracks: Vec::new(),
            first_sequence: previous.as_ref().map_or(0, |d| d.first_sequence),
            keep_us,
            keep_assets: args.keep_assets,
            started_us: previous.as_ref().map_or_else(now_us, |d| d.started_us),
            ended: false,
            ended_us: None,
        },
        published: 0,
        retention: None,
    };
    let mut segmenter = Segmenter::new(config, resume);
    let mut failure: Option<anyhow::Error> = None;
    let mut events = Vec::new();
    let mut tail = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Input::Boxes(boxes)) => {
                let now = now_us();
                let mut pushed = Ok(());
                for b in boxes {
                    pushed = segmenter.push_box(b, now, &mut events);
                    shell.handle(&mut events)?;
                    if pushed.is_err() {
                        break;
                    }
                }
                if let Err(e) = pushed {
                    failure = Some(e.into());
                    break;
                }
            }
            Ok(Input::End(rest)) => {
                tail = rest;
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Ok(Input::Bad(e)) => {
                failure = Some(e.into());
                break;
            }
            Ok(Input::Failed(e)) => {
                failure = Some(anyhow::Error::new(e).context(format!("reading {}", args.input)));
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }

    // Whatever stopped us, what is complete gets published.
    let finished = segmenter.finish_with(tail.filter(|_| failure.is_none()), &mut events);
    shell.handle(&mut events)?;
    match finished {
        Err(e) if failure.is_none() && shell.published == 0 => failure = Some(e.into()),
        _ => {}
    }
    if shell.descriptor.timescale != 0 {
        shell.descriptor.ended = true;
        shell.descriptor.ended_us = Some(now_us());
        // After a failure (a full disk, say) the first error is the one to report.
        match shell
            .out
            .write_descriptor(&shell.descriptor)
            .map_err(anyhow::Error::from)
            .and_then(|()| shell.write_playlists())
        {
            Err(e) if failure.is_none() => return Err(e),
            Err(e) => say(format_args!("backset: warning: {e}")),
            Ok(()) => {}
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

struct Shell {
    out: OutDir,
    /// Keep live.m3u8 and live.mpd up to date.
    playlists: (bool, bool),
    quiet: bool,
    descriptor: Descriptor,
    published: u64,
    retention: Option<Retention>,
}

impl Shell {
    fn handle(&mut self, events: &mut Vec<Event>) -> anyhow::Result<()> {
        for event in events.drain(..) {
            match event {
                Event::Started { tracks, timescale } => {
                    self.out.start(timescale)?;
                    self.descriptor.timescale = timescale;
                    self.descriptor.tracks = tracks;
                    self.out.write_descriptor(&self.descriptor)?;
                    let keep_ticks = self
                        .descriptor
                        .keep_us
                        .map(|us| backset::capture::stamps::rescale(us, 1_000_000, timescale));
                    self.retention = Retention::new(keep_ticks, self.descriptor.keep_assets);
                    if let Some(retention) = self.retention.as_mut() {
                        for record in self.out.records_from(self.descriptor.first_sequence)? {
                            retention.push(record);
                        }
                    }
                }
                Event::Asset(asset) => {
                    let record = self.out.publish(&asset, now_us())?;
                    self.published += 1;
                    self.expire(record)?;
                    self.write_playlists()?;
                    if !self.quiet {
                        let ts = f64::from(self.descriptor.timescale.max(1));
                        say(format_args!(
                            "published {}: start {:.3} s, duration {:.3} s, {} bytes, {} entry point(s)",
                            self.out.asset_path(record.sequence).display(),
                            record.start as f64 / ts,
                            record.duration as f64 / ts,
                            record.size,
                            record.entries
                        ));
                    }
                }
                Event::Warning(w) => say(format_args!("backset: warning: {w}")),
            }
        }
        Ok(())
    }
}

impl Shell {
    /// Rewrites the playlists from the index (each atomically): players that
    /// read files rather than `backset serve` start three assets back.
    fn write_playlists(&self) -> anyhow::Result<()> {
        let (hls, dash) = self.playlists;
        if !hls && !dash {
            return Ok(());
        }
        let stream = backset::stream::reader::Stream::open(self.out.path())?;
        let records: Vec<_> = stream.retained().collect();
        let total: u64 = records.iter().map(|r| r.duration).sum();
        let seconds = stream.seconds(total).max(1e-3);
        let listing = backset::http::playlists::Listing {
            records: &records,
            naming: &stream.naming,
            timescale: stream.index.timescale,
            ended: self.descriptor.ended,
            start_behind_s: 3.0 * seconds / records.len().max(1) as f64,
            started_us: self.descriptor.started_us,
            bitrate_bps: (records.iter().map(|r| r.media_len()).sum::<u64>() as f64 * 8.0 / seconds)
                as u64,
        };
        if hls {
            self.out.write_file(
                "live.m3u8",
                backset::http::playlists::hls(&listing).as_bytes(),
            )?;
        }
        if dash {
            self.out.write_file(
                "live.mpd",
                backset::http::playlists::dash(&listing).as_bytes(),
            )?;
        }
        Ok(())
    }

    /// Moves the window's start in the descriptor first, then deletes, so
    /// `locate` never answers with an asset about to disappear.
    fn expire(&mut self, record: backset::stream::index::Record) -> anyhow::Result<()> {
        let Some(retention) = self.retention.as_mut() else {
            return Ok(());
        };
        let expired = retention.push(record);
        if expired.is_empty() {
            return Ok(());
        }
        self.descriptor.first_sequence = retention.first().unwrap_or(record.sequence);
        self.out.write_descriptor(&self.descriptor)?;
        for sequence in expired {
            if let Err(e) = self.out.remove_asset(sequence) {
                say(format_args!("backset: warning: {e}"));
            }
        }
        Ok(())
    }
}

fn open_input(name: &str) -> anyhow::Result<Box<dyn Read + Send>> {
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

/// Reads the input into a framer and sends on each complete box.
fn read_into(mut input: Box<dyn Read + Send>, tx: mpsc::SyncSender<Input>) {
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
