// Section 13 of bench/run.mjs: the churn soak. N fleetsim servers dial one `uarc listen --stay
// --read i=2258 --max-pending N`; once every session is up and read, fleetsim's chaos knob
// `--restart-per-min F` is switched on (SIGUSR1, --chaos-paused) for M minutes: that fraction of
// the servers per minute closes its connection, forgets its sessions and dials again (a restart).
// Then the knob is switched off and the restarted servers come back. Per server, the restarts
// fleetsim made (--chaos-log lines) are set against the events uarc printed since the soak began:
// a restarted server should show per restart one `disconnected`, `hello`, `accepted`, `connected`
// with "session":"new" and `read`; a server that was not restarted should show nothing. RSS (/proc/PID/status)
// and open descriptors (/proc/PID/fd) of the uarc process are sampled at the start, every minute
// and at the end.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { cpuSeconds, rssKiB, startFleet } from "./fleet.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
const URI = /^urn:fleetsim:(\d+)$/;

/**
 * `uarc listen` with its JSON Lines parsed as they come: per server index, the events since
 * `mark()` (kind, or connected/new, connected/resumed), and all events without a server.
 */
function startListen(uarcBin, args) {
  const child = spawn(uarcBin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const st = { child, port: 0, upReads: new Set(), soak: false, frozen: false, perServer: new Map(),
    unattributed: [], lines: 0, stderr: "", waiters: new Set() };
  const kindOf = (e) => (e.event === "connected" ? `connected/${e.session ?? "first"}` : e.event);
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    st.lines++;
    let e;
    try { e = JSON.parse(line); } catch { st.unattributed.push(line); return; }
    if (e.event === "listening") st.port = Number(/:(\d+)$/.exec(e.address)?.[1]);
    const k = URI.exec(e.server_uri ?? "")?.[1];
    if (st.frozen) {
      return;
    } else if (!st.soak) {
      if (e.event === "read" && k !== undefined) st.upReads.add(Number(k));
    } else if (k === undefined) {
      if (e.event !== "listening") st.unattributed.push(line);
    } else {
      const list = st.perServer.get(Number(k)) ?? [];
      list.push({ kind: kindOf(e), cause: e.cause, reason: e.reason, line });
      st.perServer.set(Number(k), list);
    }
    for (const w of st.waiters) w();
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => { if (st.stderr.length < 65536) st.stderr += d; });
  st.exited = new Promise((resolve) => child.on("close", resolve));
  st.until = (pred, ms, what) => new Promise((resolve, reject) => {
    const check = () => {
      if (pred()) { done(); resolve(); }
      else if (child.exitCode !== null) { done(); reject(new Error(`uarc exited: ${what}\n${st.stderr}`)); }
    };
    const timer = setTimeout(() => { done(); reject(new Error(`not within ${ms} ms: ${what}`)); }, ms);
    const done = () => { clearTimeout(timer); st.waiters.delete(check); };
    st.waiters.add(check);
    check();
  });
  st.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await st.exited;
  };
  return st;
}

/** Per server, what uarc showed against the restarts fleetsim made (all since the soak began). */
function reconcile(listen, chaos, n) {
  const restarts = new Map();
  for (const c of chaos) {
    if (c.kind === "restart") restarts.set(c.server, (restarts.get(c.server) ?? 0) + 1);
  }
  const count = (list, kind) => list.filter((x) => x.kind === kind).length;
  // What one restart shows: the old connection's end, then the re-dial's ReverseHello accepted,
  // a new session and the --read again.
  const PER_RESTART = ["disconnected", "hello", "accepted", "connected/new", "read"];
  const r = { restarts: 0, servers_restarted: restarts.size, servers_restarted_twice: 0,
    new_sessions: 0, resumed: 0, disconnected: 0, reads: 0, errors: 0,
    disturbed: 0, disturbed_examples: [], mismatched: 0, mismatched_examples: [],
    other_chaos: chaos.filter((c) => c.kind !== "restart").length };
  for (let k = 0; k < n; k++) {
    const list = listen.perServer.get(k) ?? [];
    const want = restarts.get(k) ?? 0;
    r.restarts += want;
    r.servers_restarted_twice += want > 1;
    const got = { disconnected: count(list, "disconnected"), fresh: count(list, "connected/new"),
      resumed: count(list, "connected/resumed"), reads: count(list, "read") };
    r.new_sessions += got.fresh;
    r.resumed += got.resumed;
    r.disconnected += got.disconnected;
    r.reads += got.reads;
    r.errors += list.filter((x) => !PER_RESTART.includes(x.kind)).length;
    const example = () => `urn:fleetsim:${k} (${want} restarts): ` +
      list.slice(0, 6).map((x) => x.line).join(" ");
    if (!want && list.length) {
      r.disturbed++;
      if (r.disturbed_examples.length < 5) r.disturbed_examples.push(example());
    } else if (want && PER_RESTART.some((kind) => count(list, kind) !== want)) {
      r.mismatched++;
      if (r.mismatched_examples.length < 5) r.mismatched_examples.push(example());
    }
  }
  return r;
}

/**
 * Runs the soak: N servers, `minutes` of `rate` restarts per server per minute. Samples every
 * minute (every quarter of the soak when it is shorter than 4 minutes). Returns one row.
 */
export async function benchChurn({ build, n, minutes, rate, log, raw }) {
  const uarcBin = path.join(build, "tools/uarc/uarc");
  const fleetBin = path.join(build, "tools/fleetsim/fleetsim");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-bench-churn-"));
  const allow = path.join(tmp, "allow.txt");
  fs.writeFileSync(allow, Array.from({ length: n }, (_, i) => `urn:fleetsim:${i}\n`).join(""));
  let listen = null, fleet = null, row;
  try {
    listen = startListen(uarcBin, ["listen", "--json", "--bind", "127.0.0.1", "--port", "0",
      "--allow-file", allow, "--stay", "--max-pending", String(n), "--read", "i=2258"]);
    await listen.until(() => listen.port > 0, 10000, "listening");
    const t0 = performance.now();
    fleet = startFleet(fleetBin, n, listen.port,
      ["--restart-per-min", String(rate), "--chaos-log", "--chaos-paused"]);
    await listen.until(() => listen.upReads.size >= n, 180000, `${n} sessions read`);
    const upSeconds = (performance.now() - t0) / 1000;
    await sleep(3000); // the last sessions' first keep-alives
    const pid = listen.child.pid;
    const sample = (label) => ({ label, rss_kib: rssKiB(pid), fds: fdCount(pid),
      cpu_s: cpuSeconds(pid), at: performance.now(), up: fleet.last?.active ?? NaN });
    const series = [sample("start")];
    const stats0 = fleet.last;
    log(`  churn: ${n} sessions up in ${upSeconds.toFixed(1)} s; ${minutes} min of ` +
      `${rate * 100} % restarts per minute`);
    listen.soak = true;
    fleet.child.kill("SIGUSR1");
    const soakMs = minutes * 60000;
    const step = Math.min(60000, soakMs / 4);
    const begin = performance.now();
    for (let i = 1; i * step <= soakMs + 1; i++) {
      await sleep(Math.max(0, begin + i * step - performance.now()));
      series.push(sample(`${((i * step) / 60000).toFixed(step < 60000 ? 2 : 0)} min`));
      log(`  churn: ${JSON.stringify(series.at(-1))} restarts ${fleet.last.restarts - stats0.restarts}`);
    }
    fleet.child.kill("SIGUSR1"); // chaos off: the restarted servers come back
    // Every restarted server back with its new session (its `read`), then a moment for stragglers.
    const chaosCount = () => fleet.chaos.filter((c) => c.kind === "restart").length;
    const reads = () => { let x = 0; for (const l of listen.perServer.values()) x += l.filter((e) => e.kind === "read").length; return x; };
    await listen.until(() => reads() >= chaosCount(), 60000, "every restarted server read again")
      .catch((err) => log(`  churn: ${err.message}`));
    await sleep(3000);
    series.push(sample("end"));
    listen.frozen = true; // what stopping the fleet prints is not part of the soak
    const stats1 = fleet.last;
    await fleet.stop();
    await listen.stop();
    const cpu = series.at(-1).cpu_s - series[0].cpu_s;
    row = { n, minutes, rate, up_s: upSeconds, series,
      fleet_restarts: stats1.restarts - stats0.restarts,
      fleet_closed: stats1.closed - stats0.closed, fleet_sessions: stats1.sessions - stats0.sessions,
      cpu_pct: (100 * cpu) / ((performance.now() - begin) / 1000),
      unattributed: listen.unattributed.slice(0, 5), unattributed_count: listen.unattributed.length,
      ...reconcile(listen, fleet.chaos, n) };
  } catch (err) {
    row = { n, minutes, rate, failed: String(err?.message ?? err).split("\n")[0] };
  } finally {
    await fleet?.stop();
    await listen?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  raw.write(JSON.stringify({ bench: "churn", ...row }) + "\n");
  return row;
}

/** The Markdown of section 13 and its check ([name, held]). */
export function churnTable(r, stamp) {
  const head = [
    "### 13. Churn soak: a fraction of N servers restart every minute (`scripts/bench --only churn`)",
    "", stamp, "",
    "fleetsim plays N servers dialing one `uarc listen --stay --read i=2258 --max-pending N`. Once " +
    "every session is up and read, `--restart-per-min` is switched on: each minute that fraction " +
    "of the servers closes its connection, forgets its sessions and dials again about a second " +
    "later. Per server, the restarts fleetsim logged (`--chaos-log`) are set against uarc's " +
    "events since the soak began: a restarted server should show per restart one `disconnected`, " +
    "`hello`, `accepted`, `connected` with `\"session\":\"new\"` and `read`, every other " +
    "server nothing. RSS and open descriptors of the uarc process from /proc at the start (all up), every " +
    "minute, and at the end (chaos off, every restarted server back). Held: no other server " +
    "disturbed, new sessions = restarts, descriptors at the end = at the start, RSS at the end " +
    "≤ 1.05 × at the start.",
    "",
  ];
  if (r.failed) {
    return { text: [...head, `N = ${r.n}, ${r.minutes} min: failed: ${r.failed}`, ""].join("\n"),
      checks: [[`#13 churn N=${r.n}`, false]] };
  }
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "—");
  const start = r.series[0], end = r.series.at(-1);
  const ok = r.disturbed === 0 && r.new_sessions === r.restarts && end.fds === start.fds &&
    end.rss_kib <= 1.05 * start.rss_kib;
  const out = [...head,
    `N = ${r.n.toLocaleString("en")}, ${r.minutes} min at ${f(r.rate * 100, 0)} % per minute; ` +
    `all up in ${f(r.up_s, 1)} s; uarc CPU over the soak ${f(r.cpu_pct, 1)} % of a core.`, "",
    "| what | count |", "|---|---:|",
    `| restarts fleetsim made (its \`restarts\` counter; chaos lines) | ${r.fleet_restarts} (${r.restarts}) |`,
    `| servers restarted (of which more than once) | ${r.servers_restarted} (${r.servers_restarted_twice}) |`,
    `| uarc \`connected\` with a new session | ${r.new_sessions} |`,
    `| uarc \`connected\` with a resumed session | ${r.resumed} |`,
    `| uarc \`disconnected\` | ${r.disconnected} |`,
    `| uarc \`read\` (the --read after each new session) | ${r.reads} |`,
    `| other uarc events of fleet servers (besides hello and accepted: error, dropped, ...) | ${r.errors} |`,
    `| uarc events naming no fleet server | ${r.unattributed_count} |`,
    `| restarted servers whose events differ from 1 disconnected, hello, accepted, new session, read per restart | ${r.mismatched} |`,
    `| **servers NOT restarted with any event (disturbed)** | **${r.disturbed}** |`,
    "",
    "| when | uarc RSS, KiB | open descriptors | sessions up (fleetsim) | uarc CPU % since the row before |",
    "|---|---:|---:|---:|---:|",
    ...r.series.map((s, i) => `| ${s.label} | ${s.rss_kib} | ${s.fds} | ${s.up} | ` +
      `${i ? f((100 * (s.cpu_s - r.series[i - 1].cpu_s)) / ((s.at - r.series[i - 1].at) / 1000), 1) : "—"} |`),
    "",
    `RSS at the end − at the start: ${end.rss_kib - start.rss_kib} KiB ` +
    `(${f((100 * (end.rss_kib - start.rss_kib)) / start.rss_kib, 2)} %); descriptors ` +
    `${end.fds - start.fds >= 0 ? "+" : ""}${end.fds - start.fds}. Held: ${ok ? "yes" : "**no**"}.`,
  ];
  for (const x of [...r.disturbed_examples, ...r.mismatched_examples, ...r.unattributed])
    out.push("", `- \`${x.replace(/`/g, "'").slice(0, 600)}\``);
  out.push("");
  return { text: out.join("\n"), checks: [[`#13 churn N=${r.n}`, ok]] };
}
