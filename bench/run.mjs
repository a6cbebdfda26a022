#!/usr/bin/env node
// Runs every uarc benchmark beside its reference in one run and writes the table.
//
//   node bench/run.mjs --build DIR [--runs N] [--out FILE] [--only LIST]
//                      [--fleet-sizes N,N,...] [--fleet-seconds S] [--no-fleet-subscriptions]
//                      [--fleet-from RAW.jsonl] [--storm-size N]
//                      [--churn-size N] [--churn-minutes M] [--churn-rate F]
//
// DIR holds the Release build (DIR/bench/bench_*). N (default 30, at least 30 for the record) is
// the number of runs behind every median and p90 (the end-to-end section, e2e: E2E runs, default
// 3). LIST picks sections: codec,connect,listener,memory,fleet,ceiling,e2e,pipe,itemmem,secstorm
// (default all but churn: the soak of bench/churn.mjs runs only when named, --churn-minutes M of
// --churn-rate F of --churn-size N servers restarting per minute, defaults 10, 0.1, 10,000); the
// sections not picked are kept from the existing FILE. The secured storm
// (secstorm) has --storm-size servers (default 1000) dial with Basic256Sha256 at once. The fleet section
// (bench/fleet.mjs) runs once per N of --fleet-sizes (default 1000,2000,5000,10000) and measures
// over S seconds (default 20); --fleet-from writes its table from the fleet rows of an earlier
// run's bench-raw.jsonl instead of measuring. The table goes to stdout and, as Markdown with the
// date, the machine and the versions, to FILE (default bench/RESULTS.md); the raw samples to
// DIR/bench-raw.jsonl.
// scripts/bench is the one command that builds and runs this.
process.env.NODEOPCUA_LOG_LEVEL ??= "3";

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { benchFleet, benchSecuredStorm, fleetTable, securedStormTable } from "./fleet.mjs";
import { benchChurn, churnTable } from "./churn.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PEER = path.join(ROOT, "tests/peer");
const SERVER_URI = "urn:uarc:bench:server";

// ---- arguments -------------------------------------------------------------------------------

// Section numbers in the file; 6 is bench/mqtt.mjs's, between its own markers.
const SECTIONS = { connect: "1", listener: "3", codec: "4", memory: "5", fleet: "7", ceiling: "8",
  e2e: "9", pipe: "10", itemmem: "11", secstorm: "12", churn: "13" };
// The churn soak (13) takes its minutes and more: only when asked for.
const opts = { build: null, runs: 30, e2eRuns: 3, out: path.join(ROOT, "bench/RESULTS.md"),
  only: new Set(Object.keys(SECTIONS).filter((s) => s !== "churn")),
  churnSize: 10000, churnMinutes: 10, churnRate: 0.1,
  fleetSizes: [1000, 2000, 5000, 10000], fleetSeconds: 20, fleetSubscriptions: true,
  stormSize: 1000 };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i] ?? usage(`${argv[i - 1]} needs a value`);
    switch (argv[i]) {
      case "--build": opts.build = path.resolve(value()); break;
      case "--runs": opts.runs = Number(value()); break;
      case "--e2e-runs": opts.e2eRuns = Number(value()); break;
      case "--out": opts.out = path.resolve(value()); break;
      case "--only": opts.only = new Set(value().split(",")); break;
      case "--fleet-sizes": opts.fleetSizes = value().split(",").map(Number); break;
      case "--fleet-seconds": opts.fleetSeconds = Number(value()); break;
      case "--no-fleet-subscriptions": opts.fleetSubscriptions = false; break;
      case "--fleet-from": opts.fleetFrom = path.resolve(value()); break;
      case "--storm-size": opts.stormSize = Number(value()); break;
      case "--churn-size": opts.churnSize = Number(value()); break;
      case "--churn-minutes": opts.churnMinutes = Number(value()); break;
      case "--churn-rate": opts.churnRate = Number(value()); break;
      default: usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!opts.build) usage("--build is required");
  if (!(opts.runs >= 1)) usage("--runs needs a positive number");
  for (const s of opts.only) if (!SECTIONS[s]) usage(`unknown section ${s}`);
  if (!opts.fleetSizes.every((n) => n >= 1)) usage("--fleet-sizes needs positive numbers");
  if (!(opts.fleetSeconds >= 1)) usage("--fleet-seconds needs a positive number");
  if (!(opts.stormSize >= 1)) usage("--storm-size needs a positive number");
  if (!(opts.churnSize >= 1) || !(opts.churnMinutes > 0) || !(opts.churnRate > 0))
    usage("--churn-size, --churn-minutes and --churn-rate need positive numbers");
}
function usage(message) {
  process.stderr.write(`run.mjs: ${message}\nusage: node bench/run.mjs --build DIR [--runs N] ` +
    `[--e2e-runs N] [--out FILE] [--only ${Object.keys(SECTIONS).join(",")}] ` +
    "[--fleet-sizes N,...] [--fleet-seconds S] [--no-fleet-subscriptions] [--storm-size N] " +
    "[--churn-size N] [--churn-minutes M] [--churn-rate F]\n");
  process.exit(2);
}
const exe = (name) => path.join(opts.build, "bench", name);
// Read before the raw file of this run is opened, which may be the same file.
const fleetFrom = opts.fleetFrom && fs.readFileSync(opts.fleetFrom, "utf8").split("\n")
  .filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.bench === "fleet");
const raw = fs.createWriteStream(path.join(opts.build, "bench-raw.jsonl"));
const log = (...a) => process.stderr.write(a.join(" ") + "\n");

// ---- node-opcua, with the accept time of every socket its reverse-connect listener takes -------

// ClientReverseConnect's listener is a net.Server made in this process. Its "connection" event is
// the moment the server's socket is accepted, which is where a reverse-connect measurement starts.
let lastAccept = null;
{
  const createServer = net.createServer;
  net.createServer = function (...args) {
    const server = createServer.apply(this, args);
    server.prependListener("connection", () => {
      lastAccept = { wall: performance.now(), cpu: process.cpuUsage() };
    });
    return server;
  };
  syncBuiltinESMExports();
}
const requirePeer = createRequire(path.join(PEER, "package.json"));
let ua = null;
async function nodeOpcua() {
  ua ??= await import(pathToFileURL(requirePeer.resolve("node-opcua")).href);
  return ua;
}

// ---- statistics ------------------------------------------------------------------------------

const sorted = (v) => [...v].sort((a, b) => a - b);
function quantile(v, q) {
  const s = sorted(v);
  if (!s.length) return NaN;
  const x = q * (s.length - 1), lo = Math.floor(x), hi = Math.ceil(x);
  return s[lo] + (s[hi] - s[lo]) * (x - lo);
}
const median = (v) => quantile(v, 0.5);
// "p90" is always the worse tail: the 90th percentile of a time, the 10th of a rate.
const p90 = (v) => quantile(v, 0.9);
const p90rate = (v) => quantile(v, 0.1);

// ---- child processes speaking JSON lines --------------------------------------------------------

function start(cmd, args, { stdin = "pipe" } = {}) {
  const child = spawn(cmd, args, { stdio: [stdin, "pipe", "inherit"] });
  const lines = [], waiters = [];
  let ended = false;
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    if (waiters.length) waiters.shift().resolve(line);
    else lines.push(line);
  }).on("close", () => {
    ended = true;
    for (const w of waiters.splice(0)) w.reject(new Error(`${path.basename(cmd)} ended`));
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  return {
    child,
    exited,
    next(timeoutMs = 120000) {
      if (lines.length) return Promise.resolve(lines.shift());
      if (ended) return Promise.reject(new Error(`${path.basename(cmd)} ended`));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${path.basename(cmd)}: no output ` +
          `within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ resolve: (l) => { clearTimeout(timer); resolve(l); },
          reject: (e) => { clearTimeout(timer); reject(e); } });
      });
    },
    async json(timeoutMs) { return JSON.parse(await this.next(timeoutMs)); },
    async all() {
      const out = [];
      for (;;) {
        try { out.push(JSON.parse(await this.next(600000))); } catch { return out; }
      }
    },
  };
}

// ---- 1 and 2: connections against one node-opcua server ----------------------------------------

async function nodeClient() {
  const { OPCUAClient, MessageSecurityMode, SecurityPolicy } = await nodeOpcua();
  return OPCUAClient.create({
    applicationName: "node-opcua bench client",
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 0 },
    clientCertificateManager: nodeCertificates,
  });
}
let nodeCertificates = null;

async function nodeSession(client, t0, kind) {
  const { AttributeIds } = await nodeOpcua();
  const session = await client.createSession();
  const value = await session.read({ nodeId: "i=2258", attributeId: AttributeIds.Value });
  const close0 = performance.now();
  await session.close();
  await client.disconnect();
  const end = performance.now(), cpu = process.cpuUsage(t0.cpu);
  return { kind, wall_ms: end - t0.wall, cpu_ms: (cpu.user + cpu.system) / 1e3,
    close_ms: end - close0, status: value.statusCode.name };
}

async function nodeReverse(rc) {
  const client = await nodeClient();
  const call = { wall: performance.now(), cpu: process.cpuUsage() };
  await client.connectReverse(rc, { serverUri: SERVER_URI });
  // The clock starts when the socket was accepted, or at the call when it was already waiting.
  const t0 = lastAccept && lastAccept.wall > call.wall ? lastAccept : call;
  return nodeSession(client, t0, "reverse");
}

async function nodeForward(url) {
  const client = await nodeClient();
  const t0 = { wall: performance.now(), cpu: process.cpuUsage() };
  await client.connect(url);
  return nodeSession(client, t0, "forward");
}

async function startServer(reverseUrls) {
  const args = [path.join(ROOT, "bench/server.mjs"), "--reconnect-delay", "10"];
  for (const url of reverseUrls) args.push("--reverse", url);
  const server = start(process.execPath, args);
  const { endpoint_url } = await server.json(120000);
  return { ...server, url: endpoint_url };
}

async function benchConnect(results) {
  const { ClientReverseConnect, OPCUACertificateManager } = await nodeOpcua();
  const pki = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-bench-client-"));
  nodeCertificates = new OPCUACertificateManager({ rootFolder: pki,
    automaticallyAcceptUnknownCertificate: true });
  const uarc = start(exe("bench_connect"), []);
  const { port } = await uarc.json();
  const rc = new ClientReverseConnect({ connectionUrl: "opc.tcp://127.0.0.1:0" });
  await rc.start();
  const server = await startServer([`opc.tcp://127.0.0.1:${port}`,
    `opc.tcp://127.0.0.1:${rc.listeningPort}`]);
  log(`  node-opcua server ${server.url}; uarc listener :${port}, node-opcua listener ` +
    `:${rc.listeningPort}`);

  const uarcRun = async (command) => {
    uarc.child.stdin.write(command + "\n");
    const out = [];
    for (;;) {
      const line = await uarc.json(60000);
      if (line.done) return out;
      out.push(line);
    }
  };
  const nodeRun = async (n, fn) => {
    const out = [];
    for (let i = 0; i < n; i++) {
      try {
        out.push(await fn());
      } catch (err) {
        out.push({ status: "error", detail: String(err?.message ?? err) });
      }
    }
    return out;
  };
  const samples = { uarc: { reverse: [], forward: [] }, node: { reverse: [], forward: [] } };
  const keep = (who, kind, list) => {
    for (const s of list) {
      raw.write(JSON.stringify({ bench: "connect", who, kind, ...s }) + "\n");
      samples[who][kind].push(s);
    }
  };

  // Warm-up (the node-opcua client makes its key pair on first use): not kept.
  await uarcRun("reverse 2");
  await uarcRun(`forward ${server.url} 2`);
  await nodeRun(2, () => nodeReverse(rc));
  await nodeRun(2, () => nodeForward(server.url));

  // Turns of a few connections each, alternating who goes first. The first reverse connection of
  // a turn was dialed while the other client was measured and has waited: it is not kept.
  const batch = 5, turns = Math.ceil(opts.runs / batch);
  for (let t = 0; t < turns; t++) {
    const steps = [
      async () => keep("uarc", "reverse", (await uarcRun(`reverse ${batch + 1}`)).slice(1)),
      async () => keep("node", "reverse", (await nodeRun(batch + 1, () => nodeReverse(rc))).slice(1)),
      async () => keep("uarc", "forward", await uarcRun(`forward ${server.url} ${batch}`)),
      async () => keep("node", "forward", await nodeRun(batch, () => nodeForward(server.url))),
    ];
    const order = t % 2 ? [1, 0, 3, 2] : [0, 1, 2, 3];
    for (const i of order) await steps[i]();
    log(`  connect: turn ${t + 1}/${turns}`);
  }
  uarc.child.stdin.end("quit\n");
  await uarc.exited;
  await rc.stop();

  for (const kind of ["reverse", "forward"]) {
    const row = { kind };
    for (const who of ["uarc", "node"]) {
      const all = samples[who][kind];
      const good = all.filter((s) => s.status === "Good");
      row[who] = { n: good.length, failed: all.length - good.length,
        failures: [...new Set(all.filter((s) => s.status !== "Good").map((s) =>
          `${s.status}${s.detail ? ": " + s.detail : ""}`))].slice(0, 3) };
      for (const f of ["wall_ms", "cpu_ms", "close_ms"]) {
        const v = good.map((s) => s[f]);
        row[who][f] = { median: median(v), p90: p90(v), max: Math.max(...v) };
      }
      // Kernel share of the CPU time (uarc only; tick-sampled, so only the mean means much).
      const mean = (v) => v.reduce((a, x) => a + x, 0) / v.length;
      if (who === "uarc") row[who].sys_share = mean(good.map((s) => s.sys_ms)) / mean(good.map((s) => s.cpu_ms));
    }
    results.connect.push(row);
  }
  fs.rmSync(pki, { recursive: true, force: true });
  return server; // kept for the session memory benchmark
}

// ---- 3: listener capacity ------------------------------------------------------------------------

async function benchListener(results) {
  const proc = start(exe("bench_listener"), ["--windows", String(opts.runs)], { stdin: "ignore" });
  const windows = await proc.all();
  const code = await proc.exited;
  if (code !== 0) throw new Error(`bench_listener exited with ${code}`);
  const groups = new Map();
  for (const w of windows) {
    raw.write(JSON.stringify(w) + "\n");
    const key = `${w.k}/${w.idle}`;
    if (!groups.has(key)) groups.set(key, { k: w.k, idle: w.idle, uarc: [], minimal: [] });
    groups.get(key)[w.target].push(w);
  }
  for (const g of groups.values()) {
    const row = { k: g.k, idle: g.idle };
    for (const who of ["uarc", "minimal"]) {
      const w = g[who];
      row[who] = {
        n: w.length,
        errors: w.reduce((a, x) => a + x.errors, 0),
        rate: { median: median(w.map((x) => x.rate)), p90: p90rate(w.map((x) => x.rate)) },
        p50: { median: median(w.map((x) => x.p50_ms)), p90: p90(w.map((x) => x.p50_ms)) },
        p99: { median: median(w.map((x) => x.p99_ms)), p90: p90(w.map((x) => x.p99_ms)) },
      };
    }
    results.listener.push(row);
  }
}

// ---- 4: codec ------------------------------------------------------------------------------------

async function benchCodec(results) {
  const out = execFileSync(exe("bench_codec"), [String(Math.max(opts.runs, 30)), "--json"],
    { encoding: "utf8" });
  for (const line of out.trim().split("\n")) {
    const r = JSON.parse(line);
    raw.write(line + "\n");
    results.codec.push(r);
  }
}

// ---- 5: memory -----------------------------------------------------------------------------------

async function memoryRuns(args, what) {
  const v = [];
  for (let i = 0; i < opts.runs; i++) {
    const proc = start(exe("bench_memory"), args, { stdin: "ignore" });
    const lines = await proc.all();
    const code = await proc.exited;
    if (code !== 0 || !lines.length) throw new Error(`bench_memory ${args.join(" ")} failed`);
    raw.write(JSON.stringify(lines[0]) + "\n");
    v.push(lines[0].bytes_per);
  }
  log(`  memory: ${what} done`);
  return { median: median(v), p90: p90(v), max: Math.max(...v) };
}

async function benchMemory(results, server) {
  const n = 10000, sessions = 24;
  results.memory.push({ what: "pending", n, ...(await memoryRuns(["pending", String(n)], "pending")) });
  if (server)
    results.memory.push({ what: "session", n: sessions,
      ...(await memoryRuns(["sessions", server.url, String(sessions)], "sessions")) });
}

// ---- 6: the client's ceiling in byte mode -----------------------------------------------------------

function benchJson(args) {
  const out = execFileSync(exe("bench_subscription"), args, { encoding: "utf8",
    maxBuffer: 1 << 24 });
  const r = JSON.parse(out.trim().split("\n").pop());
  raw.write(JSON.stringify(r) + "\n");
  return r;
}

async function benchCeiling(results) {
  for (let i = 0; i < opts.runs; i++) results.ceiling.push(benchJson(["ceiling", "2000"]));
}

// ---- 7: end to end against the node-opcua server -------------------------------------------------

const E2E_INTERVAL = 1000, E2E_SECONDS = 4, TOOL = "uarc monitor --json";
// uarc's clients gather by default as the hub does (uarc_reverse_hub_config.gather_ms 0:
// automatic); run again with each of these settings, labelled (sessions > 1 only: one session's
// messages do not come spread out)
const E2E_GATHER = [["off", "gathering off (every wake-up handled at once: UARC_REVERSE_HUB_GATHER_OFF)"]];
const GATHERED = E2E_GATHER.map(([arg]) => `uarc, gather ${arg}`);
const E2E_CONFIGS = [{ sessions: 1, items: 10000 }, { sessions: 100, items: 100 }];

function runJson(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { err += d; });
    child.on("exit", (code) => {
      try {
        resolve(JSON.parse(out.split("\n").filter((l) => l.startsWith('{"bench"')).pop()));
      } catch {
        resolve({ failed: `${path.basename(cmd)} exited ${code}: ${err.trim().split("\n").pop()}` });
      }
    });
  });
}

async function benchE2e(results) {
  const args = [path.join(ROOT, "bench/server.mjs"), "--variables", "10000"];
  const server = start(process.execPath, args);
  const { endpoint_url: url } = await server.json(300000);
  log(`  node-opcua server with 10,000 variables at ${url}`);
  const clients = {
    uarc: (c) => runJson(exe("bench_subscription"), ["e2e", url, String(c.sessions),
      String(c.items), String(E2E_SECONDS), String(E2E_INTERVAL)]),
    ...Object.fromEntries(E2E_GATHER.map(([arg], i) => [GATHERED[i], (c) =>
      runJson(exe("bench_subscription"), ["e2e", url, String(c.sessions), String(c.items),
        String(E2E_SECONDS), String(E2E_INTERVAL), arg])])),
    "node-opcua": (c) => runJson(process.execPath, [path.join(ROOT, "bench/sub_node.mjs"), url,
      String(c.sessions), String(c.items), String(E2E_SECONDS), String(E2E_INTERVAL)]),
  };
  // open62541's client, where bench/CMakeLists.txt could build it (the peer is installed)
  if (fs.existsSync(exe("sub62541")))
    clients.open62541 = (c) => runJson(exe("sub62541"), [url, String(c.sessions), String(c.items),
      String(E2E_SECONDS), String(E2E_INTERVAL)]);
  else log("  bench/sub62541 is not built (open62541 missing): open62541's client is left out");
  // the tool, for one session: the issue's latency is to the JSON line (no CPU target: the line
  // is formatted and written, which the library clients do not do)
  const tool = path.join(opts.build, "tools/uarc/uarc");
  clients[TOOL] = (c) => runJson(exe("bench_subscription"), ["e2e-tool", tool, url,
    String(c.items), String(E2E_SECONDS), String(E2E_INTERVAL)]);
  for (const c of E2E_CONFIGS) {
    const names = Object.keys(clients).filter((n) => (n !== TOOL || c.sessions === 1) &&
      (!GATHERED.includes(n) || c.sessions > 1));
    const row = { ...c, samples: Object.fromEntries(names.map((n) => [n, []])), failures: [] };
    for (let r = 0; r < opts.e2eRuns; r++) {
      const order = r % 2 ? [...names].reverse() : names;
      for (const who of order) {
        const x = await clients[who](c);
        raw.write(JSON.stringify({ bench: "e2e", ...c, ...x, who }) + "\n");
        if (x.failed) row.failures.push(`${who}: ${x.failed}`);
        else row.samples[who].push(x);
        log(`  e2e ${c.sessions} x ${c.items}: ${who} run ${r + 1}/${opts.e2eRuns}` +
          (x.failed ? ` failed (${x.failed})` : `: ${f(x.cpu_s_per_million, 3)} CPU s per 1M, ` +
            `${fk(x.per_s)}/s, p50 ${f(x.p50_ms, 1)} ms`));
      }
    }
    results.e2e.push(row);
  }
  server.child.kill("SIGTERM");
  await server.exited;
}

// ---- 8: uarc monitor --json into a pipe ----------------------------------------------------------

async function benchPipe(results) {
  const tool = path.join(opts.build, "tools/uarc/uarc");
  for (let i = 0; i < opts.runs; i++)
    results.pipe.push(benchJson(["pipe", tool, "300000", "1000"]));
}

// ---- 9: memory per monitored item ----------------------------------------------------------------

async function benchItemMemory(results) {
  for (const nodes of ["numeric", "string"]) {
    const v = [];
    for (let i = 0; i < opts.runs; i++)
      v.push(benchJson(["memory", "100000", ...(nodes === "string" ? ["string"] : [])]));
    results.itemmem.push({ nodes, n: v[0].n, created: v.map((x) => x.bytes_per),
      valued: v.map((x) => x.bytes_per_valued), delivered: v.every((x) => x.delivered) });
  }
}

// ---- the report ----------------------------------------------------------------------------------

function machine() {
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown";
  const version = /#define UARC_VERSION\s+"([^"]+)"/.exec(
    fs.readFileSync(path.join(ROOT, "include/uarc/version.h"), "utf8"))?.[1];
  const cache = fs.readFileSync(path.join(opts.build, "CMakeCache.txt"), "utf8");
  const cc = /CMAKE_C_COMPILER:\w+=(.*)/.exec(cache)?.[1] ?? "cc";
  const buildType = /CMAKE_BUILD_TYPE:\w+=(.*)/.exec(cache)?.[1] ?? "?";
  const first = (cmd, args) => {
    try { return execFileSync(cmd, args, { encoding: "utf8" }).split("\n")[0].trim(); } catch { return "?"; }
  };
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cores: os.cpus().length,
    model,
    kernel: `${os.type()} ${os.release()}`,
    uarc: `${version} (${first("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"])}), ` +
      `${buildType}, ${first(cc, ["--version"])}`,
    node: process.version,
    nodeOpcua: JSON.parse(fs.readFileSync(requirePeer.resolve("node-opcua/package.json"),
      "utf8")).version,
    load: os.loadavg().map((x) => x.toFixed(2)).join(", "),
  };
}

const f = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "–");
const fk = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–");
const mark = (ok) => (ok ? "yes" : "**no**");
let stampText = "";
const stamp = () => stampText;

function table(results) {
  const out = [];
  const checks = [];
  if (results.connect.length) {
    out.push("### 1, 2. Connect, session, Read(i=2258), close — against one node-opcua server",
      "",
      "| what | uarc median | uarc p90 | node-opcua median | node-opcua p90 | uarc / node-opcua | target | held |",
      "|---|---:|---:|---:|---:|---:|---|---|");
    for (const r of results.connect) {
      const name = r.kind === "reverse" ? "1 reverse" : "2 forward";
      const u = r.uarc, n = r.node;
      const wall = u.wall_ms.median / n.wall_ms.median, cpu = u.cpu_ms.median / n.cpu_ms.median;
      const closeOk = u.close_ms.p90 <= 1;
      out.push(`| ${name}: wall ms per connection | ${f(u.wall_ms.median)} | ${f(u.wall_ms.p90)} | ` +
        `${f(n.wall_ms.median)} | ${f(n.wall_ms.p90)} | ${f(wall, 3)} | ≤ 0.3 × | ${mark(wall <= 0.3)} |`);
      out.push(`| ${name}: client CPU ms per connection (uarc: ${f(100 * u.sys_share, 0)} % in the kernel) | ${f(u.cpu_ms.median, 3)} | ${f(u.cpu_ms.p90, 3)} | ` +
        `${f(n.cpu_ms.median)} | ${f(n.cpu_ms.p90)} | ${f(cpu, 3)} | ≤ 0.3 ms and ≤ 0.05 × | ` +
        `${mark(u.cpu_ms.median <= 0.3 && cpu <= 0.05)} |`);
      out.push(`| ${name}: close call → socket closed, ms (max uarc ${f(u.close_ms.max, 3)}) | ` +
        `${f(u.close_ms.median, 3)} | ${f(u.close_ms.p90, 3)} | ${f(n.close_ms.median)} | ` +
        `${f(n.close_ms.p90)} | ${f(u.close_ms.median / n.close_ms.median, 3)} | ≤ 1 ms (p90) | ` +
        `${mark(closeOk)} |`);
      checks.push([`#${name[0]} wall`, wall <= 0.3], [`#${name[0]} CPU`, u.cpu_ms.median <= 0.3 && cpu <= 0.05],
        [`#${name[0]} close`, closeOk]);
    }
    const fails = results.connect.flatMap((r) => ["uarc", "node"].filter((w) => r[w].failed)
      .map((w) => `${r.kind} ${w}: ${r[w].failed} failed (${r[w].failures.join("; ")})`));
    out.push("", `Samples: ${results.connect.map((r) => `${r.kind} ${r.uarc.n} uarc / ${r.node.n} node-opcua`).join(", ")}` +
      (fails.length ? `; failures: ${fails.join(", ")}` : "; no failures") + ". " +
      "Both clients wait for the same server: uarc's own CPU is " +
      results.connect.map((r) => `${f(100 * r.uarc.cpu_ms.median / r.uarc.wall_ms.median, 1)} %`).join(" and ") +
      " of its wall time (reverse, forward); the rest is the server's work and loopback round " +
      "trips, which bound the wall-time ratio from below.", "");
  }
  if (results.listener.length) {
    out.push("### 3. Listener capacity: K connections in flight, each RHE → ERR → close",
      "",
      "Rate in answered hellos per second (median and p90 of the windows, p90 being the slower " +
      "10th percentile); latency RHE sent → answer received, per-window p50 and p99, median over " +
      "the windows (p90 of the windows in brackets).",
      "",
      "| K | idle | uarc hellos/s | minimal hellos/s | ratio | uarc p50 ms | minimal p50 ms | uarc p99 ms | minimal p99 ms | p99 ratio | held (≥ 0.8 ×, p99 ≤ 1.5 ×) |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (const r of results.listener) {
      const u = r.uarc, m = r.minimal;
      const ratio = u.rate.median / m.rate.median, p99 = u.p99.median / m.p99.median;
      const ok = ratio >= 0.8 && p99 <= 1.5;
      out.push(`| ${r.k} | ${r.idle} | ${fk(u.rate.median)} (${fk(u.rate.p90)}) | ` +
        `${fk(m.rate.median)} (${fk(m.rate.p90)}) | ${f(ratio)} | ${f(u.p50.median, 3)} | ` +
        `${f(m.p50.median, 3)} | ${f(u.p99.median, 3)} (${f(u.p99.p90, 3)}) | ` +
        `${f(m.p99.median, 3)} (${f(m.p99.p90, 3)}) | ${f(p99)} | ${mark(ok)} |`);
      checks.push([`#3 K=${r.k} idle=${r.idle}`, ok]);
    }
    const errors = results.listener.reduce((a, r) => a + r.uarc.errors + r.minimal.errors, 0);
    out.push("", `${results.listener[0].uarc.n} windows per target and row; ${errors} hellos ` +
      "answered with something other than ERR.", "");
  }
  if (results.codec.length) {
    out.push("### 4. Codec: 10,000 values per message, one core",
      "",
      "| what | MB/s median | MB/s p90 | ns/value median | ns/value p90 | target | held |",
      "|---|---:|---:|---:|---:|---|---|");
    const targets = { "ReadResponse encode": 1200, "ReadResponse decode (arena)": 600,
      "BrowseResponse encode": 500, "BrowseResponse decode (arena)": 300 };
    for (const r of results.codec) {
      const mbs = r.bytes / r.median_ns * 1e3, mbs90 = r.bytes / r.p90_ns * 1e3;
      const t = targets[r.what];
      out.push(`| ${r.what} | ${f(mbs, 0)} | ${f(mbs90, 0)} | ${f(r.median_ns / r.values, 1)} | ` +
        `${f(r.p90_ns / r.values, 1)} | ${t ? `≥ ${t} MB/s` : "—"} | ${t ? mark(mbs >= t) : ""} |`);
      if (t) checks.push([`#4 ${r.what}`, mbs >= t]);
    }
    out.push("");
  }
  if (results.memory.length) {
    out.push("### 5. Memory: RSS growth of the uarc process",
      "",
      "| what | bytes median | bytes p90 | max | target | held |",
      "|---|---:|---:|---:|---|---|");
    for (const r of results.memory) {
      const limit = r.what === "pending" ? 1024 : 256 * 1024;
      const name = r.what === "pending"
        ? `per pending connection (${fk(r.n)} pending)`
        : `per active session (${r.n} sessions, default buffers)`;
      out.push(`| ${name} | ${fk(r.median)} | ${fk(r.p90)} | ${fk(r.max)} | ≤ ${fk(limit)} | ` +
        `${mark(r.median <= limit)} |`);
      checks.push([`#5 ${r.what}`, r.median <= limit]);
    }
    out.push("");
  }
  if (results.fleet.length) {
    const fleet = fleetTable(results.fleet, opts.fleetSeconds, opts.fleetFrom ? "" : stamp());
    out.push(fleet.text);
    checks.push(...fleet.checks);
  }
  if (results.ceiling.length) {
    const cpu = results.ceiling.map((r) => r.per_cpu_s), wall = results.ceiling.map((r) => r.per_wall_s);
    const ok = median(cpu) >= 2e6;
    out.push("### 8. Subscription ceiling, byte mode: data changes delivered per second, one core",
      "", stamp(), "",
      "| what | median | p90 | target | held |",
      "|---|---:|---:|---|---|",
      `| notifications per CPU second | ${fk(median(cpu))} | ${fk(p90rate(cpu))} | ≥ 2,000,000 | ${mark(ok)} |`,
      `| notifications per wall second | ${fk(median(wall))} | ${fk(p90rate(wall))} | — |  |`,
      `| CPU ns per notification | ${f(1e9 / median(cpu), 1)} | ${f(1e9 / p90rate(cpu), 1)} | — |  |`,
      "", `${results.ceiling.length} runs of 2,000 messages × 1,000 data changes; every change ` +
      "delivered once (the run fails otherwise).", "");
    checks.push(["#8 ceiling", ok]);
  }
  if (results.e2e.length) {
    out.push("### 9. End to end against the node-opcua server: client CPU and latency", "", stamp(), "",
      "| sessions × items | client | notifications/s | CPU s per 1,000,000 | p50 ms | p99 ms | uarc CPU / client CPU | target | held |",
      "|---|---|---:|---:|---:|---:|---:|---|---|");
    for (const r of results.e2e) {
      const m = (who, k) => median((r.samples[who] ?? []).map((x) => x[k]));
      const u = m("uarc", "cpu_s_per_million");
      const name = `${r.sessions} × ${fk(r.items)}`;
      out.push(`| ${name} | uarc (default: automatic gathering) | ${fk(m("uarc", "per_s"))} | ${f(u, 3)} | ${f(m("uarc", "p50_ms"), 1)} | ` +
        `${f(m("uarc", "p99_ms"), 1)} | — | | |`);
      const gathered = GATHERED.filter((who) => r.samples[who]?.length);
      for (const who of gathered)
        out.push(`| ${name} | uarc, ${E2E_GATHER[GATHERED.indexOf(who)][1]} | ${fk(m(who, "per_s"))} | ${f(m(who, "cpu_s_per_million"), 3)} | ` +
          `${f(m(who, "p50_ms"), 1)} | ${f(m(who, "p99_ms"), 1)} | — | | |`);
      if (r.samples[TOOL]?.length)
        out.push(`| ${name} | \`${TOOL}\` (the tool; latency to the JSON line read from its pipe) | ` +
          `${fk(m(TOOL, "per_s"))} | ${f(m(TOOL, "cpu_s_per_million"), 3)} | ${f(m(TOOL, "p50_ms"), 1)} | ` +
          `${f(m(TOOL, "p99_ms"), 1)} | — | | |`);
      for (const [who, label, limit] of [["node-opcua", "node-opcua ClientSubscription", 0.05],
        ["open62541", "open62541 1.5.7 client (a thread per session)", 0.5]]) {
        if (!r.samples[who]?.length) {
          out.push(`| ${name} | ${label} | not run | | | | | ≤ ${limit} × | **not measured** |`);
          checks.push([`#9 ${r.sessions}x${r.items} vs ${who} (not measured)`, false]);
          continue;
        }
        const ratio = u / m(who, "cpu_s_per_million"), ok = ratio <= limit;
        out.push(`| ${name} | ${label} | ${fk(m(who, "per_s"))} | ${f(m(who, "cpu_s_per_million"), 3)} | ` +
          `${f(m(who, "p50_ms"), 1)} | ${f(m(who, "p99_ms"), 1)} | ${f(ratio, 3)} | ≤ ${limit} × | ${mark(ok)} |`);
        checks.push([`#9 ${r.sessions}x${r.items} vs ${who}`, ok]);
        for (const gw of gathered) {
          const gr = m(gw, "cpu_s_per_million") / m(who, "cpu_s_per_million"), gok = gr <= limit;
          out.push(`| ${name} | ${label}, against ${gw} | | | | | ${f(gr, 3)} | ≤ ${limit} × | ${mark(gok)} |`);
          checks.push([`#9 ${r.sessions}x${r.items} ${gw} vs ${who}`, gok]);
        }
      }
    }
    const fails = results.e2e.flatMap((r) => r.failures);
    out.push("", `Medians of ${opts.e2eRuns} runs per client and configuration, the clients taking ` +
      `turns against one server process; sampling and publishing every ${E2E_INTERVAL} ms, ` +
      `${E2E_SECONDS} s measured per run once every item had reported. ` +
      (fails.length ? `Failed runs: ${fails.join("; ")}. ` : "No failed runs. ") +
      "The node-opcua server is the bottleneck: it delivers fewer changes per second than its " +
      "items are sampled at, and its queues, not the clients, make the latencies.", "");
  }
  if (results.pipe.length) {
    const rate = results.pipe.map((r) => r.lines_per_s), us = results.pipe.map((r) => r.cpu_us_per_line);
    const ok = median(rate) >= 3e5;
    out.push("### 10. `uarc monitor --json` into a pipe", "", stamp(), "",
      "| what | median | p90 | target | held |", "|---|---:|---:|---|---|",
      `| lines per second (wall) | ${fk(median(rate))} | ${fk(p90rate(rate))} | ≥ 300,000 | ${mark(ok)} |`,
      `| tool CPU µs per line | ${f(median(us), 3)} | ${f(p90(us), 3)} | — |  |`,
      `| lines per tool CPU second | ${fk(1e6 / median(us))} | ${fk(1e6 / p90(us))} | — |  |`,
      "", `${results.pipe.length} runs of 300,000 lines, 1,000 items per message.`, "");
    checks.push(["#10 monitor --json lines/s", ok]);
  }
  if (results.itemmem.length) {
    out.push("### 11. Memory per monitored item", "", stamp(), "",
      "| node ids | items | bytes per item, created | p90 | bytes per item, with its last value | p90 |",
      "|---|---:|---:|---:|---:|---:|");
    for (const r of results.itemmem)
      out.push(`| ${r.nodes === "string" ? "ns=1;s=Variable000123 (14 characters)" : "ns=1;i=N"} | ` +
        `${fk(r.n)} | ${fk(median(r.created))} | ${fk(p90(r.created))} | ${fk(median(r.valued))} | ` +
        `${fk(p90(r.valued))} |`);
    out.push("", "No target: the figure is documented in include/uarc/subscription.h.", "");
  }
  if (results.secstorm.length) {
    const storm = securedStormTable(results.secstorm);
    out.push(storm.text);
    checks.push(...storm.checks);
  }
  if (results.churn) {
    const churn = churnTable(results.churn, stamp());
    out.push(churn.text);
    checks.push(...churn.checks);
  }
  return { text: out.join("\n"), checks };
}

// With --only, the sections not run this time are taken from the existing file (its blocks
// start with "### N" and end before the "Held:" line), with their held/missed entries.
function keepOld(text, checks) {
  const notRun = Object.entries(SECTIONS).filter(([s]) => !opts.only.has(s)).map(([, n]) => n);
  if (!notRun.length || !fs.existsSync(opts.out)) return { text, checks, kept: [] };
  const old = fs.readFileSync(opts.out, "utf8");
  const blocks = (t) => {
    const m = new Map();
    let key = null;
    for (const line of t.split("\n")) {
      if (/^(Held|Missed):/.test(line)) key = null;
      const h = /^### (\d+)/.exec(line);
      if (h) { key = h[1]; m.set(key, []); }
      if (key) m.get(key).push(line);
    }
    return m;
  };
  const now = blocks(text), before = blocks(old);
  const kept = notRun.filter((n) => before.has(n));
  for (const n of kept) now.set(n, before.get(n));
  const body = [...now.keys()].sort((a, b) => a - b).map((n) => now.get(n).join("\n")).join("\n");
  const section = (name) => /^#(\d+)/.exec(name)?.[1] === "2" ? "1" : /^#(\d+)/.exec(name)?.[1];
  const oldList = (label) => (new RegExp(`^${label}: (.*)\\.$`, "m").exec(old)?.[1] ?? "")
    // names may hold ", " themselves ("#7 N=1000 10 items/server, 1 Hz"): split before each "#"
    .split(/, (?=#)/).filter((x) => x && x !== "none" && kept.includes(section(x)));
  const all = [...checks, ...oldList("Held").map((x) => [x, true]),
    ...oldList("Missed").map((x) => [x, false])];
  // A file that already kept sections from an earlier run names that run's date.
  const date = /kept from (?:the previous run|earlier runs) \((?:the earliest )?([^;)]*)[;)]/.exec(old)?.[1] ??
    /^- Date: (.*)$/m.exec(old)?.[1] ?? "unknown";
  return { text: body, checks: all, kept, date };
}

function markdown(m, body, checks) {
  const held = checks.filter(([, ok]) => ok).map(([n]) => n);
  const missed = checks.filter(([, ok]) => !ok).map(([n]) => n);
  return [
    "# uarc benchmarks",
    "",
    "Written by `scripts/bench` (bench/run.mjs); do not edit by hand. Every figure is the median " +
    `and p90 of ${opts.runs} runs, each uarc figure taken in the same run as its reference, ` +
    "alternating between the two.",
    "",
    `- Date: ${m.date}`,
    `- Machine: ${m.cores} cores, ${m.model}, ${m.kernel}; load average at the end ${m.load}`,
    `- uarc ${m.uarc}`,
    `- node-opcua ${m.nodeOpcua} on Node.js ${m.node}`,
    "",
    "How each is measured:",
    "- 1: the node-opcua server (bench/server.mjs, re-dial delay 10 ms) dials a uarc listener and a " +
    "node-opcua `ClientReverseConnect`. From the server's socket being accepted to the socket " +
    "closed after CloseSession: HEL/ACK, OPN, CreateSession, ActivateSession, Read of i=2258, " +
    "CloseSession, CLO. uarc: `uarc_listener_accept` + `uarc_reverse_connect` + " +
    "`uarc_client_read_attribute` + `uarc_client_disconnect`; node-opcua: `connectReverse`, " +
    "`createSession`, `read`, `session.close`, `disconnect`. Client CPU: uarc " +
    "`CLOCK_THREAD_CPUTIME_ID`, node-opcua `process.cpuUsage()` (the whole process). " +
    "Close: from the close call (CloseSession included) to the socket closed.",
    "- 2: the same against the same server, dialing it (`uarc_client_connect`, `client.connect`).",
    "- 3: bench_listener: a C load generator keeps K connections in flight against a uarc " +
    "listener whose allowlist rejects the ServerUri, and against a minimal single-thread epoll " +
    "accept / read / answer / close loop, each in its own process, in alternating windows of " +
    "150 ms; with 200 silent connections held open to each in the idle rows.",
    "- 4: bench_codec (encode; decode into a reset arena, and into the heap for comparison).",
    "- 5: bench_memory in a fresh process per run: (RSS with n held − RSS before) / n.",
    "- 7: bench/fleet.mjs: fleetsim plays N servers dialing one `uarc listen --stay` at once " +
    "(each in its own process); time to all sessions up, RSS and CPU of the uarc process from /proc.",
    "- 8: bench_subscription ceiling: a byte-mode client (`uarc_client_start_bytes`) with one " +
    "subscription of 1,000 items; PublishResponses of 1,000 data changes (Int32, source and server " +
    "timestamps), encoded once by bench/fake_ua.h and fed whole to `uarc_client_receive_bytes()` as " +
    "the client asks for them; the client's PublishRequests are taken in the same thread. Data " +
    "changes delivered to the callback per second of the thread's CPU time.",
    "- 9: bench/server.mjs --variables 10000 (node-opcua; every read of ns=1;s=Vk is a new value " +
    "stamped with the time of the sample). uarc: bench_subscription e2e, all sessions in one thread " +
    "(event-loop API: one epoll set and a deadline heap, woken per client by `uarc_client_set_wake_callback`, as the reverse hub does; the loop sleeps until the next deadline or the end of the window); by default it gathers as the hub does (`uarc_reverse_hub_config.gather_ms` 0, automatic): after a wait that brought events the next pauses until the smallest `uarc_client_gather_ms()` of the clients after it, here 50 ms (1/20 of the 1 s publishing interval), none while a client waits for an answer other than Publish; `uarc, gathering off`: the same loop without pauses (`uarc listen --gather off`); node-opcua: bench/sub_node.mjs, `ClientSubscription` and " +
    "`ClientMonitoredItemGroup`; open62541: bench/sub62541.c, its 1.5.7 client, one thread per " +
    "session in `UA_Client_run_iterate` (waits of up to 1 s, shorter when its own timers are due), items created in batches of 500. CPU: the client process's whole CPU time over the window; latency: " +
    "source timestamp to the data callback, in all three clients on the same items (0, 16, 32, ... " +
    "of each session: reading the clock for every value cost a quarter of uarc's CPU at 1 × 10,000). " +
    "`uarc monitor --json` (1 session only): bench_subscription e2e-tool runs the tool with the 10,000 " +
    "nodes and reads its lines from a pipe; latency from a data line's source_timestamp (milliseconds) " +
    "to the read that brought the line, CPU the tool's scheduler time (/proc/PID/task/*/schedstat) " +
    "over the window; it formats and writes every line, so no CPU target applies to it.",
    "- 10: bench_subscription pipe: a fake server (bench/fake_ua.h on loopback) answers every " +
    "PublishRequest at once with 1,000 data changes; `uarc monitor URL <1,000 nodes> --json --count " +
    "300000` writes into a pipe read by the bench; lines from the first data line to the end, and " +
    "the tool's CPU time (wait4) per line.",
    "- 11: bench_subscription memory in a fresh process per run: a byte-mode session, a warm-up " +
    "subscription of 100 items, then (RSS with 100,000 items created − RSS before) / 100,000, and " +
    "again once every item has delivered one value.",
    "- 12: bench/fleet.mjs: fleetsim's N servers dial with Basic256Sha256 at once; time to the " +
    "N-th read and CPU per secured session of the uarc process from /proc.",
    "- 13: bench/churn.mjs: fleetsim's N servers up in one `uarc listen --stay`, then a fraction " +
    "of them restarts every minute; uarc's events per server against fleetsim's restarts, RSS and " +
    "descriptors from /proc.",
    ...(m.kept?.length ? ["", `Sections ${m.kept.join(", ")} are kept from earlier runs (the earliest ${m.keptDate}; ` +
      "a section with a line of its own saying when it ran was run then); the date and versions " +
      "above are those of the sections run now."] : []),
    "",
    body,
    `Held: ${held.join(", ") || "none"}.`,
    "",
    `Missed: ${missed.join(", ") || "none"}.`,
    "",
  ].join("\n");
}

// ---- main ----------------------------------------------------------------------------------------

const results = { connect: [], listener: [], codec: [], memory: [], fleet: [], ceiling: [], e2e: [],
  pipe: [], itemmem: [], secstorm: [], churn: null };
{
  const m0 = machine();
  stampText = `Run ${m0.date} on ${m0.cores} cores, ${m0.model}, ${m0.kernel} ` +
    `(uarc ${m0.uarc.split(",")[0]}).`;
}
let server = null;
const cleanup = () => server?.child.kill("SIGTERM");
process.on("exit", cleanup);
try {
  if (opts.only.has("codec")) {
    log("4. codec");
    await benchCodec(results);
  }
  if (opts.only.has("connect")) {
    log("1, 2. connect (node-opcua server starting: a few seconds)");
    server = await benchConnect(results);
  }
  if (opts.only.has("memory")) {
    log("5. memory");
    if (!server) server = await startServer([]);
    await benchMemory(results, server);
  }
  if (server) {
    server.child.kill("SIGTERM");
    await server.exited;
    server = null;
  }
  if (opts.only.has("listener")) {
    log("3. listener capacity");
    await benchListener(results);
  }
  if (opts.only.has("fleet") && opts.fleetFrom) {
    // The table again from the rows of an earlier run (its DIR/bench-raw.jsonl), not measured.
    results.fleet = fleetFrom;
    for (const r of fleetFrom) raw.write(JSON.stringify(r) + "\n");
  } else if (opts.only.has("fleet")) {
    log(`6. fleet (${opts.fleetSizes.join(", ")} servers; about a minute each)`);
    results.fleet = await benchFleet({ build: opts.build, sizes: opts.fleetSizes,
      seconds: opts.fleetSeconds, subscriptions: opts.fleetSubscriptions, log, raw });
  }
  if (opts.only.has("secstorm")) {
    log(`12. secured storm (${opts.stormSize} servers, Basic256Sha256)`);
    results.secstorm = await benchSecuredStorm({ build: opts.build, n: opts.stormSize, log, raw });
  }
  if (opts.only.has("churn")) {
    log(`13. churn soak (${opts.churnSize} servers, ${opts.churnMinutes} min)`);
    results.churn = await benchChurn({ build: opts.build, n: opts.churnSize,
      minutes: opts.churnMinutes, rate: opts.churnRate, log, raw });
  }
  if (opts.only.has("ceiling")) {
    log("8. subscription ceiling (byte mode)");
    await benchCeiling(results);
  }
  if (opts.only.has("itemmem")) {
    log("11. memory per monitored item");
    await benchItemMemory(results);
  }
  if (opts.only.has("pipe")) {
    log("10. uarc monitor --json into a pipe");
    await benchPipe(results);
  }
  if (opts.only.has("e2e")) {
    log("9. end to end against node-opcua (a node-opcua server with 10,000 variables: slow start)");
    await benchE2e(results);
  }
} catch (err) {
  log(`run.mjs: ${err?.stack ?? err}`);
  process.exitCode = 1;
}
const m = machine();
const merged = (() => { const t = table(results); return keepOld(t.text, t.checks); })();
m.kept = merged.kept;
m.keptDate = merged.date;
const md = markdown(m, merged.text + "\n", merged.checks);
process.stdout.write(md);
if (process.exitCode !== 1) {
  // bench/mqtt.mjs's section lives between its markers; this file is rewritten around it.
  const mqtt = fs.existsSync(opts.out) &&
    /<!-- mqtt -->[\s\S]*<!-- \/mqtt -->/.exec(fs.readFileSync(opts.out, "utf8"))?.[0];
  fs.writeFileSync(opts.out, mqtt ? `${md.trimEnd()}\n\n${mqtt}\n` : md);
  log(`written ${path.relative(process.cwd(), opts.out)}`);
}
raw.end();
process.exit(process.exitCode ?? 0);
