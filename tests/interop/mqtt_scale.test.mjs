// Several collectors behind one address: a real HAProxy (TCP mode, health checks) in front of two
// `uarc listen --monitor --mqtt` instances, open62541 servers (tests/peer62541, light enough to
// run several) dialing the HAProxy address, one mosquitto broker. Every server must land on
// exactly one instance and all its data reach the broker; when one instance is killed, its
// servers come back through HAProxy on the other, and each one's data shows either no loss or an
// explicit gap: the other collector tries to take the old subscription over (TransferSubscriptions),
// open62541 refuses it for an anonymous session over SecurityMode None, so the collector reports a
// gap from the old stream's next number on, and a status `recreated` for the new stream.
// tests/interop/mqtt_fleet.test.mjs has the takeover that succeeds, with 200 simulated servers.
//
// HAProxy balances round robin here: every server dials from 127.0.0.1, so `balance source`
// (docs/deploy.md) would send them all to one instance. The 200-server fleet of the issue needs
// the fleet simulator; this test runs SERVERS open62541 processes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadPeer, startListen } from "./helpers.mjs";
import { serverRecord, startBroker, startHaproxy, subscribe, unexplained } from "./broker.mjs";

const PEER62541 = process.env.PEER62541;
if (!PEER62541) throw new Error("PEER62541 is not set: run these tests through ctest");
const { startPeerProgram } = await loadPeer();

const SERVERS = 10;
const MONITOR = ["--monitor", "ns=1;s=Counter", "--interval", "100", "--sampling", "0", "--queue", "10000"];

/** Per subscription id: the counter values of its ua-data messages, deduplicated by MessageId. */
function streams(messages, uri) {
  const seen = new Set();
  const bySubscription = new Map();
  for (const { payload } of messages) {
    if (payload.MessageType !== "ua-data" || payload.PublisherId !== uri || seen.has(payload.MessageId)) continue;
    seen.add(payload.MessageId);
    const subscription = payload.MessageId.split(";").at(-2);
    if (!bySubscription.has(subscription)) bySubscription.set(subscription, []);
    for (const m of payload.Messages) {
      for (const dv of Object.values(m.Payload)) bySubscription.get(subscription).push(dv.Value);
    }
  }
  return bySubscription;
}

function assertConsecutive(values, what) {
  for (let i = 1; i < values.length; i++) {
    assert.equal(values[i], values[i - 1] + 1, `${what}: value #${i} is ${values[i]} after ${values[i - 1]}`);
  }
}

test("HAProxy and two collectors: each server on one, all data in the broker, a killed collector's servers move to the other", async () => {
  const uris = Array.from({ length: SERVERS }, (_, i) => `urn:scale:server${i}`);
  const allow = uris.flatMap((u) => ["--allow", u]);
  const broker = await startBroker();
  const sub = subscribe(broker, "opcua/#");
  await sub.ready;
  const a = await startListen([...allow, "--stay", ...MONITOR, "--mqtt", broker.url, "--mqtt-client-id", "collector-a"]);
  const b = await startListen([...allow, "--stay", ...MONITOR, "--mqtt", broker.url, "--mqtt-client-id", "collector-b"]);
  const lb = await startHaproxy([a.port, b.port]);
  const peers = [];
  const valuesOf = (uri) => [...streams(sub.messages, uri).values()].flat();
  try {
    for (const uri of uris) {
      peers.push(await startPeerProgram(PEER62541, ["--uri", uri, "--reverse", lb.url, "--reconnect-interval", "100"],
        { uri, startTimeoutMs: 20000 }));
    }
    for (const uri of uris) await sub.waitFor(() => valuesOf(uri).length >= 30, 30000);
    const connected = (proc, uri) => proc.events.some((e) => e.event === "connected" && e.server_uri === uri);
    for (const uri of uris) {
      assert.equal(connected(a, uri) + connected(b, uri), 1, `${uri} is served by exactly one collector`);
    }
    const moved = uris.filter((uri) => connected(a, uri));
    assert.ok(moved.length > 0 && moved.length < SERVERS, `round robin gave collector a ${moved.length}`);

    // Collector a dies without a word: its Will says so, its servers re-dial and HAProxy sends
    // them to b.
    const lastBefore = new Map(moved.map((uri) => [uri, valuesOf(uri).at(-1)]));
    a.child.kill("SIGKILL");
    await sub.waitFor((m) => m.topic === "opcua/json/status/collector-a" && m.payload.State === "offline", 20000);
    for (const uri of moved) {
      await b.waitFor((e) => e.event === "connected" && e.server_uri === uri, 20000);
      await sub.waitFor(() => valuesOf(uri).some((v) => v >= lastBefore.get(uri) + 30), 20000);
    }
    for (const uri of uris) await sub.waitFor(() => valuesOf(uri).length >= 60, 20000);
  } finally {
    for (const p of peers) await p.stop();
    await a.stop();
    await b.stop();
    await lb.stop();
    await sub.stop();
    await broker.stop();
  }
  for (const uri of uris) {
    const record = serverRecord(sub.messages, uri);
    const ids = [...record.streams.keys()];
    for (const id of ids) {
      assertConsecutive(record.streams.get(id).values, `${uri} subscription ${id}`);
      assert.deepEqual(unexplained(record, id), [], `${uri} subscription ${id}: numbers neither on the broker nor in a gap`);
    }
    if (ids.length === 1) continue; // served by one collector, or taken over: one stream
    // open62541 refuses to transfer an anonymous session's subscription over SecurityMode None
    // (BadUserAccessDenied): the collector that took the server over says that everything after
    // the old stream's last message is not carried (a gap to null), then names the new stream.
    const [old, ...later] = ids;
    const last = record.streams.get(old).seqs.at(-1);
    assert.ok(record.gaps.some((g) => g.id === old && g.from <= last + 1 && g.to === null),
      `${uri}: no open gap after ${last} of subscription ${old}: ${JSON.stringify(record.gaps)}`);
    for (const id of later) {
      assert.ok(record.states.some((s) => ["created", "recreated"].includes(s.State) && String(s.SubscriptionId) === id),
        `${uri}: no status 'created' for subscription ${id}: ${JSON.stringify(record.states)}`);
    }
  }
});
