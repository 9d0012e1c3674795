// Plays a backset HLS playlist in Chromium with hls.js and reports, as one
// JSON line: whether playback advanced, and how far behind the live edge it
// started.  node play.mjs http://127.0.0.1:PORT/live.m3u8
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const playlist = process.argv[2];
const here = path.dirname(fileURLToPath(import.meta.url));
const hlsJs = fs.readFileSync(path.join(here, "node_modules/hls.js/dist/hls.min.js"));
const page = `<!doctype html><meta charset="utf-8"><video id="v" muted playsinline></video>
<script src="/hls.min.js"></script>
<script>
  window.result = { events: [] };
  const v = document.getElementById("v");
  const hls = new Hls({ lowLatencyMode: false });
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.result.fatal = d.details; });
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
let result;
try {
  const tab = await browser.newPage();
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  await tab.waitForFunction(() => window.result.startBehind !== undefined || window.result.fatal, null, { timeout: 30000 });
  const first = await tab.evaluate(() => document.getElementById("v").currentTime);
  await tab.waitForTimeout(3000);
  const later = await tab.evaluate(() => document.getElementById("v").currentTime);
  result = { ...(await tab.evaluate(() => window.result)), first, later, advanced: later > first + 1 };
} catch (e) {
  result = { error: String(e) };
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
