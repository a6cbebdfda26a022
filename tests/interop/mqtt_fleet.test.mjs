// Scale-out with takeover: 200 simulated servers (tools/fleetsim) dial a real HAProxy in front of
// two `uarc listen --monitor --mqtt` collectors; one mosquitto broker. Every server lands on
// exactly one collector and its data reaches the broker; then one collector is killed. Its
// servers re-dial through HAProxy to the other, which takes each subscription over: fleetsim
// transfers subscriptions whatever the identity (open62541 refuses anonymous over None: that path
// is in mqtt_scale.test.mjs), so the stream goes on under the same SubscriptionId, the messages
// the server still held are republished, and numbers neither on the broker nor republished are
// an explicit gap. Per server: every sequence number is on the broker or inside a gap, and every
// counter value from the first to the last is on the broker unless a gap was reported.
//
// HAProxy balances round robin: every simulated server dials from 127.0.0.1.
//   FLEETSIM_BIN  the simulator (set by tests/interop/CMakeLists.txt)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startListen } from "./helpers.mjs";
import { serverRecord, startBroker, startHaproxy, subscribe, unexplained } from "./broker.mjs";

const FLEETSIM_BIN = process.env.FLEETSIM_BIN;
if (!FLEETSIM_BIN) throw new Error("FLEETSIM_BIN is not set: run through ctest");

const SERVERS = 200;
const REDIAL_MS = 500;
const MONITOR = ["--monitor", "ns=1;s=Counter", "--interval", "200", "--sampling", "0", "--queue", "1000"];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-mqtt-fleet-"));
const procs = [];
after(async () => {
  for (const p of procs) await p.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function startFleet(args) {
  const child = spawn(FLEETSIM_BIN, ["--stats-ms", "0", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  return {
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

async function takeover(statusArgs, { exact }) {
  const uris = Array.from({ length: SERVERS }, (_, i) => `urn:fleetsim:${i}`);
  const allowFile = path.join(tmp, "allow.txt");
  fs.writeFileSync(allowFile, uris.map((u) => `${u}\n`).join(""));
  const broker = await startBroker();
  procs.push(broker);
  const sub = subscribe(broker, "opcua/#");
  procs.push(sub);
  await sub.ready;
  const collector = async (id) => {
    const c = await startListen(["--allow-file", allowFile, "--stay", ...MONITOR, "--mqtt", broker.url,
      "--mqtt-client-id", id, ...statusArgs]);
    procs.push(c);
    return c;
  };
  const a = await collector("collector-a");
  const b = await collector("collector-b");
  const lb = await startHaproxy([a.port, b.port]);
  procs.push(lb);
  const fleet = startFleet(["--servers", String(SERVERS), "--target", `127.0.0.1:${lb.port}`, "--items", "1",
    "--rate", "10", "--redial-ms", String(REDIAL_MS)]);
  procs.push(fleet);
  const describe = () => `--- fleetsim:\n${fleet.stderr()}`;

  // Every server's data on the broker, each server on exactly one collector.
  const dataFrom = new Map(); // PublisherId -> ua-data messages seen
  let counted = 0;
  const countData = () => {
    for (; counted < sub.messages.length; counted++) {
      const p = sub.messages[counted].payload;
      if (p.MessageType === "ua-data") dataFrom.set(p.PublisherId, (dataFrom.get(p.PublisherId) ?? 0) + 1);
    }
  };
  const allHave = (n, list) => { countData(); return list.every((u) => (dataFrom.get(u) ?? 0) >= n); };
  await sub.waitFor(() => allHave(5, uris), 40000).catch((e) => { throw new Error(`${e.message}\n${describe()}`); });
  const connected = (proc, uri) => proc.events.some((e) => e.event === "connected" && e.server_uri === uri);
  for (const uri of uris) {
    assert.equal(connected(a, uri) + connected(b, uri), 1, `${uri} is served by exactly one collector`);
  }
  const moved = uris.filter((uri) => connected(a, uri));
  assert.ok(moved.length > 0 && moved.length < SERVERS, `round robin gave collector a ${moved.length}`);

  // Collector a dies without a word; its servers re-dial (every REDIAL_MS) through HAProxy to b,
  // which finds their subscriptions in the retained status and transfers them.
  const before = new Map(moved.map((u) => [u, dataFrom.get(u)]));
  a.child.kill("SIGKILL");
  await sub.waitFor((m) => m.topic === "opcua/json/status/collector-a" && m.payload.State === "offline", 20000);
  for (const uri of moved) await b.waitFor((e) => e.event === "connected" && e.server_uri === uri, 20000);
  await sub.waitFor(() => { countData(); return moved.every((u) => dataFrom.get(u) >= before.get(u) + 5); }, 30000);
  await fleet.stop();
  await b.stop();

  let republishedOrContinuous = 0, gapNumbers = 0, gapDelivered = 0;
  for (const uri of uris) {
    const record = serverRecord(sub.messages, uri);
    const ids = [...record.streams.keys()];
    assert.equal(ids.length, 1, `${uri}: one subscription throughout (taken over, not created again): ${ids}`);
    const [id] = ids;
    assert.deepEqual(unexplained(record, id), [], `${uri}: numbers neither on the broker nor in a gap`);
    // Counter values: consecutive, except across a reported gap (the initial value a transfer
    // sends again may repeat one).
    const values = record.streams.get(id).values;
    const gaps = record.gaps.filter((g) => g.id === id);
    for (let i = 1; i < values.length; i++) {
      if (values[i] <= values[i - 1] + 1) continue;
      assert.ok(gaps.length > 0, `${uri}: value ${values[i]} after ${values[i - 1]} and no gap reported`);
    }
    const have = new Set(record.streams.get(id).seqs);
    for (const g of gaps) {
      for (let n = g.from; n <= (g.to ?? g.from); n++) {
        gapNumbers++;
        if (have.has(n)) gapDelivered++;
      }
    }
    if (moved.includes(uri)) {
      assert.ok(record.states.some((s) => s.State === "transferred" && String(s.SubscriptionId) === id),
        `${uri}: no status 'transferred': ${JSON.stringify(record.states.slice(-5))}`);
      if (!gaps.length) republishedOrContinuous++;
    }
    if (exact) {
      // The status named every message the server had forgotten: nothing to report.
      assert.deepEqual(gaps, [], `${uri}: a gap although the status was exact`);
      const seqs = record.streams.get(id).seqs;
      assert.equal(seqs.length, seqs.at(-1) - seqs[0] + 1, `${uri}: sequence numbers missing`);
      for (let i = 1; i < values.length; i++) {
        assert.ok(values[i] <= values[i - 1] + 1, `${uri}: value ${values[i]} after ${values[i - 1]}`);
      }
    }
  }
  console.log(`moved ${moved.length} servers; ${republishedOrContinuous} without a gap; ` +
    `${gapNumbers} sequence numbers reported as gaps, ${gapDelivered} of them on the broker all the same`);
  for (const p of procs.splice(0)) await p.stop();
}

test("200 fleetsim servers, HAProxy, two collectors (--mqtt-status-ms 0): one killed, the other takes its subscriptions over without a gap", async () => {
  await takeover(["--mqtt-status-ms", "0"], { exact: true });
});

test("the same with the default status refresh (1 s): every number on the broker or inside a reported gap", async () => {
  await takeover([], { exact: false });
});
