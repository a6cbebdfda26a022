// fleetsim (tools/fleetsim) against the uarc tool: N simulated servers dial one `uarc listen --stay`.
// Every test waits for events, never for time; chaos draws use a fixed --seed.
//   FLEETSIM_BIN  the simulator (set by tests/interop/CMakeLists.txt)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startListen } from "./helpers.mjs";

const FLEETSIM_BIN = process.env.FLEETSIM_BIN;
if (!FLEETSIM_BIN) throw new Error("FLEETSIM_BIN is not set: run through ctest");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-fleetsim-"));
const procs = [];
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

function allowFile(n, prefix = "urn:fleetsim:") {
  const file = path.join(tmp, `allow-${n}-${procs.length}.txt`);
  fs.writeFileSync(file, Array.from({ length: n }, (_, i) => `${prefix}${i}\n`).join(""));
  return file;
}

/** Starts fleetsim with ARGS; its JSON lines (stderr: stats, chaos) are kept in `stats`. */
function startFleet(args) {
  const child = spawn(FLEETSIM_BIN, ["--stats-ms", "500", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  const stats = [];
  const waiters = new Set();
  let stderr = "";
  let pending = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    stderr += d;
    pending += d;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try { stats.push(JSON.parse(line)); } catch { /* not a stats line: kept in stderr */ }
    }
    for (const w of waiters) w();
  });
  const exited = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  const proc = {
    child, stats, exited,
    stderr: () => stderr,
    /** The first line matching `pred`. */
    waitFor: (pred, ms) => new Promise((resolve, reject) => {
      const check = () => {
        const x = stats.find(pred);
        if (x) { done(); resolve(x); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`fleetsim: not within ${ms} ms\n${stderr}`)); }, ms);
      const done = () => { clearTimeout(timer); waiters.delete(check); };
      waiters.add(check);
      check();
    }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
  procs.push(proc);
  return proc;
}

/** uarc listen and fleetsim, the simulator dialing the listener. */
async function fleet(n, listenArgs, fleetArgs) {
  const listener = await startListen(["--allow-file", allowFile(n), "--stay", ...listenArgs]);
  procs.push(listener);
  const sim = startFleet(["--servers", String(n), "--target", `127.0.0.1:${listener.port}`,
    ...fleetArgs]);
  const describe = () => `${listener.describe()}\n--- fleetsim stderr:\n${sim.stderr()}`;
  return { listener, sim, describe };
}

/** Counter values of `server` from data events, in arrival order. */
const counterValues = (events, server) => events
  .filter((e) => e.event === "data" && e.server_uri === server && e.node === "ns=1;s=Counter")
  .map((e) => e.value);

test("20 servers dial one `uarc listen --stay --read`: every server is read", async () => {
  const { listener, sim, describe } = await fleet(20,
    ["--read", "ns=1;s=Counter", "--read", "i=2258", "--browse", "i=85"], ["--items", "3"]);
  const reads = await listener.waitCount(
    (e) => e.event === "read" && e.node === "ns=1;s=Counter", 20, 20000);
  const servers = new Set(reads.map((e) => e.server_uri));
  assert.equal(servers.size, 20, describe());
  for (const e of reads) assert.equal(e.status, "Good", describe());
  const browses = await listener.waitCount((e) => e.event === "browse", 20, 20000);
  for (const e of browses) {
    assert.deepEqual(e.references.map((r) => r.node),
      ["i=2253", "ns=1;s=Counter", "ns=1;i=1000", "ns=1;i=1001", "ns=1;i=1002"], describe());
  }
  const times = listener.events.filter((e) => e.event === "read" && e.node === "i=2258");
  for (const e of times) assert.equal(e.type, "DateTime", describe());
  assert.equal(listener.events.filter((e) => e.event === "error").length, 0, describe());
  await listener.stop();
  await sim.stop();
});

test("20 secured servers (Basic256Sha256, SignAndEncrypt) with a trust list: every server is read", async () => {
  // fleetsim writes each server's certificate before it dials; they are the client's trust list.
  const certs = fs.mkdtempSync(path.join(tmp, "certs-"));
  const { listener, sim, describe } = await fleet(20,
    ["--read", "ns=1;s=Counter", "--security-policy", "Basic256Sha256",
      "--security-mode", "SignAndEncrypt", "--trust-list", certs],
    ["--security-policy", "Basic256Sha256", "--certificate-dir", certs, "--redial-ms", "100"]);
  const reads = await listener.waitCount(
    (e) => e.event === "read" && e.node === "ns=1;s=Counter", 20, 60000);
  assert.equal(new Set(reads.map((e) => e.server_uri)).size, 20, describe());
  for (const e of reads) assert.equal(e.status, "Good", describe());
  const connected = listener.events.filter((e) => e.event === "connected");
  for (const e of connected) assert.equal(e.security_policy, "Basic256Sha256", describe());
  assert.equal(listener.events.filter((e) => e.event === "error").length, 0, describe());
  await listener.stop();
  await sim.stop();
  assert.equal(sim.stats.at(-1).protocol_errors, 0, describe());
});

// --gather 50: the tool leaves the hub's descriptor out of its wait for 50 ms after each wake-up
// with data, then takes all that came meanwhile in one round. This checks that nothing is lost,
// repeated or reordered that way (the pauses themselves are test_hub_gather's).
for (const gather of [[], ["--gather", "50"]]) {
  const name = `--monitor${gather.length ? ` ${gather.join(" ")}` : ""}`;
  test(`${name}: every server's counter arrives, each value once and in order`, async () => {
    const { listener, sim, describe } = await fleet(5,
      ["--monitor", "ns=1;s=Counter", "--interval", "100", "--queue", "100", ...gather], ["--rate", "20"]);
    for (let i = 0; i < 5; i++) {
      await listener.waitCount((e) => e.event === "data" && e.server_uri === `urn:fleetsim:${i}`,
        20, 20000);
    }
    for (let i = 0; i < 5; i++) {
      const v = counterValues(listener.events, `urn:fleetsim:${i}`);
      for (let k = 1; k < v.length; k++) assert.equal(v[k], v[k - 1] + 1, `server ${i}: ${v}\n${describe()}`);
    }
    assert.equal(listener.events.filter((e) => e.event === "gap").length, 0, describe());
    await listener.stop();
    await sim.stop();
  });
}

test("chaos drop: a PublishResponse lost with the connection is republished, no value lost", async () => {
  // 60 drops per minute per server: a connection lives about a second.
  const { listener, sim, describe } = await fleet(4,
    ["--monitor", "ns=1;s=Counter", "--interval", "100", "--queue", "100"],
    ["--rate", "10", "--drop-per-min", "60", "--redial-ms", "100", "--seed", "42"]);
  await listener.waitCount((e) => e.event === "subscription" && e.state === "resumed", 6, 30000);
  const resumed = listener.events.filter((e) => e.event === "connected" && e.session === "resumed");
  assert.ok(resumed.length >= 6, describe());
  // After a resume, data keeps coming for that server.
  const last = listener.events.filter((e) => e.event === "subscription" && e.state === "resumed").at(-1);
  await listener.waitFor((e) => e.event === "data" && e.server_uri === last.server_uri &&
    e._at >= last._at, 20000);
  await listener.stop();
  await sim.stop();
  // Each drop lost a PublishResponse in flight: uarc asked for it again.
  assert.ok(sim.stats.at(-1).drops >= 6, describe());
  assert.ok(sim.stats.at(-1).republishes >= 1, describe());
  for (let i = 0; i < 4; i++) {
    const v = counterValues(listener.events, `urn:fleetsim:${i}`);
    for (let k = 1; k < v.length; k++) assert.equal(v[k], v[k - 1] + 1, `server ${i}: ${v}\n${describe()}`);
  }
  assert.equal(listener.events.filter((e) => e.event === "gap").length, 0, describe());
});

test("chaos restart: the server forgot everything; the subscription is recreated", async () => {
  const { listener, sim, describe } = await fleet(4,
    ["--monitor", "ns=1;s=Counter", "--interval", "100"],
    ["--rate", "10", "--restart-per-min", "60", "--redial-ms", "100", "--seed", "7"]);
  const [recreated] = await listener.waitCount(
    (e) => e.event === "subscription" && e.state === "recreated", 1, 30000);
  const connected = listener.events.filter((e) => e.event === "connected" && e.session === "new");
  assert.ok(connected.length >= 1, describe());
  // The new subscription delivers, counting from the restart again.
  await listener.waitFor((e) => e.event === "data" && e.server_uri === recreated.server_uri &&
    e._at >= recreated._at, 20000);
  await listener.stop();
  await sim.stop();
  assert.ok(sim.stats.at(-1).restarts >= 1, describe());
});

test("--chaos-paused: no chaos until SIGUSR1; --chaos-log names each restarted server", async () => {
  // One restart per server per second once on: 4 servers over 2 s would make about 8.
  const { listener, sim, describe } = await fleet(4, ["--read", "i=2258"],
    ["--restart-per-min", "60", "--redial-ms", "100", "--chaos-paused", "--chaos-log", "--seed", "5"]);
  await listener.waitCount((e) => e.event === "read", 4, 20000);
  const quiet = await sim.waitFor((x) => x.event === "stats" && x.t_ms >= 2000, 20000);
  assert.equal(quiet.restarts, 0, describe());
  assert.equal(sim.stats.filter((x) => x.event === "chaos").length, 0, describe());
  sim.child.kill("SIGUSR1");
  const chaos = await sim.waitFor((x) => x.event === "chaos", 20000);
  assert.equal(chaos.kind, "restart", describe());
  // The named server is the one that comes back with a new session.
  await listener.waitFor((e) => e.event === "connected" && e.session === "new" &&
    e.server_uri === `urn:fleetsim:${chaos.server}`, 20000);
  await listener.stop();
  await sim.stop();
  const restarts = sim.stats.filter((x) => x.event === "chaos" && x.kind === "restart").length;
  assert.equal(sim.stats.filter((x) => x.event === "stats").at(-1).restarts, restarts, describe());
});

test("chaos silent and garbage: the collector ends those connections and resumes the sessions", async () => {
  const { listener, sim, describe } = await fleet(4,
    ["--monitor", "ns=1;s=Counter", "--interval", "100", "--keepalive", "300",
      "--request-timeout", "600"],
    ["--rate", "10", "--silent", "20", "--garbage", "20", "--slow-ms", "20", "--redial-ms", "100",
      "--seed", "11"]);
  const ended = (reason) => (e) => e.event === "disconnected" && e.reason === reason;
  await listener.waitFor(ended("keep-alive timeout"), 30000);
  const [garbled] = await listener.waitCount(ended("protocol violation"), 1, 30000);
  // The server whose bytes were garbage comes back with its session and subscription.
  await listener.waitFor((e) => e.event === "subscription" && e.state === "resumed" &&
    e.server_uri === garbled.server_uri && e._at >= garbled._at, 20000);
  await listener.stop();
  await sim.stop();
  const last = sim.stats.at(-1);
  assert.ok(last.silenced >= 1 && last.garbage >= 1, describe());
});
