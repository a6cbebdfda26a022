// Section 6 of bench/run.mjs: a fleet of N reverse-connected servers held by one `uarc listen
// --stay` thread. fleetsim (tools/fleetsim) plays the N servers from its own process and they all
// dial at once. For each N:
//   idle phase:  `uarc listen --stay --read i=2258 --max-pending N`; time from starting fleetsim
//                to the N-th `read` event (every session up and read once); RSS of the uarc
//                process; CPU of the uarc process (and of fleetsim) over W seconds in which the
//                sessions only exchange keep-alives (a Read of the server state every 5 s each).
//   subscribed:  `uarc listen --stay --monitor ns=1;i=1000 ... ns=1;i=1009 --interval 1000`,
//                fleetsim --rate 1 (10 items changing once a second per server); CPU of the
//                uarc process over W seconds and the data events it printed against the
//                N x 10 x W changes the servers made.
// Numbers come from /proc (utime+stime of /proc/PID/stat, VmRSS of /proc/PID/status); event
// counts from the tool's JSON Lines, counted without parsing each line.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const TICKS = 100; // USER_HZ: /proc/PID/stat counts in 1/100 s on Linux
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime (fields 14 and 15)
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

/** Runs a program and counts the JSON Lines events on its stdout by type, without parsing. */
function counted(file, args, kinds) {
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
  const counts = Object.fromEntries(kinds.map((k) => [k, 0]));
  const needles = kinds.map((k) => [k, Buffer.from(`{"event":"${k}"`)]);
  let head = "";
  let tail = Buffer.alloc(0);
  let stderr = "";
  const waiters = new Set();
  child.stdout.on("data", (chunk) => {
    if (head.length < 4096) head += chunk.toString("utf8", 0, Math.min(chunk.length, 4096));
    // An event is counted once its whole needle arrived; keep a needle's length of overlap.
    const buf = tail.length ? Buffer.concat([tail, chunk]) : chunk;
    for (const [k, needle] of needles) {
      let at = buf.indexOf(needle);
      while (at >= 0) {
        if (at + needle.length > tail.length) counts[k]++;
        at = buf.indexOf(needle, at + 1);
      }
    }
    tail = buf.subarray(Math.max(0, buf.length - 24));
    for (const w of waiters) w();
  });
  child.stderr.on("data", (d) => { if (stderr.length < 65536) stderr += d; });
  const exited = new Promise((resolve) => child.on("close", (code) => {
    for (const w of waiters) w();
    resolve(code);
  }));
  const until = (pred, ms, what) => new Promise((resolve, reject) => {
    const check = () => {
      if (pred()) { done(); resolve(); }
      else if (child.exitCode !== null) { done(); reject(new Error(`${path.basename(file)} exited: ${what}\n${stderr}`)); }
    };
    const timer = setTimeout(() => { done(); reject(new Error(`not within ${ms} ms: ${what}`)); }, ms);
    const done = () => { clearTimeout(timer); waiters.delete(check); };
    waiters.add(check);
    check();
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
    await exited;
    clearTimeout(timer);
  };
  return { child, counts, head: () => head, stderr: () => stderr, until, stop };
}

async function runPhase({ uarcBin, fleetBin, n, seconds, subscribed, allow }) {
  const items = Array.from({ length: 10 }, (_, k) => ["--monitor", `ns=1;i=${1000 + k}`]).flat();
  const listen = counted(uarcBin, ["listen", "--json", "--bind", "127.0.0.1", "--port", "0",
    "--allow-file", allow, "--stay", "--max-pending", String(n),
    ...(subscribed ? [...items, "--interval", "1000"] : ["--read", "i=2258"])],
  ["listening", "connected", "read", "subscription", "data", "gap", "disconnected", "error"]);
  let fleet = null;
  try {
    await listen.until(() => listen.counts.listening > 0, 10000, "listening");
    await sleep(100);
    const port = Number(/"address":"127\.0\.0\.1:(\d+)"/.exec(listen.head())[1]);
    const rssBefore = rssKiB(listen.child.pid);
    const start = performance.now();
    fleet = counted(fleetBin, ["--servers", String(n), "--target", `127.0.0.1:${port}`,
      "--items", "10", "--rate", "1", "--stats-ms", "0"], []);
    const ready = subscribed ? () => listen.counts.subscription >= n : () => listen.counts.read >= n;
    await listen.until(ready, 180000, `${n} sessions ${subscribed ? "subscribed" : "read"}`);
    const upSeconds = (performance.now() - start) / 1000;
    await sleep(3000); // the last sessions' first keep-alive and the first publishes settle
    const c0 = cpuSeconds(listen.child.pid), f0 = cpuSeconds(fleet.child.pid);
    const d0 = listen.counts.data, x0 = listen.counts.disconnected + listen.counts.error;
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const wall = (performance.now() - t0) / 1000;
    const row = {
      n, subscribed, up_s: upSeconds,
      rss_kib: rssKiB(listen.child.pid), rss_before_kib: rssBefore,
      cpu_pct: 100 * (cpuSeconds(listen.child.pid) - c0) / wall,
      fleet_cpu_pct: 100 * (cpuSeconds(fleet.child.pid) - f0) / wall,
      data: listen.counts.data - d0, expected: subscribed ? n * 10 * wall : 0,
      lost: listen.counts.disconnected + listen.counts.error - x0, gaps: listen.counts.gap,
      window_s: wall,
    };
    return row;
  } finally {
    await fleet?.stop();
    await listen.stop();
  }
}

/**
 * Runs the fleet section for every N in `sizes`; returns rows for the table. `log` reports
 * progress, `raw` gets every row as JSON.
 */
export async function benchFleet({ build, sizes, seconds, subscriptions, log, raw }) {
  const uarcBin = path.join(build, "tools/uarc/uarc");
  const fleetBin = path.join(build, "tools/fleetsim/fleetsim");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-bench-fleet-"));
  const rows = [];
  try {
    for (const n of sizes) {
      const allow = path.join(tmp, `allow-${n}.txt`);
      fs.writeFileSync(allow, Array.from({ length: n }, (_, i) => `urn:fleetsim:${i}\n`).join(""));
      for (const subscribed of subscriptions ? [false, true] : [false]) {
        log(`  fleet: ${n} servers, ${subscribed ? "10 items each, 1 change/s" : "idle"}`);
        let row;
        try {
          row = await runPhase({ uarcBin, fleetBin, n, seconds, subscribed, allow });
        } catch (err) {
          row = { n, subscribed, failed: String(err?.message ?? err).split("\n")[0] };
        }
        raw.write(JSON.stringify({ bench: "fleet", ...row }) + "\n");
        rows.push(row);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

/** The Markdown of section 6 and its checks ([name, held]). */
export function fleetTable(rows, seconds) {
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "—");
  const mark = (ok) => (ok ? "yes" : "**no**");
  const out = [
    "### 6. Fleet: N reverse-connected sessions (SecurityPolicy None) on one `uarc listen --stay` thread",
    "",
    "fleetsim (tools/fleetsim, its own process) plays N servers that all dial at once. " +
    "Idle: `--read i=2258` once per session, then keep-alives only (a Read every 5 s per session). " +
    `Subscribed: 10 monitored items per server changing once a second, \`--interval 1000\`. CPU over ${seconds} s ` +
    "in % of one core, from /proc/PID/stat; RSS from /proc/PID/status. One run per row.",
    "",
    "| N | phase | all up, s | uarc RSS, MiB | RSS / N, KiB | (RSS − before) / N, KiB | uarc CPU % | fleetsim CPU % | data events / changes | lost sessions | held (up ≤ 30 s; idle: RSS/N ≤ 32 KiB, CPU ≤ 5 %; subscribed: data = changes ± 5 %, no gap) |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  const checks = [];
  for (const r of rows) {
    const phase = r.subscribed ? "10 items/server, 1 Hz" : "idle";
    if (r.failed) {
      out.push(`| ${r.n} | ${phase} | failed: ${r.failed.replace(/\|/g, "/")} | | | | | | | | **no** |`);
      checks.push([`#6 N=${r.n} ${phase}`, false]);
      continue;
    }
    const perSession = r.rss_kib / r.n;
    // Idle rows: the issue's targets. Subscribed rows: all up, no gap, and the data events within
    // 5 % of the changes made (the window's edges cut one publishing cycle per server).
    const ok = r.up_s <= 30 && (r.subscribed
      ? r.gaps === 0 && r.lost === 0 && Math.abs(r.data / r.expected - 1) <= 0.05
      : perSession <= 32 && r.cpu_pct <= 5);
    out.push(`| ${r.n} | ${phase} | ${f(r.up_s, 2)} | ${f(r.rss_kib / 1024)} | ${f(perSession)} | ` +
      `${f((r.rss_kib - r.rss_before_kib) / r.n)} | ${f(r.cpu_pct, 2)} | ${f(r.fleet_cpu_pct, 2)} | ` +
      `${r.subscribed ? `${r.data} / ${Math.round(r.expected)} (${f(100 * r.data / r.expected)} %)` : "—"} | ` +
      `${r.lost}${r.gaps ? `, ${r.gaps} gaps` : ""} | ${mark(ok)} |`);
    checks.push([`#6 N=${r.n} ${phase}`, ok]);
  }
  const idle = rows.filter((r) => !r.subscribed && !r.failed);
  if (idle.length > 1) {
    out.push("", "Idle CPU per 1,000 sessions (flat means linear growth): " +
      idle.map((r) => `${r.n}: ${f(1000 * r.cpu_pct / r.n, 2)} %`).join(", ") + ".");
  }
  out.push("");
  return { text: out.join("\n"), checks };
}
