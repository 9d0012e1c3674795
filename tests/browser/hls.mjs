// Plays a backset HLS multivariant playlist in Chromium with hls.js (the
// page is hls.html) and reports one JSON line: whether it loaded without
// errors, where it started against the playlist's EXT-X-START, whether
// playback advanced without stalling over `watch` seconds, and, for an
// ended stream (played on at 4x), whether it stopped at the end; with every
// request that failed and the media playlist's URL as hls.js asked for it.
//   node hls.mjs http://127.0.0.1:PORT/live.m3u8 [watch-seconds]
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const playlist = process.argv[2];
const watch = Number(process.argv[3] || 6) * 1000;
const here = path.dirname(fileURLToPath(import.meta.url));
const files = {
  "/hls.min.js": ["text/javascript", path.join(here, "node_modules/hls.js/dist/hls.min.js")],
  "/hls.html": ["text/html", path.join(here, "hls.html")],
};

const server = http.createServer((req, res) => {
  const file = files[new URL(req.url, "http://x").pathname];
  res.writeHead(file ? 200 : 404, { "content-type": file ? file[0] : "text/plain" });
  res.end(file ? fs.readFileSync(file[1]) : "");
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});

let result;
const failed = [];
const warnings = [];
try {
  const tab = await browser.newPage();
  tab.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") warnings.push(m.text().slice(0, 300));
  });
  tab.on("response", (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
  const page = `http://127.0.0.1:${server.address().port}/hls.html?src=${encodeURIComponent(playlist)}`;
  await tab.goto(page);
  await tab.waitForFunction(() => window.result.startTime !== undefined || window.result.errors.length, null,
    { timeout: 30000 });
  const first = await tab.evaluate(() => document.getElementById("v").currentTime);
  await tab.waitForTimeout(watch);
  const later = await tab.evaluate(() => document.getElementById("v").currentTime);
  const live = await tab.evaluate(() => window.result.live);
  if (live === false) {
    await tab.evaluate(() => { document.getElementById("v").playbackRate = 4; });
    await tab.waitForFunction(() => window.result.ended !== undefined || window.result.errors.length, null,
      { timeout: 60000, polling: 200 }).catch(() => {});
  }
  result = {
    ...(await tab.evaluate(() => window.result)),
    finalTime: await tab.evaluate(() => document.getElementById("v").currentTime),
    first, later, advanced: later > first + watch / 2000,
  };
} catch (e) {
  result = { error: String(e) };
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify({ ...result, failed, warnings: warnings.slice(0, 20) }));
