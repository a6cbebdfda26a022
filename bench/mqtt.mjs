// The MQTT sink's benchmark (scripts/bench --only mqtt): bench_sink (bench/bench_sink.c) feeds
// SERVERS subscriptions' NotificationMessages of VALUES data changes each into the tool's sinks:
// JSON Lines into a pipe (read and dropped by this process), and Part 14 JSON into a mosquitto
// broker started here on a loopback port, at QoS 1 and QoS 0; alternating, RUNS times each.
// Writes its section of bench/RESULTS.md between the markers <!-- mqtt --> and <!-- /mqtt -->.
//
//   node bench/mqtt.mjs --build DIR [--runs N] [--out FILE]
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startBroker } from "../tests/interop/broker.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const opts = { build: null, runs: 7, out: path.join(here, "RESULTS.md") };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const value = () => process.argv[++i];
  if (a === "--build") opts.build = value();
  else if (a === "--runs") opts.runs = Number(value());
  else if (a === "--out") opts.out = value();
  else { process.stderr.write(`mqtt.mjs: unknown argument ${a}\n`); process.exit(2); }
}
if (!opts.build) { process.stderr.write("mqtt.mjs: --build DIR is required\n"); process.exit(2); }
const BIN = path.join(opts.build, "bench", "bench_sink");
const SERVERS = 100, MESSAGES = 200, VALUES = 10;

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stdout.on("data", () => {}); // the pipe JSON Lines go into
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d) => { err += d; });
    child.on("close", (code) => {
      const line = err.trim().split("\n").find((l) => l.startsWith("{\"notifications\""));
      if (code !== 0 || !line) reject(new Error(`bench_sink ${args.join(" ")}: exit ${code}\n${err}`));
      else resolve(JSON.parse(line));
    });
  });
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const fmt = (x, d = 0) => x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

const broker = await startBroker();
const kinds = {
  "JSON Lines into a pipe": ["jsonl", String(SERVERS), String(MESSAGES), String(VALUES)],
  "MQTT QoS 1 into mosquitto": ["mqtt", broker.url, "1", String(SERVERS), String(MESSAGES), String(VALUES)],
  "MQTT QoS 0 into mosquitto": ["mqtt", broker.url, "0", String(SERVERS), String(MESSAGES), String(VALUES)],
};
const samples = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
try {
  for (let r = 0; r < opts.runs; r++) {
    for (const [kind, args] of Object.entries(kinds)) samples[kind].push(await run(args));
    process.stderr.write(`mqtt: run ${r + 1}/${opts.runs}\n`);
  }
} finally {
  await broker.stop();
}

// ---- end to end: open62541 servers dialing `uarc listen --monitor` --------------------------
// E2E_SERVERS open62541 peers (tests/peer62541, counter +1 every 10 ms, every change reported)
// dial one `uarc listen` after the other on the same port: JSON Lines into a pipe, MQTT QoS 1,
// MQTT QoS 0. The collector's CPU (utime + stime from /proc) over E2E_SECONDS, per 100,000
// notifications counted at the receiving end (stdout lines, or values at a subscriber).
const E2E_SERVERS = 20, E2E_SECONDS = 15;
const peerBin = path.join(here, "..", "build-peers", "bin", "peer62541");
const uarcBin = path.join(opts.build, "tools", "uarc", "uarc");
const e2e = {};
if (fs.existsSync(peerBin) && fs.existsSync(uarcBin)) {
  process.env.UARC_BIN = uarcBin;
  const { startListen } = await import("../tests/interop/helpers.mjs");
  const { startPeerProgram } = await import("../tests/peer/peer.mjs");
  const { freePort, subscribe } = await import("../tests/interop/broker.mjs");
  // utime + stime in ms (fields 14 and 15 of /proc/PID/stat, in ticks of 10 ms on Linux).
  const cpuOf = (pid) => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  };
  const broker2 = await startBroker();
  const port = await freePort();
  const uris = Array.from({ length: E2E_SERVERS }, (_, i) => `urn:bench:e2e${i}`);
  const allow = uris.flatMap((u) => ["--allow", u]);
  const monitor = ["--stay", "--monitor", "ns=1;s=Counter", "--interval", "100", "--sampling", "0", "--queue", "1000"];
  const peers = [];
  try {
    for (const [kind, extra] of [["JSON Lines into a pipe", []],
      ["MQTT QoS 1 into mosquitto", ["--mqtt", broker2.url, "--mqtt-qos", "1"]],
      ["MQTT QoS 0 into mosquitto", ["--mqtt", broker2.url, "--mqtt-qos", "0"]]]) {
      const sub = extra.length ? subscribe(broker2, "opcua/json/data/#") : null;
      if (sub) await sub.ready;
      const listener = await startListen([...allow, ...monitor, ...extra], { port });
      if (!peers.length) {
        for (const uri of uris) {
          peers.push(await startPeerProgram(peerBin, ["--uri", uri, "--reverse", `opc.tcp://127.0.0.1:${port}`,
            "--reconnect-interval", "100"], { uri, startTimeoutMs: 20000 }));
        }
      }
      await listener.waitCount((e) => e.event === "subscription" && e.state === "created", E2E_SERVERS, 60000);
      const count = () => sub
        ? sub.messages.reduce((n, m) => n + m.payload.Messages.length, 0)
        : listener.events.filter((e) => e.event === "data").length;
      const n0 = count(), c0 = cpuOf(listener.child.pid), t0 = Date.now();
      await new Promise((r) => setTimeout(r, E2E_SECONDS * 1000)); // a measuring window
      const n1 = count(), c1 = cpuOf(listener.child.pid), t1 = Date.now();
      e2e[kind] = { notifications: n1 - n0, cpu_ms: c1 - c0, seconds: (t1 - t0) / 1000 };
      await listener.stop();
      if (sub) await sub.stop();
      process.stderr.write(`mqtt: end to end, ${kind}: ${JSON.stringify(e2e[kind])}\n`);
    }
  } finally {
    for (const p of peers) await p.stop();
    await broker2.stop();
  }
}

const rows = [];
const cpuPer100k = {};
const rate = {};
for (const [kind, list] of Object.entries(samples)) {
  const perSecond = list.map((s) => s.notifications / s.wall_s);
  const cpu = list.map((s) => (s.cpu_s * 1000 * 100000) / s.notifications);
  cpuPer100k[kind] = quantile(cpu, 0.5);
  rate[kind] = quantile(perSecond, 0.5);
  rows.push(`| ${kind} | ${fmt(quantile(perSecond, 0.5))} | ${fmt(quantile(perSecond, 0.1))} | ` +
    `${fmt(quantile(cpu, 0.5), 1)} | ${fmt(quantile(cpu, 0.9), 1)} |`);
}
const base = cpuPer100k["JSON Lines into a pipe"];
const q1 = "MQTT QoS 1 into mosquitto";
const held = (ok) => (ok ? "yes" : "**no**");
const mosquittoVersion = await new Promise((resolve) => {
  const c = spawn("mosquitto", ["-h"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  c.stdout.on("data", (d) => { out += d; });
  c.on("close", () => resolve((/mosquitto version (\S+)/.exec(out) ?? [])[1] ?? "?"));
});
const section = [
  "<!-- mqtt -->",
  "### 6. Data sinks: JSON Lines and MQTT (scripts/bench --only mqtt)",
  "",
  `${new Date().toISOString().replace(/\.\d+Z$/, "Z")}, ${os.cpus().length} cores, mosquitto ${mosquittoVersion} on loopback, ` +
    `${opts.runs} runs of each, alternating. bench_sink feeds ${SERVERS} servers' subscriptions ${MESSAGES} ` +
    `NotificationMessages of ${VALUES} Int32 data changes each (${fmt(SERVERS * MESSAGES * VALUES)} notifications) ` +
    "into the tool's sink, as the subscription callbacks of `uarc listen --monitor` do, with the sink's poll " +
    "loop between messages. MQTT: one Part 14 JSON message per NotificationMessage; the clock stops when " +
    "the last one was acknowledged (QoS 1: PUBACK; QoS 0: written to the socket). The OPC UA side " +
    "(decoding PublishResponses) is not in these figures: they are the cost of the sink alone. " +
    "CPU: the bench process (user + system).",
  "",
  "| sink | notifications/s median | p10 | CPU ms per 100,000 notifications median | p90 |",
  "|---|---:|---:|---:|---:|",
  ...rows,
  "",
  ...(Object.keys(e2e).length ? [
    `End to end: ${E2E_SERVERS} open62541 1.5.7 servers (tests/peer62541, a counter changing every 10 ms, ` +
      "every change reported, publishing interval 100 ms) dial `uarc listen --monitor`; the collector's CPU " +
      `(utime + stime, 10 ms ticks) over ${E2E_SECONDS} s per 100,000 notifications counted at the receiving end ` +
      "(stdout lines; values at a mosquitto_sub subscriber). One window each, so a rough figure.",
    "",
    "| sink | notifications/s | collector CPU ms per 100,000 notifications |",
    "|---|---:|---:|",
    ...Object.entries(e2e).map(([kind, r]) =>
      `| ${kind} | ${fmt(r.notifications / r.seconds)} | ${fmt((r.cpu_ms * 100000) / Math.max(1, r.notifications), 0)} |`),
    "",
  ] : []),
  "| target | measured | held |",
  "|---|---|---|",
  `| MQTT QoS 1 CPU ≤ 2 × JSON Lines CPU | ${(cpuPer100k[q1] / base).toFixed(2)} × | ${held(cpuPer100k[q1] <= 2 * base)} |`,
  `| ≥ 100,000 notifications/s into mosquitto at QoS 1 | ${fmt(rate[q1])} /s | ${held(rate[q1] >= 100000)} |`,
  "<!-- /mqtt -->",
].join("\n");
process.stdout.write(section + "\n");
let md = fs.existsSync(opts.out) ? fs.readFileSync(opts.out, "utf8") : "# uarc benchmarks\n";
const re = /<!-- mqtt -->[\s\S]*<!-- \/mqtt -->/;
md = re.test(md) ? md.replace(re, section) : `${md.trimEnd()}\n\n${section}\n`;
fs.writeFileSync(opts.out, md);
process.stderr.write(`written ${path.relative(process.cwd(), opts.out)}\n`);
process.exit(0);
