// Section 7 of bench/run.mjs: a fleet of N reverse-connected servers held by one `uarc listen
// --stay` thread. fleetsim (tools/fleetsim) plays the N servers from its own process and they all
// dial at once. For each N:
//   idle phase:  `uarc listen --stay --read i=2258 --max-pending N`; time from starting fleetsim
//                to the N-th `read` event (every session up and read once); RSS of the uarc
//                process; CPU of the uarc process (and of fleetsim) over W seconds in which the
//                sessions only exchange keep-alives (a Read of the server state every 5 s each).
//   subscribed:  `uarc listen --stay --monitor ns=1;i=1000 ... ns=1;i=1009 --interval 1000`,
//                fleetsim --rate 1 (10 items changing once a second per server); CPU of the
//                uarc process over W seconds and the values it acknowledged (after printing
//                them) per second against the N x 10 changes a second the servers made.
// Numbers come from /proc (utime+stime of /proc/PID/stat, VmRSS of /proc/PID/status), event
// counts from the tool's JSON Lines (counted without parsing each line) and fleetsim's stats.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const TICKS = 100; // USER_HZ: /proc/PID/stat counts in 1/100 s on Linux
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime (fields 14 and 15)
}

export function rssKiB(pid) {
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

/**
 * Starts fleetsim; its stats lines (stderr, every 200 ms) are kept, the latest in `last`, the
 * time of its `ready` line (every server made, all about to dial) in `readyAt`, and its chaos
 * lines (--chaos-log) in `chaos`.
 */
export function startFleet(fleetBin, n, port, extra = []) {
  const child = spawn(fleetBin, ["--servers", String(n), "--target", `127.0.0.1:${port}`,
    "--items", "10", "--rate", "1", "--stats-ms", "200", ...extra],
  { stdio: ["ignore", "ignore", "pipe"] });
  const proc = { child, last: null, chaos: [], waiters: new Set() };
  let pending = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    pending += d;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        const x = { ...JSON.parse(line), at: performance.now() };
        if (x.event === "ready") proc.readyAt = x.at;
        else if (x.event === "chaos") proc.chaos.push(x);
        else proc.last = x;
      } catch { /* not stats */ }
    }
    for (const w of proc.waiters) w();
  });
  proc.exited = new Promise((resolve) => child.on("close", resolve));
  proc.until = (pred, ms, what) => new Promise((resolve, reject) => {
    const check = () => {
      if (proc.last && pred(proc.last)) { done(); resolve(proc.last); }
      else if (child.exitCode !== null) { done(); reject(new Error(`fleetsim exited: ${what}`)); }
    };
    const timer = setTimeout(() => { done(); reject(new Error(`not within ${ms} ms: ${what}`)); }, ms);
    const done = () => { clearTimeout(timer); proc.waiters.delete(check); };
    proc.waiters.add(check);
    check();
  });
  proc.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await proc.exited;
  };
  return proc;
}

/** Counts `{"event":"KIND"` in a file, streaming. */
async function countInFile(file, kinds) {
  const counts = Object.fromEntries(kinds.map((k) => [k, 0]));
  const needles = kinds.map((k) => [k, Buffer.from(`{"event":"${k}"`)]);
  let tail = Buffer.alloc(0);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 22 })) {
    const buf = tail.length ? Buffer.concat([tail, chunk]) : chunk;
    for (const [k, needle] of needles) {
      for (let at = buf.indexOf(needle); at >= 0; at = buf.indexOf(needle, at + 1))
        if (at + needle.length > tail.length) counts[k]++;
    }
    tail = buf.subarray(Math.max(0, buf.length - 24));
  }
  return counts;
}

// Idle: the tool's events go through a pipe and are counted as they come (N reads, then next to
// nothing). Subscribed: N x 10 data events a second would make the pipe's reader part of the
// measurement, so they go to a file, readiness and delivery are read from fleetsim's stats
// (`subscribed`, and `acknowledged`: values in messages the tool acknowledged, which it does
// after printing them), and the file is counted after the run.
async function runPhase({ uarcBin, fleetBin, n, seconds, subscribed, gather, allow, tmp }) {
  const items = Array.from({ length: 10 }, (_, k) => ["--monitor", `ns=1;i=${1000 + k}`]).flat();
  const args = ["listen", "--json", "--bind", "127.0.0.1", "--port", "0", "--allow-file", allow,
    "--stay", "--max-pending", String(n),
    ...(subscribed ? [...items, "--interval", "1000"] : ["--read", "i=2258"]),
    ...(gather ? ["--gather", String(gather)] : [])];
  const kinds = ["listening", "connected", "read", "subscription", "data", "gap", "disconnected", "error"];
  const out = path.join(tmp, "events.jsonl");
  let listen = null, fleet = null;
  try {
    let port;
    if (subscribed) {
      const fd = fs.openSync(out, "w");
      const child = spawn(uarcBin, args, { stdio: ["ignore", fd, "ignore"] });
      fs.closeSync(fd);
      const exited = new Promise((resolve) => child.on("close", resolve));
      listen = { child, stop: async () => { if (child.exitCode === null) child.kill("SIGTERM"); await exited; } };
      for (let i = 0; i < 100 && !port; i++) {
        await sleep(100);
        port = Number(/"address":"127\.0\.0\.1:(\d+)"/.exec(fs.readFileSync(out, "utf8").slice(0, 4096))?.[1]);
      }
      if (!port) throw new Error("uarc listen did not report `listening`");
    } else {
      listen = counted(uarcBin, args, kinds);
      await listen.until(() => listen.counts.listening > 0, 10000, "listening");
      port = Number(/"address":"127\.0\.0\.1:(\d+)"/.exec(listen.head())[1]);
    }
    await sleep(100);
    const rssBefore = rssKiB(listen.child.pid);
    const start = performance.now();
    fleet = startFleet(fleetBin, n, port);
    let upSeconds;
    if (subscribed) {
      const s = await fleet.until((x) => x.subscribed >= n, 180000, `${n} servers subscribed`)
        .catch((err) => {
          throw new Error(`${fleet.last?.subscribed ?? 0} of ${n} servers subscribed after ` +
            `180 s (fleetsim: ${fleet.last?.dials ?? 0} dials, ${fleet.last?.closed ?? 0} closed)`,
          { cause: err });
        });
      upSeconds = (s.at - start) / 1000;
    } else {
      await listen.until(() => listen.counts.read >= n, 180000, `${n} sessions read`)
        .catch((err) => {
          throw new Error(`${listen.counts.read} of ${n} sessions read after 180 s ` +
            `(fleetsim: ${fleet.last?.dials ?? 0} dials, ${fleet.last?.closed ?? 0} closed)`,
          { cause: err });
        });
      upSeconds = (performance.now() - start) / 1000;
    }
    await sleep(3000); // the last sessions' first keep-alive and the first publishes settle
    // The window runs from one stats line to the first one `seconds` later: every server
    // publishes once a second, so a whole number of seconds holds the same number of
    // publishing cycles of each server, wherever its cycle falls.
    const settled = performance.now();
    const s0 = await fleet.until((x) => x.at > settled, 5000, "a stats line");
    const c0 = cpuSeconds(listen.child.pid), f0 = cpuSeconds(fleet.child.pid);
    const t0 = performance.now();
    const s1 = await fleet.until((x) => x.t_ms >= s0.t_ms + seconds * 1000, seconds * 1000 + 10000,
      "the stats line that ends the window");
    const c1 = cpuSeconds(listen.child.pid), f1 = cpuSeconds(fleet.child.pid);
    const wall = (performance.now() - t0) / 1000;
    const statsWall = (s1.t_ms - s0.t_ms) / 1000;
    const row = {
      n, subscribed, gather, up_s: upSeconds, window_s: wall,
      rss_kib: rssKiB(listen.child.pid), rss_before_kib: rssBefore,
      cpu_pct: 100 * (c1 - c0) / wall, fleet_cpu_pct: 100 * (f1 - f0) / wall,
      lost: s1.closed - s0.closed,
      // values acknowledged per second against the n x 10 changes a second the servers make
      // (per whole publishing cycle: the window holds Math.round(statsWall) of each server's)
      data: subscribed ? (s1.acknowledged - s0.acknowledged) / Math.round(statsWall) : 0,
      expected: subscribed ? n * 10 : 0,
      gaps: 0,
    };
    await fleet.stop();
    await listen.stop();
    if (subscribed) {
      const counts = await countInFile(out, kinds);
      row.gaps = counts.gap;
      row.printed = counts.data;
      row.acknowledged_total = fleet.last.acknowledged;
    } else {
      row.gaps = listen.counts.gap;
    }
    return row;
  } finally {
    await fleet?.stop();
    await listen?.stop();
    fs.rmSync(out, { force: true });
  }
}

// The third phase's gathering (uarc listen --gather, uarc_reverse_hub_config.gather_ms): off,
// against the tool's default (automatic).
const FLEET_GATHER = "off";

function phaseName(r) {
  return r.subscribed ? `10 items/server, 1 Hz${r.gather ? `, \`--gather ${r.gather}\`` : ""}` : "idle";
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
      // subscribed twice: as the tool runs by default (gathering automatically), and without
      // gathering (--gather off)
      const phases = [{ subscribed: false, gather: 0 }, ...(subscriptions
        ? [{ subscribed: true, gather: 0 }, { subscribed: true, gather: FLEET_GATHER }] : [])];
      for (const { subscribed, gather } of phases) {
        log(`  fleet: ${n} servers, ${phaseName({ subscribed, gather })}`);
        let row;
        try {
          row = await runPhase({ uarcBin, fleetBin, n, seconds, subscribed, gather, allow, tmp });
        } catch (err) {
          row = { n, subscribed, gather, failed: String(err?.message ?? err).split("\n")[0] };
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

/** The Markdown of section 7 and its checks ([name, held]). */
export function fleetTable(rows, seconds, stamp) {
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "—");
  const mark = (ok) => (ok ? "yes" : "**no**");
  const out = [
    "### 7. Fleet: N reverse-connected sessions (SecurityPolicy None) on one `uarc listen --stay` thread",
    "",
    // When it ran, so the section keeps saying so once a later run keeps it (--only).
    ...(stamp ? [stamp, ""] : []),
    "fleetsim (tools/fleetsim, its own process) plays N servers that all dial at once. " +
    "Idle: `--read i=2258` once per session, then keep-alives only (a Read every 5 s per session). " +
    `Subscribed: 10 monitored items per server changing once a second, \`--interval 1000\`; values ` +
    "delivered = values in messages uarc acknowledged (it acknowledges after printing) per " +
    "publishing cycle of 1 s, over whole cycles, " +
    "from fleetsim's counters; gaps from uarc's events. All up: idle, the N-th `read` event; " +
    `subscribed, fleetsim seeing every server with a monitored item (200 ms steps). CPU over ${seconds} s ` +
    "in % of one core, from /proc/PID/stat; RSS from /proc/PID/status; lost sessions: connections " +
    "fleetsim saw closed in that window. The tool gathers by default (automatic: after a wake-up " +
    "with events it leaves the servers' sockets unread for 1/20 of the publishing interval, 50 ms " +
    "here, unless a server waits for an answer other than Publish); `--gather off`: the same " +
    "without gathering. One run per row; other work on " +
    "the machine shows in it.",
    "",
    "| N | phase | all up, s | uarc RSS, MiB | RSS / N, KiB | (RSS − before) / N, KiB | uarc CPU % | fleetsim CPU % | values delivered / changes, per s | lost sessions | held (up ≤ 30 s; idle: RSS/N ≤ 32 KiB, CPU ≤ 5 %; subscribed: delivered = changes ± 5 %, no gap) |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  const checks = [];
  for (const r of rows) {
    const phase = phaseName(r);
    if (r.failed) {
      out.push(`| ${r.n} | ${phase} | failed: ${r.failed.replace(/\|/g, "/")} | | | | | | | | **no** |`);
      checks.push([`#7 N=${r.n} ${phase}`, false]);
      continue;
    }
    const perSession = r.rss_kib / r.n;
    // Idle rows: the issue's targets. Subscribed rows: all up, no gap, no lost session, and the
    // values delivered within 5 % of the changes made (a collector that fell behind catches up
    // inside the window, so the rate can also be above 100 %).
    const ok = r.up_s <= 30 && (r.subscribed
      ? r.gaps === 0 && r.lost === 0 && Math.abs(r.data / r.expected - 1) <= 0.05
      : perSession <= 32 && r.cpu_pct <= 5);
    out.push(`| ${r.n} | ${phase} | ${f(r.up_s, 2)} | ${f(r.rss_kib / 1024)} | ${f(perSession)} | ` +
      `${f((r.rss_kib - r.rss_before_kib) / r.n)} | ${f(r.cpu_pct, 2)} | ${f(r.fleet_cpu_pct, 2)} | ` +
      `${r.subscribed ? `${f(r.data, 0)} / ${r.expected} (${f(100 * r.data / r.expected)} %)` : "—"} | ` +
      `${r.lost}${r.gaps ? `, ${r.gaps} gaps` : ""} | ${mark(ok)} |`);
    checks.push([`#7 N=${r.n} ${phase}`, ok]);
  }
  const idle = rows.filter((r) => !r.subscribed && !r.failed);
  if (idle.length > 1) {
    out.push("", "Idle CPU per 1,000 sessions (flat means linear growth): " +
      idle.map((r) => `${r.n}: ${f(1000 * r.cpu_pct / r.n, 2)} %`).join(", ") + ".");
  }
  out.push("");
  return { text: out.join("\n"), checks };
}

// ---- Secured storm --------------------------------------------------------------------------

/**
 * N servers with Basic256Sha256 dial one `uarc listen --stay --read i=2258 --security-policy
 * Basic256Sha256 --security-mode SignAndEncrypt --accept-any-certificate` at once. The clock and
 * the CPU counters start at fleetsim's `ready` line (its N certificates made, all dialing now) and
 * stop at the N-th `read` event. Each server costs the collector two connections: GetEndpoints over
 * None to learn the certificate, then the secured channel and session after the server's re-dial
 * (--redial-ms 100, +-25 % jitter).
 */
export async function benchSecuredStorm({ build, n, log, raw }) {
  const uarcBin = path.join(build, "tools/uarc/uarc");
  const fleetBin = path.join(build, "tools/fleetsim/fleetsim");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-bench-secstorm-"));
  const allow = path.join(tmp, "allow.txt");
  fs.writeFileSync(allow, Array.from({ length: n }, (_, i) => `urn:fleetsim:${i}\n`).join(""));
  log(`  secured storm: ${n} servers, Basic256Sha256 SignAndEncrypt`);
  const kinds = ["listening", "discovered", "connected", "read", "disconnected", "error"];
  let listen = null, fleet = null, row;
  try {
    listen = counted(uarcBin, ["listen", "--json", "--bind", "127.0.0.1", "--port", "0",
      "--allow-file", allow, "--stay", "--max-pending", String(n), "--read", "i=2258",
      "--security-policy", "Basic256Sha256", "--security-mode", "SignAndEncrypt",
      "--accept-any-certificate"], kinds);
    await listen.until(() => listen.counts.listening > 0, 10000, "listening");
    const port = Number(/"address":"127\.0\.0\.1:(\d+)"/.exec(listen.head())[1]);
    fleet = startFleet(fleetBin, n, port, ["--security-policy", "Basic256Sha256",
      "--redial-ms", "100"]);
    const made = performance.now();
    await new Promise((resolve, reject) => {
      const check = () => { if (fleet.readyAt) { fleet.waiters.delete(check); resolve(); } };
      fleet.waiters.add(check);
      fleet.exited.then(() => reject(new Error("fleetsim exited before it was ready")));
    });
    const c0 = cpuSeconds(listen.child.pid), f0 = cpuSeconds(fleet.child.pid);
    const t0 = fleet.readyAt;
    await listen.until(() => listen.counts.read >= n, 300000, `${n} secured sessions read`)
      .catch((err) => {
        throw new Error(`${listen.counts.read} of ${n} secured sessions read after 300 s`,
          { cause: err });
      });
    const t1 = performance.now();
    const c1 = cpuSeconds(listen.child.pid), f1 = cpuSeconds(fleet.child.pid);
    const up = (t1 - t0) / 1000;
    row = {
      n, certificates_s: (t0 - made) / 1000, up_s: up, per_s: n / up,
      uarc_cpu_ms: 1000 * (c1 - c0) / n, uarc_cpu_pct: 100 * (c1 - c0) / up,
      fleet_cpu_ms: 1000 * (f1 - f0) / n, fleet_cpu_pct: 100 * (f1 - f0) / up,
      connections: listen.counts.connected, errors: listen.counts.error,
      disconnected: listen.counts.disconnected,
    };
  } catch (err) {
    row = { n, failed: String(err?.message ?? err).split("\n")[0] };
  } finally {
    await fleet?.stop();
    await listen?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  raw.write(JSON.stringify({ bench: "secstorm", ...row }) + "\n");
  return [row];
}

/** The Markdown of section 12 and its checks ([name, held]). */
export function securedStormTable(rows) {
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "—");
  const out = [
    "### 12. Secured storm: N servers dial at once with Basic256Sha256 (SignAndEncrypt)",
    "",
    "fleetsim (its own process, `--security-policy Basic256Sha256 --redial-ms 100`; every server " +
    "its own certificate of one shared RSA-2048 key) dials one `uarc listen --stay --read i=2258 " +
    "--security-policy Basic256Sha256 --security-mode SignAndEncrypt --accept-any-certificate` " +
    "(default `--max-handshakes 64`). Per server the collector does GetEndpoints over None (the " +
    "certificate), then, after the server's re-dial, OPN (RSA), CreateSession, ActivateSession and " +
    "a Read. From fleetsim's `ready` line (certificates made, all dialing) to the N-th `read` " +
    "event; CPU from /proc/PID/stat (10 ms ticks) over that time, per session. Both processes share " +
    "the machine's cores with each other and with whatever else runs: one run, noisy.",
    "",
    "| N | all up, s | sessions / s | uarc CPU per session, ms | uarc CPU % | fleetsim CPU per session, ms | fleetsim CPU % | held (≥ 200 sessions/s) |",
    "|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  const checks = [];
  for (const r of rows) {
    if (r.failed) {
      out.push(`| ${r.n} | failed: ${r.failed.replace(/\|/g, "/")} | | | | | | **no** |`);
      checks.push([`#12 N=${r.n}`, false]);
      continue;
    }
    const ok = r.per_s >= 200;
    out.push(`| ${r.n} | ${f(r.up_s, 2)} | ${f(r.per_s, 0)} | ${f(r.uarc_cpu_ms, 2)} | ` +
      `${f(r.uarc_cpu_pct, 0)} | ${f(r.fleet_cpu_ms, 2)} | ${f(r.fleet_cpu_pct, 0)} | ` +
      `${ok ? "yes" : "**no**"} |`);
    checks.push([`#12 N=${r.n}`, ok]);
  }
  out.push("");
  return { text: out.join("\n"), checks };
}
