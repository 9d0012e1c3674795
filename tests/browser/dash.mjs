// Plays a backset DASH MPD in Chromium with dash.js and with Shaka Player,
// each in its own tab at the same time, and reports one JSON line: for each
// player whether it loaded without errors, where it started (how far behind
// the live edge and behind the wall clock, against the MPD's
// suggestedPresentationDelay), whether playback advanced without stalling,
// and, for an ended stream (played at 4x), whether it stopped at the end.
//   node dash.mjs http://127.0.0.1:PORT/live.mpd [watch-seconds]
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const mpd = process.argv[2];
const watch = Number(process.argv[3] || 6) * 1000;
const here = path.dirname(fileURLToPath(import.meta.url));
const scripts = {
  "/dash.js": path.join(here, "node_modules/dashjs/dist/modern/umd/dash.all.debug.js"),
  "/shaka.js": path.join(here, "node_modules/shaka-player/dist/shaka-player.compiled.debug.js"),
};

// What both pages share: the MPD's figures, and the facts of playback the
// test asserts on, kept in window.result.
const common = `
  window.result = { errors: [], stalls: 0, events: [] };
  const v = document.getElementById("v");
  async function manifest() {
    const text = await (await fetch(${JSON.stringify(mpd)}, { cache: "no-store" })).text();
    const doc = new DOMParser().parseFromString(text, "application/xml");
    const root = doc.documentElement;
    const secs = (d) => d ? Number(/PT([0-9.]+)S/.exec(d)[1]) : null;
    // The live edge: the end of the video timeline's last segment.
    const tpl = doc.querySelector("AdaptationSet[contentType=video] SegmentTemplate")
      || doc.querySelector("SegmentTemplate");
    let end = 0;
    for (const s of tpl.querySelectorAll("S")) {
      if (s.getAttribute("t") !== null) end = Number(s.getAttribute("t"));
      end += Number(s.getAttribute("d"));
    }
    const pto = Number(tpl.getAttribute("presentationTimeOffset") || 0);
    const period = tpl.closest("Period");
    return {
      type: root.getAttribute("type"),
      ast: Date.parse(root.getAttribute("availabilityStartTime")) / 1000,
      delay: secs(root.getAttribute("suggestedPresentationDelay")),
      duration: secs(root.getAttribute("mediaPresentationDuration")),
      edge: (end - pto) / Number(tpl.getAttribute("timescale")) + secs(period.getAttribute("start")),
    };
  }
  v.addEventListener("playing", async () => {
    if (window.result.startTime !== undefined) return;
    window.result.startTime = v.currentTime;
    const m = await manifest();
    window.result.mpd = m;
    if (m.type === "dynamic") {
      window.result.startBehindEdge = m.edge - window.result.startTime;
      window.result.startBehindClock = Date.now() / 1000 - m.ast - window.result.startTime;
    }
  });
  v.addEventListener("waiting", () => {
    if (window.result.startTime !== undefined && !v.seeking) window.result.stalls += 1;
  });
  v.addEventListener("ended", () => (window.result.ended = v.currentTime));
`;

const pages = {
  "/dashjs": `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><video id="v" muted playsinline></video>
<script src="/dash.js"></script>
<script>${common}
  const player = (window.player = dashjs.MediaPlayer().create());
  player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
  player.on(dashjs.MediaPlayer.events.ERROR, (e) =>
    window.result.errors.push(JSON.stringify(e.error && (e.error.message || e.error.code) || e)));
  player.initialize(v, ${JSON.stringify(mpd)}, true);
</script>`,
  "/shaka": `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><video id="v" muted playsinline></video>
<script src="/shaka.js"></script>
<script>${common}
  shaka.polyfill.installAll();
  const player = (window.player = new shaka.Player());
  player.addEventListener("error", (e) => window.result.errors.push("shaka " + e.detail.code));
  (async () => {
    await player.attach(v);
    await player.load(${JSON.stringify(mpd)});
    v.play().catch((e) => window.result.errors.push(String(e)));
  })().catch((e) => window.result.errors.push("load " + (e.code || e)));
</script>`,
};

const server = http.createServer((req, res) => {
  if (scripts[req.url]) {
    res.writeHead(200, { "content-type": "text/javascript" });
    return res.end(fs.readFileSync(scripts[req.url]));
  }
  res.writeHead(pages[req.url] ? 200 : 404, { "content-type": "text/html" });
  res.end(pages[req.url] || "");
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});

/// One player's run: load, wait for playback, watch it; an ended stream is
/// then played to its end at 4x.
async function run(name) {
  const tab = await browser.newPage();
  const warnings = [];
  const failed = [];
  tab.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") warnings.push(m.text().slice(0, 300));
  });
  tab.on("response", (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
  try {
    await tab.goto(`http://127.0.0.1:${server.address().port}/${name}`);
    await tab.waitForFunction(() => window.result.mpd !== undefined || window.result.errors.length, null, { timeout: 30000 });
    const first = await tab.evaluate(() => document.getElementById("v").currentTime);
    await tab.waitForTimeout(watch);
    const later = await tab.evaluate(() => document.getElementById("v").currentTime);
    const result = await tab.evaluate(() => window.result);
    if (result.mpd && result.mpd.type === "static") {
      await tab.evaluate(() => { document.getElementById("v").playbackRate = 4; });
      await tab.waitForFunction(() => window.result.ended !== undefined || window.result.errors.length, null,
        { timeout: 60000, polling: 200 }).catch(() => {});
      Object.assign(result, await tab.evaluate(() => ({
        ended: window.result.ended, stalls: window.result.stalls, errors: window.result.errors,
        finalTime: document.getElementById("v").currentTime,
      })));
    }
    return { ...result, first, later, advanced: later > first + watch / 2000, warnings: warnings.slice(0, 20), failed };
  } catch (e) {
    return { error: String(e), warnings: warnings.slice(0, 20), failed };
  } finally {
    await tab.close();
  }
}

let result;
try {
  const [dashjs, shaka] = await Promise.all([run("dashjs"), run("shaka")]);
  result = { dashjs, shaka };
} catch (e) {
  result = { error: String(e) };
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
