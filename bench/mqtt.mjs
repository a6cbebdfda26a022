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
