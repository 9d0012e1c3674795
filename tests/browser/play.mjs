// Plays a backset HLS playlist in Chromium with hls.js, CMCD on, and reports
// as one JSON line: whether playback advanced, how far behind the live edge
// it started (and the offset its playlist asked for), the CMCD hls.js sent
// on its last request, its bandwidth estimate, and what /backset.json then
// says of this viewer.  node play.mjs http://127.0.0.1:PORT/live.m3u8
//
// The page first asks /backset.json for an id the server issues (`client`)
// and gives it to hls.js as the CMCD session id; CMCD goes in the query
// (`useHeaders: false`), so no request needs a CORS preflight.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const playlist = process.argv[2];
const params = new URL("backset.json", playlist).href;
const here = path.dirname(fileURLToPath(import.meta.url));
const hlsJs = fs.readFileSync(path.join(here, "node_modules/hls.js/dist/hls.min.js"));
const page = `<!doctype html><meta charset="utf-8"><video id="v" muted playsinline></video>
<script src="/hls.min.js"></script>
<script>
  window.result = { events: [] };
  const v = document.getElementById("v");
  (async () => {
    const issued = await (await fetch(${JSON.stringify(params)})).json();
    window.client = issued.client;
    window.result.issuedRecommended = issued.recommended_s;
    const hls = (window.hls = new Hls({
      lowLatencyMode: false,
      cmcd: { sessionId: issued.client, useHeaders: false },
    }));
    hls.on(Hls.Events.BUFFER_CREATED, (_, d) => {
      // hls.js 1.6.13 computes CMCD "bl" from its audio or video buffer
      // only; a muxed stream has one "audiovideo" buffer, so it would never
      // send "bl". Its CMCD controller is pointed at that buffer (after its
      // own handler ran); the value stays hls.js's own buffer length.
      const muxed = d.tracks.audiovideo && d.tracks.audiovideo.buffer;
      if (muxed && hls.cmcdController && !hls.cmcdController.videoBuffer) {
        hls.cmcdController.videoBuffer = muxed;
        window.result.muxedBl = true;
      }
    });
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.result.fatal = d.details; });
    hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
      // The offset of the first playlist is the backset this viewer was given.
      if (window.result.playlistOffset === undefined) window.result.playlistOffset = d.details.startTimeOffset;
    });
    hls.loadSource(${JSON.stringify(playlist)});
    hls.attachMedia(v);
    hls.on(Hls.Events.MANIFEST_PARSED, () => v.play().catch((e) => (window.result.playError = String(e))));
    v.addEventListener("playing", () => {
      if (window.result.startBehind !== undefined) return;
      const details = hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0].details;
      window.result.startTime = v.currentTime;
      window.result.startBehind = details.edge - v.currentTime;
      window.result.targetDuration = details.targetduration;
    });
  })().catch((e) => (window.result.fatal = String(e)));
</script>`;

const server = http.createServer((req, res) => {
  if (req.url === "/hls.min.js") {
    res.writeHead(200, { "content-type": "text/javascript" });
    return res.end(hlsJs);
  }
  res.writeHead(200, { "content-type": "text/html" });
  res.end(page);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});

/// The CMCD keys of a request URL (`CMCD` query argument), as strings.
function cmcdOf(url) {
  const payload = new URL(url).searchParams.get("CMCD");
  if (payload === null) return null;
  return Object.fromEntries(payload.split(",").map((pair) => {
    const i = pair.indexOf("=");
    return i < 0 ? [pair, true] : [pair.slice(0, i), pair.slice(i + 1)];
  }));
}

let result;
try {
  const tab = await browser.newPage();
  // Every request hls.js made to backset, in the order the page sent them.
  const sent = [];
  tab.on("request", (r) => {
    if (r.url().startsWith(new URL("/", playlist).href)) sent.push(r.url());
  });
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  await tab.waitForFunction(() => window.result.startBehind !== undefined || window.result.fatal, null, { timeout: 30000 });
  const first = await tab.evaluate(() => document.getElementById("v").currentTime);
  await tab.waitForTimeout(4000);
  const later = await tab.evaluate(() => document.getElementById("v").currentTime);
  // Stop loading, and let anything in flight arrive, so the last request
  // seen here is the last the server saw before it is asked.
  const bandwidthEstimate = await tab.evaluate(() => {
    window.hls.stopLoad();
    return window.hls.bandwidthEstimate;
  });
  await tab.waitForTimeout(500);
  const withCmcd = sent.filter((u) => cmcdOf(u) !== null);
  const lastCmcd = withCmcd.length ? cmcdOf(withCmcd[withCmcd.length - 1]) : null;
  const withBl = withCmcd.map(cmcdOf).filter((c) => c.bl !== undefined);
  const viewer = await tab.evaluate(async (url) => {
    const r = await fetch(url, { headers: { "X-Backset-Client": window.client } });
    return r.json();
  }, params);
  result = {
    ...(await tab.evaluate(() => window.result)),
    client: await tab.evaluate(() => window.client),
    first, later, advanced: later > first + 1,
    bandwidthEstimate,
    cmcdRequests: withCmcd.length,
    lastCmcdUrl: withCmcd[withCmcd.length - 1],
    lastCmcd,
    blSent: withBl.length ? Number(withBl[withBl.length - 1].bl) : null,
    mtpSent: lastCmcd && lastCmcd.mtp !== undefined ? Number(lastCmcd.mtp) : null,
    backset: viewer,
  };
} catch (e) {
  result = { error: String(e) };
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
