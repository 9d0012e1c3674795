//! What a live DASH MPD must hold on each reload, read generically (any
//! addressing a player would follow): every Representation has `@codecs`
//! (its own or its Adaptation Set's), and every URL it addresses is
//! there: `SegmentTemplate` (`$Number$`/`$Time$`/`$RepresentationID$`/
//! `$Bandwidth$`, with widths) expanded over its `SegmentTimeline`, or a
//! `SegmentList`'s `SegmentURL`s, or a `SegmentBase`'s `BaseURL`, each
//! under the `BaseURL`s above it.

use roxmltree::{Document, Node};

use super::fetch::{fetch, resolve, Fetched};

/// A URL the MPD addresses, with its byte range `(length, offset)`.
pub type Address = (String, Option<(u64, u64)>);

#[derive(Debug, Default)]
pub struct Watch {
    pub reloads: usize,
    pub fetched: usize,
    pub raced: Vec<String>,
    pub representations: usize,
    pub kind: String,
}

impl Watch {
    pub fn reload(&mut self, base: &str) -> Result<(), String> {
        let url = format!("{base}live.mpd");
        let text = super::fetch::text(&url)?;
        let (kind, reps, named) = addresses(&text, &url).map_err(|e| format!("{e}\n{text}"))?;
        (self.kind, self.representations) = (kind, reps);
        for (u, range) in &named {
            match fetch(u, *range)? {
                Fetched::Ok => {}
                Fetched::NotFound => {
                    let again = super::fetch::text(&url)?;
                    let (_, _, now) = addresses(&again, &url)?;
                    if now.iter().any(|(n, _)| n == u) {
                        return Err(format!("404 on {u}, which the MPD still names\n{again}"));
                    }
                    self.raced.push(u.clone());
                }
            }
        }
        self.fetched += named.len();
        self.reloads += 1;
        Ok(())
    }
}

/// The MPD's type, its number of Representations and every URL it names.
pub fn addresses(text: &str, url: &str) -> Result<(String, usize, Vec<Address>), String> {
    let doc = Document::parse(text).map_err(|e| e.to_string())?;
    let mpd = doc.root_element();
    if mpd.tag_name().name() != "MPD" {
        return Err("no MPD element".into());
    }
    let kind = mpd.attribute("type").unwrap_or("static").to_string();
    let base = base_of(mpd, url);
    let (mut out, mut reps) = (Vec::new(), 0);
    for period in children(mpd, "Period") {
        let period_base = base_of(period, &base);
        for set in children(period, "AdaptationSet") {
            let set_base = base_of(set, &period_base);
            for rep in children(set, "Representation") {
                reps += 1;
                let id = rep.attribute("id").unwrap_or("?");
                if rep
                    .attribute("codecs")
                    .or(set.attribute("codecs"))
                    .is_none()
                {
                    return Err(format!("Representation {id} has no @codecs"));
                }
                let rep_base = base_of(rep, &set_base);
                let levels = [rep, set, period];
                out.extend(representation(&levels, &rep_base)?);
            }
        }
    }
    if reps == 0 {
        return Err("no Representation".into());
    }
    Ok((kind, reps, out))
}

fn children<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The base URL under `node`: its first `BaseURL` resolved against `base`.
fn base_of(node: Node, base: &str) -> String {
    children(node, "BaseURL")
        .next()
        .and_then(|b| b.text())
        .map_or(base.to_string(), |t| resolve(base, t.trim()))
}

/// The addresses of one Representation; `levels` are it and its parents,
/// nearest first (where a segment description is inherited from).
fn representation(levels: &[Node], base: &str) -> Result<Vec<Address>, String> {
    let rep = levels[0];
    let find = |name: &'static str| levels.iter().find_map(|n| children(*n, name).next());
    if let Some(list) = find("SegmentList") {
        let mut out = Vec::new();
        if let Some(init) = children(list, "Initialization").next() {
            let u = init
                .attribute("sourceURL")
                .map_or(base.to_string(), |s| resolve(base, s));
            out.push((u, range(init.attribute("range"))?));
        }
        for s in children(list, "SegmentURL") {
            let u = s
                .attribute("media")
                .map_or(base.to_string(), |m| resolve(base, m));
            out.push((u, range(s.attribute("mediaRange"))?));
        }
        return Ok(out);
    }
    let templates: Vec<Node> = levels
        .iter()
        .filter_map(|n| children(*n, "SegmentTemplate").next())
        .collect();
    if !templates.is_empty() {
        return template(rep, &templates, base);
    }
    // SegmentBase, or nothing: the BaseURL is the whole media.
    Ok(vec![(base.to_string(), None)])
}

/// `SegmentTemplate` (attributes inherited nearest first) over its timeline.
fn template(rep: Node, templates: &[Node], base: &str) -> Result<Vec<Address>, String> {
    let attr = |name: &str| templates.iter().find_map(|t| t.attribute(name));
    let id = rep.attribute("id").unwrap_or("");
    let bandwidth: u64 = rep
        .attribute("bandwidth")
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    let mut out = Vec::new();
    if let Some(init) = attr("initialization") {
        out.push((
            resolve(base, &substitute(init, id, bandwidth, None, None)?),
            None,
        ));
    }
    let media = attr("media").ok_or("SegmentTemplate without @media")?;
    let mut number: u64 = attr("startNumber")
        .map_or(Ok(1), |n| n.parse())
        .map_err(|e| format!("startNumber: {e}"))?;
    let timeline = templates
        .iter()
        .find_map(|t| children(*t, "SegmentTimeline").next())
        .ok_or("SegmentTemplate without SegmentTimeline (@duration alone is not checked)")?;
    let mut time = 0u64;
    for s in children(timeline, "S") {
        let get = |n: &str| {
            s.attribute(n)
                .map(|v| v.parse::<i64>().map_err(|e| format!("S@{n}: {e}")))
        };
        if let Some(t) = get("t").transpose()? {
            time = t as u64;
        }
        let d = get("d").transpose()?.ok_or("S without @d")? as u64;
        let repeat = get("r").transpose()?.unwrap_or(0).max(0) as u64;
        for _ in 0..=repeat {
            let path = substitute(media, id, bandwidth, Some(number), Some(time))?;
            out.push((resolve(base, &path), None));
            number += 1;
            time += d;
        }
    }
    Ok(out)
}

/// A template with its identifiers (`$Name$` or `$Name%0Nd$`) replaced.
fn substitute(
    template: &str,
    id: &str,
    bandwidth: u64,
    number: Option<u64>,
    time: Option<u64>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut parts = template.split('$');
    out.push_str(parts.next().unwrap_or(""));
    let mut inside = true;
    for part in parts {
        if !inside {
            out.push_str(part);
            inside = true;
            continue;
        }
        inside = false;
        let (name, width) = match part.split_once('%') {
            Some((n, f)) => {
                let w = f.trim_start_matches('0').trim_end_matches('d');
                (n, w.parse::<usize>().map_err(|e| format!("${part}$: {e}"))?)
            }
            None => (part, 0),
        };
        let value = match name {
            "" => "$".to_string(),
            "RepresentationID" => id.to_string(),
            "Bandwidth" => format!("{bandwidth:0width$}"),
            "Number" => format!("{:0width$}", number.ok_or("$Number$ in an init")?),
            "Time" => format!("{:0width$}", time.ok_or("$Time$ in an init")?),
            other => return Err(format!("unknown identifier ${other}$")),
        };
        out.push_str(&value);
    }
    Ok(out)
}

/// `first-last` as `(length, offset)`.
fn range(text: Option<&str>) -> Result<Option<(u64, u64)>, String> {
    let Some(t) = text else { return Ok(None) };
    let (a, b) = t.split_once('-').ok_or(format!("range {t}"))?;
    let (a, b): (u64, u64) = (
        a.parse().map_err(|e| format!("range {t}: {e}"))?,
        b.parse().map_err(|e| format!("range {t}: {e}"))?,
    );
    Ok(Some((b + 1 - a, a)))
}

#[test]
fn templates_expand_with_widths_and_escapes() {
    assert_eq!(
        substitute(
            "a-$Number%08d$.track$RepresentationID$.m4s",
            "2",
            0,
            Some(7),
            None
        )
        .unwrap(),
        "a-00000007.track2.m4s"
    );
    assert_eq!(
        substitute("$Time$-$$-$Bandwidth$", "x", 5, None, Some(9)).unwrap(),
        "9-$-5"
    );
}

#[test]
fn an_mpd_of_templates_and_lists_expands_to_its_urls() {
    let mpd = r#"<MPD type="dynamic"><Period><AdaptationSet codecs="avc1.64000d">
      <SegmentTemplate timescale="10" initialization="i-$RepresentationID$.mp4" media="s-$Number%03d$-$Time$.m4s" startNumber="4">
        <SegmentTimeline><S t="20" d="10" r="1"/><S d="5"/></SegmentTimeline></SegmentTemplate>
      <Representation id="1" bandwidth="1"/></AdaptationSet>
      <AdaptationSet><Representation id="2" codecs="mp4a.40.2"><BaseURL>sub/</BaseURL>
        <SegmentList><Initialization sourceURL="a.mp4" range="0-9"/><SegmentURL media="a.mp4" mediaRange="10-19"/></SegmentList>
      </Representation></AdaptationSet></Period></MPD>"#;
    let (kind, reps, a) = addresses(mpd, "http://h:1/live.mpd").unwrap();
    assert_eq!((kind.as_str(), reps), ("dynamic", 2));
    let urls: Vec<&str> = a.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://h:1/i-1.mp4",
            "http://h:1/s-004-20.m4s",
            "http://h:1/s-005-30.m4s",
            "http://h:1/s-006-40.m4s",
            "http://h:1/sub/a.mp4",
            "http://h:1/sub/a.mp4"
        ]
    );
    assert_eq!(a[5].1, Some((10, 10)));
    let bare = mpd.replace(" codecs=\"mp4a.40.2\"", "");
    assert!(addresses(&bare, "http://h:1/")
        .unwrap_err()
        .contains("no @codecs"));
}
