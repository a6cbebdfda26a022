// Real infrastructure for the MQTT tests, each started by the test on a loopback port with a
// generated configuration in a temporary folder and stopped after: a mosquitto broker, a
// mosquitto_sub subscriber, an HAProxy in TCP mode. Debian packages mosquitto,
// mosquitto-clients and haproxy (scripts/install-deps).
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const live = new Set();
let tmpRoot;
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
  if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
});

function tmpDir(name) {
  tmpRoot ??= fs.mkdtempSync(path.join(os.tmpdir(), "uarc-mqtt-"));
  return fs.mkdtempSync(path.join(tmpRoot, `${name}-`));
}

/** A port that was free a moment ago (the kernel's choice). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port, ms = 10000, what = "port") {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => { socket.destroy(); resolve(true); });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${what} ${port} does not accept connections`);
    await new Promise((resolve) => setTimeout(resolve, 20)); // polling a port: nothing to wait on
  }
}

function spawnTracked(command, args, name) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => { output += d; });
  const exited = new Promise((resolve) => child.on("close", (code, signal) => {
    live.delete(child);
    resolve({ code, signal });
  }));
  return { child, exited, output: () => output, name };
}

async function stopChild(proc, signal = "SIGTERM") {
  if (proc.child.exitCode === null && proc.child.signalCode === null) {
    proc.child.kill(signal);
    const timer = setTimeout(() => proc.child.kill("SIGKILL"), 5000);
    await proc.exited;
    clearTimeout(timer);
  }
}

/**
 * A mosquitto broker on 127.0.0.1. persistence: sessions and queued messages survive a restart
 * (saved on SIGTERM). Returns { port, url, start(), stop() }; start() again after stop() brings
 * it back on the same port with the same data.
 */
export async function startBroker({ persistence = false } = {}) {
  const dir = tmpDir("mosquitto");
  // Started as root, mosquitto runs as the user mosquitto: it must reach and write the folder.
  fs.chmodSync(path.dirname(dir), 0o711);
  fs.chmodSync(dir, 0o777);
  const port = await freePort();
  const conf = path.join(dir, "mosquitto.conf");
  fs.writeFileSync(conf, [
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    `persistence ${persistence}`,
    `persistence_location ${dir}/`,
    "max_queued_messages 100000",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "",
  ].join("\n"));
  const broker = { port, url: `mqtt://127.0.0.1:${port}`, proc: null };
  broker.start = async () => {
    broker.proc = spawnTracked("mosquitto", ["-c", conf], "mosquitto");
    await waitForPort(port, 10000, "mosquitto");
  };
  broker.stop = async (signal) => {
    if (broker.proc) await stopChild(broker.proc, signal);
  };
  await broker.start();
  return broker;
}

/**
 * mosquitto_sub on `topic` at QoS 1 with a persistent session (clean session off, fixed client
 * id): what is published while it is away is kept for it by the broker, and it reconnects by
 * itself. messages: [{ topic, payload (parsed JSON) }] in arrival order. ready resolves on the
 * SUBACK.
 */
export function subscribe(broker, topic, { id = `sub-${process.pid}-${Date.now()}` } = {}) {
  // stdbuf: mosquitto_sub writes through stdio, fully buffered into a pipe.
  const proc = spawnTracked("stdbuf", ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", String(broker.port), "-t", topic,
    "-q", "1", "-c", "-i", id, "-v", "-d"], "mosquitto_sub");
  const messages = [];
  const waiters = new Set();
  let pending = "";
  let resolveReady;
  const ready = new Promise((resolve) => { resolveReady = resolve; });
  proc.child.stdout.on("data", (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.startsWith("Client ")) {
        if (line.includes("received SUBACK")) resolveReady();
        continue;
      }
      const space = line.indexOf(" ");
      if (space < 0) continue;
      try {
        messages.push({ topic: line.slice(0, space), payload: JSON.parse(line.slice(space + 1)) });
      } catch {
        // a debug line continued (Subscribed (mid: ...)), not a message
      }
    }
    for (const w of waiters) w();
  });
  function waitFor(pred, ms = 20000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = messages.find(pred);
        if (found) { cleanup(); resolve(found); }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`mosquitto_sub: timed out after ${ms} ms; ${messages.length} messages, last: ` +
          JSON.stringify(messages.at(-1))));
      }, ms);
      const cleanup = () => { clearTimeout(timer); waiters.delete(check); };
      waiters.add(check);
      check();
    });
  }
  return { messages, ready, waitFor, stop: () => stopChild(proc) };
}

/** HAProxy in TCP mode on a free port in front of `backends` (ports), health-checked. */
export async function startHaproxy(backends, { balance = "roundrobin" } = {}) {
  const dir = tmpDir("haproxy");
  const port = await freePort();
  const conf = path.join(dir, "haproxy.cfg");
  fs.writeFileSync(conf, [
    "global",
    "  maxconn 4096",
    "defaults",
    "  mode tcp",
    "  timeout connect 1s",
    "  timeout client 1h",
    "  timeout server 1h",
    "  retries 3",
    "  option redispatch",
    "frontend opcua",
    `  bind 127.0.0.1:${port}`,
    "  default_backend collectors",
    "backend collectors",
    `  balance ${balance}`,
    ...backends.map((p, i) => `  server c${i} 127.0.0.1:${p} check inter 200 fall 1 rise 1`),
    "",
  ].join("\n"));
  const proc = spawnTracked("haproxy", ["-f", conf, "-db"], "haproxy");
  await waitForPort(port, 10000, "haproxy");
  return { port, url: `opc.tcp://127.0.0.1:${port}`, stop: () => stopChild(proc), output: proc.output };
}

/** The counter values of ua-data messages, deduplicated by (PublisherId, MessageId), in order of
 * (subscription, sequence number) as they first arrived. */
export function counterValues(messages, publisherId) {
  const seen = new Set();
  const values = [];
  for (const { payload } of messages) {
    if (payload.MessageType !== "ua-data" || payload.PublisherId !== publisherId) continue;
    if (seen.has(payload.MessageId)) continue;
    seen.add(payload.MessageId);
    for (const m of payload.Messages) {
      for (const dv of Object.values(m.Payload)) values.push(dv.Value);
    }
  }
  return values;
}

/**
 * What a consumer knows of one server from the broker: per subscription id, the sequence numbers
 * of its ua-data messages (deduplicated, sorted) and the counter values in them; the gaps its
 * status messages announced ({ id, from, to (null: open-ended) }); its states in order.
 */
export function serverRecord(messages, publisherId) {
  const streams = new Map();
  const seen = new Set();
  const gaps = [];
  const states = [];
  for (const { payload } of messages) {
    if (payload.PublisherId !== publisherId) continue;
    if (payload.MessageType === "ua-status") {
      states.push(payload);
      if (payload.State === "gap") gaps.push({ id: String(payload.SubscriptionId), from: payload.From, to: payload.To });
      continue;
    }
    if (payload.MessageType !== "ua-data" || seen.has(payload.MessageId)) continue;
    seen.add(payload.MessageId);
    const [id, seq] = payload.MessageId.split(";").slice(-2);
    if (!streams.has(id)) streams.set(id, { seqs: [], values: [] });
    const s = streams.get(id);
    s.seqs.push(Number(seq));
    for (const m of payload.Messages) for (const dv of Object.values(m.Payload)) s.values.push(dv.Value);
  }
  for (const s of streams.values()) s.seqs.sort((x, y) => x - y);
  return { streams, gaps, states };
}

/** Sequence numbers of subscription `id` from 1 (or `from`) to its last that the broker lacks
 * and no gap names: must be none. */
export function unexplained(record, id, from = 1) {
  const s = record.streams.get(id);
  if (!s) return [];
  const have = new Set(s.seqs);
  const inGap = (n) => record.gaps.some((g) => g.id === id && n >= g.from && (g.to === null || n <= g.to));
  const missing = [];
  for (let n = from; n <= s.seqs.at(-1); n++) if (!have.has(n) && !inGap(n)) missing.push(n);
  return missing;
}
