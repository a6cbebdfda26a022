// uarc listen --monitor --mqtt into a real mosquitto broker (started here on a loopback port):
// the node-opcua peer's counter (ns=1;s=Counter, +1 every 10 ms, every change reported) must reach
// a subscriber once and in order, and every value must still arrive when the broker is restarted
// in the middle of the stream (duplicates, recognised by their MessageId, are allowed; a missing
// value is not). Also: two listeners share one port with --reuse-port.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { loadPeer, rhe, runUarc, startListen } from "./helpers.mjs";
import { counterValues, freePort, startBroker, subscribe } from "./broker.mjs";

const { startPeer } = await loadPeer();

const MONITOR = ["--monitor", "ns=1;s=Counter", "--interval", "100", "--sampling", "0", "--queue", "10000"];

function assertConsecutive(values, what) {
  for (let i = 1; i < values.length; i++) {
    assert.equal(values[i], values[i - 1] + 1, `${what}: value #${i} is ${values[i]} after ${values[i - 1]}`);
  }
}

test("every counter value reaches the subscriber once, in order, as Part 14 JSON", async () => {
  const uri = "urn:peer-mqtt/line+1#a"; // '/', '+' and '#' are escaped in the topic
  const broker = await startBroker();
  const sub = subscribe(broker, "opcua/#");
  await sub.ready;
  const listener = await startListen(["--allow", uri, "--stay", ...MONITOR, "--mqtt", broker.url]);
  const peer = await startPeer({ uri, reverse: [listener.url], args: ["--no-big"] });
  const topic = "opcua/json/data/urn:peer-mqtt%2Fline%2B1%23a/monitor";
  try {
    await listener.waitFor((e) => e.event === "mqtt" && e.state === "connected", 10000);
    await sub.waitFor((m) => m.topic === topic && counterValues([m], uri).length > 0, 30000);
    const first = counterValues(sub.messages.filter((m) => m.topic === topic), uri)[0];
    await sub.waitFor((m) => m.topic === topic && counterValues([m], uri).some((v) => v >= first + 150), 30000);
  } finally {
    await peer.stop();
    await listener.stop();
    await sub.stop();
    await broker.stop();
  }
  const data = sub.messages.filter((m) => m.topic === topic);
  const ids = data.map((m) => m.payload.MessageId);
  assert.equal(new Set(ids).size, ids.length, "no message twice without a broker restart");
  const msg = data[0].payload;
  assert.equal(msg.MessageType, "ua-data");
  assert.equal(msg.PublisherId, uri);
  const set = msg.Messages[0];
  assert.equal(set.DataSetWriterName, "monitor");
  assert.equal(typeof set.SequenceNumber, "number");
  assert.match(set.Timestamp, /^\d{4}-\d\d-\d\dT/);
  const dv = set.Payload["ns=1;s=Counter"];
  assert.equal(typeof dv.Value, "number");
  assert.match(dv.SourceTimestamp, /Z$/);
  // Sequence numbers go up message by message; the values run without a hole or a repeat.
  const seqs = data.map((m) => m.payload.Messages[0].SequenceNumber);
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1);
  const values = counterValues(data, uri);
  assert.ok(values.length >= 150, `${values.length} values`);
  assertConsecutive(values, "subscriber");
  // The server's retained state and the collector's own.
  const states = sub.messages.filter((m) => m.topic === "opcua/json/status/urn:peer-mqtt%2Fline%2B1%23a");
  assert.ok(states.some((m) => m.payload.State === "connected"), JSON.stringify(states));
  assert.ok(sub.messages.some((m) => m.payload.MessageType === "ua-status" && m.payload.State === "online"));
  assert.deepEqual(listener.events.filter((e) => e.event === "data"), [], "data goes to the broker, not stdout");
});

test("a broker restarted mid-stream: after it is back the subscriber has every value", async () => {
  const uri = "urn:peer-mqtt-restart";
  const broker = await startBroker({ persistence: true });
  // A persistent session at QoS 1: what arrives while it is away waits in the broker for it.
  const sub = subscribe(broker, "opcua/json/data/#", { id: `uarc-test-restart-${process.pid}` });
  await sub.ready;
  const listener = await startListen(["--allow", uri, "--stay", ...MONITOR, "--mqtt", broker.url]);
  const peer = await startPeer({ uri, reverse: [listener.url], args: ["--no-big"] });
  let cutAt;
  try {
    await sub.waitFor((m) => counterValues([m], uri).length > 0, 30000);
    const first = counterValues(sub.messages, uri)[0];
    await sub.waitFor(() => counterValues(sub.messages, uri).some((v) => v >= first + 30), 20000);
    await broker.stop();
    await listener.waitFor((e) => e.event === "mqtt" && e.state === "lost", 10000);
    // Two failed attempts to reconnect: the values of that time wait in uarc's backlog.
    await listener.waitCount((e) => e.event === "mqtt" && e.state === "failed", 2, 10000);
    cutAt = counterValues(sub.messages, uri).at(-1);
    await broker.start();
    await listener.waitCount((e) => e.event === "mqtt" && e.state === "connected", 2, 20000);
    await sub.waitFor(() => counterValues(sub.messages, uri).some((v) => v >= cutAt + 100), 30000);
  } finally {
    await peer.stop();
    await listener.stop();
    await sub.stop();
    await broker.stop();
  }
  const values = counterValues(sub.messages, uri);
  assertConsecutive(values, "subscriber across the restart");
  assert.ok(values.at(-1) >= cutAt + 100);
  assert.deepEqual(listener.events.filter((e) => e.event === "gap"), [], listener.describe());
});

test("a backlog filling while the broker is away: publishing paused on the server, nothing lost", async () => {
  const uri = "urn:peer-mqtt-backlog";
  const broker = await startBroker({ persistence: true });
  const sub = subscribe(broker, "opcua/json/data/#", { id: `uarc-test-backlog-${process.pid}` });
  await sub.ready;
  // 64 KiB: paused at 48 KiB, about three seconds of this counter.
  const listener = await startListen(["--allow", uri, "--stay", ...MONITOR, "--mqtt", broker.url,
    "--mqtt-backlog", "65536"]);
  const peer = await startPeer({ uri, reverse: [listener.url], args: ["--no-big"] });
  let cutAt;
  try {
    await sub.waitFor((m) => counterValues([m], uri).length > 0, 30000);
    await broker.stop();
    await listener.waitFor((e) => e.event === "mqtt" && e.state === "paused", 20000);
    cutAt = counterValues(sub.messages, uri).at(-1);
    await broker.start();
    await listener.waitFor((e) => e.event === "mqtt" && e.state === "resumed", 20000);
    await sub.waitFor(() => counterValues(sub.messages, uri).some((v) => v >= cutAt + 500), 30000);
  } finally {
    await peer.stop();
    await listener.stop();
    await sub.stop();
    await broker.stop();
  }
  const values = counterValues(sub.messages, uri);
  assertConsecutive(values, "subscriber across a paused backlog");
  assert.deepEqual(listener.events.filter((e) => e.event === "gap"), [], listener.describe());
});

test("uarc monitor --mqtt: forward, PublisherId the URL dialed; bad --mqtt options are usage errors", async () => {
  const broker = await startBroker();
  const sub = subscribe(broker, "plant/#");
  await sub.ready;
  const peer = await startPeer({ uri: "urn:peer-mqtt-forward", args: ["--no-big"] });
  try {
    const uarc = runUarc(["monitor", peer.endpointUrl, "ns=1;s=Counter", "--json", "--interval", "100",
      "--sampling", "0", "--queue", "1000", "--count", "50", "--mqtt", broker.url, "--mqtt-qos", "0",
      "--mqtt-topic-prefix", "plant/a"]);
    assert.equal((await uarc.exited).code, 0, uarc.describe());
    // Everything counted was handed over before the exit, and before the collector's last word.
    await sub.waitFor((m) => m.topic.startsWith("plant/a/json/status/") && m.payload.State === "offline");
    const values = counterValues(sub.messages, peer.endpointUrl);
    assert.ok(values.length >= 50, `${values.length} values`);
    assertConsecutive(values, "forward");
    const port = new URL(peer.endpointUrl).port;
    assert.ok(sub.messages.some((m) => m.topic === `plant/a/json/data/opc.tcp:%2F%2F127.0.0.1:${port}/monitor`),
      JSON.stringify(sub.messages.map((m) => m.topic)));
  } finally {
    await peer.stop();
    await sub.stop();
    await broker.stop();
  }
  for (const args of [["--mqtt", "http://x"], ["--mqtt", "mqtt://x:0"], ["--mqtt", "mqtt://x", "--mqtt-qos", "2"],
    ["--mqtt-user", "u"], ["--mqtt", "mqtt://x", "--mqtt-topic-prefix", "a/#"],
    ["--mqtt", "mqtt://x", "--mqtt-backlog", "10"]]) {
    const bad = runUarc(["monitor", "opc.tcp://127.0.0.1:1", "i=2258", ...args]);
    assert.equal((await bad.exited).code, 2, `${args.join(" ")}: ${bad.stderr()}`);
  }
  const noMonitor = runUarc(["listen", "--allow", "urn:x", "--mqtt", "mqtt://127.0.0.1"]);
  assert.equal((await noMonitor.exited).code, 2);
  assert.match(noMonitor.stderr(), /--mqtt carries the data of --monitor/);
});

test("a restarted server: the gap is a status message on the broker and a line on stdout, never silence", async () => {
  const broker = await startBroker();
  const sub = subscribe(broker, "opcua/#");
  await sub.ready;
  const first = await startPeer({ uri: "urn:peer-mqtt-gap", args: ["--no-big"] });
  const port = new URL(first.endpointUrl).port;
  const uarc = runUarc(["monitor", first.endpointUrl, "ns=1;s=Counter", "--json", "--interval", "100",
    "--sampling", "0", "--queue", "1000", "--mqtt", broker.url]);
  let second;
  try {
    await sub.waitFor((m) => counterValues([m], first.endpointUrl).length > 0, 30000);
    await first.stop();
    await uarc.waitFor((e) => e.event === "connection" && e.state === "lost", 20000);
    second = await startPeer({ uri: "urn:peer-mqtt-gap", args: ["--no-big", "--port", port] });
    const line = await uarc.waitFor((e) => e.event === "gap", 30000);
    const status = await sub.waitFor((m) => m.payload.MessageType === "ua-status" && m.payload.State === "gap", 20000);
    assert.equal(status.topic, `opcua/json/status/opc.tcp:%2F%2F127.0.0.1:${port}`);
    assert.equal(status.payload.SubscriptionId, line.subscription);
    assert.equal(status.payload.From, line.from);
    assert.equal(status.payload.To, null);
    assert.equal(status.payload.Status.Symbol, "BadSubscriptionIdInvalid");
    // Then the re-created subscription's data follows.
    const recreated = await sub.waitFor((m) => m.payload.State === "recreated", 20000);
    await sub.waitFor((m) => m.payload.MessageType === "ua-data" &&
      m.payload.MessageId.includes(`;${recreated.payload.SubscriptionId};`), 20000);
  } finally {
    await uarc.stop();
    await first.stop();
    if (second) await second.stop();
    await sub.stop();
    await broker.stop();
  }
});

test("--reuse-port: two listeners on one port, every server served by exactly one", async () => {
  const port = await freePort();
  const a = await startListen(["--reuse-port", "--accept-only", "--allow", "urn:rp"], { port });
  const b = await startListen(["--reuse-port", "--accept-only", "--allow", "urn:rp"], { port });
  // Without it, a second listener cannot bind.
  const c = runUarc(["listen", "--json", "--bind", "127.0.0.1", "--port", String(port), "--accept-only",
    "--allow", "urn:rp"]);
  try {
    assert.equal((await c.exited).code, 1);
    assert.match(c.stderr(), /Address already in use/);
    // 40 fake servers send a ReverseHello each; the kernel spreads them over both listeners.
    const sockets = [];
    for (let i = 0; i < 40; i++) {
      const s = net.connect(port, "127.0.0.1");
      s.on("error", () => {});
      s.write(rhe("urn:rp", "opc.tcp://127.0.0.1:4840"));
      sockets.push(s);
    }
    const isAccepted = (e) => e.event === "accepted";
    const total = () => a.events.filter(isAccepted).length + b.events.filter(isAccepted).length;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${total()} of 40 accepted`)), 15000);
      const check = () => { if (total() >= 40) { clearTimeout(timer); resolve(); } else setTimeout(check, 20); };
      check();
    });
    for (const s of sockets) s.destroy();
    assert.equal(total(), 40);
    assert.ok(a.events.filter(isAccepted).length > 0, "the first listener got some");
    assert.ok(b.events.filter(isAccepted).length > 0, "the second listener got some");
  } finally {
    await a.stop();
    await b.stop();
  }
});
