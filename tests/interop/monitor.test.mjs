// uarc monitor against the node-opcua peer: its counters (ns=1;s=Counter, +1 every 10 ms, and
// ns=1;s=FastCounter, +1 every 1 ms; every change reported) must arrive once and in order across a
// cut connection, and a server restart must be told as a gap followed by a re-created
// subscription.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runUarc, loadPeer, startListen } from "./helpers.mjs";

const { startPeer } = await loadPeer();

const MONITOR = ["--json", "--interval", "100", "--sampling", "0", "--queue", "10000"];
const isData = (e) => e.event === "data";

/** Every counter value from the first to the last, each once, in order; sequence numbers of one
 * subscription never go back. */
function assertConsecutive(data) {
  for (let i = 1; i < data.length; i++) {
    const a = data[i - 1];
    const b = data[i];
    assert.equal(b.value, a.value + 1, `#${i}: ${JSON.stringify(b)} after ${JSON.stringify(a)}`);
    if (a.subscription === b.subscription) assert.ok(b.sequence >= a.sequence);
  }
}

test("a cut connection loses nothing: the session is resumed and every value arrives once", async () => {
  const peer = await startPeer({ uri: "urn:peer-monitor-cut", args: ["--no-big"] });
  const uarc = runUarc(["monitor", peer.endpointUrl, "ns=1;s=Counter", ...MONITOR]);
  try {
    await uarc.waitFor((e) => e.event === "subscription" && e.state === "created", 20000);
    const before = await uarc.waitCount(isData, 30, 20000);
    // SIGUSR2: every socket dropped without CLO, the session and its subscription kept.
    peer.child.kill("SIGUSR2");
    await uarc.waitFor((e) => e.event === "connection" && e.state === "lost", 20000);
    await uarc.waitFor((e) => e.event === "subscription" && e.state === "resumed", 20000);
    const cutAt = before[before.length - 1].value;
    await uarc.waitFor((e) => isData(e) && e.value >= cutAt + 100, 20000);
  } finally {
    await uarc.stop();
    await peer.stop();
  }
  const data = uarc.events.filter(isData);
  // 30 values before the cut, 100 after it, and every one in between
  assert.ok(data.at(-1).value - data[0].value >= 129, uarc.describe());
  assert.deepEqual(uarc.events.filter((e) => e.event === "gap"), [], uarc.describe());
  assert.equal(new Set(data.map((e) => e.subscription)).size, 1);
  assertConsecutive(data);
});

test("a 1 ms counter across a cut: every value once, in order, the session resumed", async () => {
  const peer = await startPeer({ uri: "urn:peer-monitor-fast", args: ["--no-big", "--fast-counter"] });
  const uarc = runUarc(["monitor", peer.endpointUrl, "ns=1;s=FastCounter", ...MONITOR]);
  try {
    await uarc.waitFor((e) => e.event === "subscription" && e.state === "created", 20000);
    const before = await uarc.waitCount(isData, 300, 20000);
    peer.child.kill("SIGUSR2");
    await uarc.waitFor((e) => e.event === "connection" && e.state === "lost", 20000);
    await uarc.waitFor((e) => e.event === "subscription" && e.state === "resumed", 20000);
    const cutAt = before[before.length - 1].value;
    await uarc.waitFor((e) => isData(e) && e.value >= cutAt + 1000, 20000);
  } finally {
    await uarc.stop();
    await peer.stop();
  }
  const data = uarc.events.filter(isData);
  assert.ok(data.at(-1).value - data[0].value >= 1299, uarc.describe());
  assert.deepEqual(uarc.events.filter((e) => e.event === "gap"), [], uarc.describe());
  assert.equal(new Set(data.map((e) => e.subscription)).size, 1);
  assertConsecutive(data);
});

test("a restarted server: a gap after the last delivered message, the subscription re-created", async () => {
  const first = await startPeer({ uri: "urn:peer-monitor-restart", args: ["--no-big"] });
  const port = new URL(first.endpointUrl).port;
  const uarc = runUarc(["monitor", first.endpointUrl, "ns=1;s=Counter", ...MONITOR]);
  let second;
  try {
    const created = await uarc.waitFor((e) => e.event === "subscription" && e.state === "created", 20000);
    await uarc.waitCount(isData, 20, 20000);
    await first.stop();
    await uarc.waitFor((e) => e.event === "connection" && e.state === "lost", 20000);
    const lastOld = uarc.events.filter(isData).at(-1);
    second = await startPeer({ uri: "urn:peer-monitor-restart", args: ["--no-big", "--port", port] });
    const gap = await uarc.waitFor((e) => e.event === "gap", 30000);
    assert.equal(gap.subscription, created.subscription);
    assert.equal(gap.from, lastOld.sequence + 1);
    assert.equal(gap.to, null);
    assert.equal(gap.reason, "BadSubscriptionIdInvalid");
    assert.equal(gap.resend, false); // re-created: the new items bring their values, nothing to ask
    const recreated = await uarc.waitFor((e) => e.event === "subscription" && e.state === "recreated", 20000);
    const after = await uarc.waitCount((e) => isData(e) && e.subscription === recreated.subscription, 20, 20000);
    // The new server counts from 0 again; from there on, every value once, in order.
    assertConsecutive(after);
    assert.ok(uarc.events.indexOf(gap) < uarc.events.indexOf(after[0]));
  } finally {
    await uarc.stop();
    await first.stop();
    if (second) await second.stop();
  }
});

test("--count stops after that many data events; bad arguments are usage errors", async () => {
  const peer = await startPeer({ uri: "urn:peer-monitor-count", args: ["--no-big"] });
  try {
    const uarc = runUarc(["monitor", peer.endpointUrl, "ns=1;s=Counter", "--count", "5", "--json",
      "--interval", "50", "--sampling", "0", "--queue", "100", "--deadband", "abs:0"]);
    const { code } = await uarc.exited;
    assert.equal(code, 0, uarc.describe());
    assert.equal(uarc.events.filter(isData).length, 5);
    for (const args of [["--deadband", "rel:1"], ["--queue", "x"]]) {
      const bad = runUarc(["monitor", peer.endpointUrl, "ns=1;s=Counter", ...args]);
      assert.equal((await bad.exited).code, 2);
    }
  } finally {
    await peer.stop();
  }
});

test("listen --monitor --stay follows a reverse-connected server through a dropped socket", async () => {
  const uri = "urn:peer-monitor-reverse";
  const listener = await startListen(["--allow", uri, "--stay", "--monitor", "ns=1;s=Counter",
    "--interval", "100", "--sampling", "0", "--queue", "10000"]);
  const peer = await startPeer({ uri, reverse: [listener.url], args: ["--no-big"] });
  try {
    const created = await listener.waitFor((e) => e.event === "subscription" && e.state === "created", 30000);
    assert.equal(created.server_uri, uri);
    const before = await listener.waitCount(isData, 30, 20000);
    // The server drops its socket and dials again; the hub re-activates the session on it.
    peer.child.kill("SIGUSR2");
    await listener.waitFor((e) => e.event === "disconnected", 20000);
    await listener.waitFor((e) => e.event === "subscription" && e.state === "resumed", 20000);
    const cutAt = before[before.length - 1].value;
    await listener.waitFor((e) => isData(e) && e.value >= cutAt + 100, 20000);
  } finally {
    await listener.stop();
    await peer.stop();
  }
  const data = listener.events.filter(isData);
  assert.ok(data.every((e) => e.server_uri === uri));
  assert.deepEqual(listener.events.filter((e) => e.event === "gap"), [], listener.describe());
  assertConsecutive(data);
});

test("a server that queues one PublishRequest: BadTooManyPublishRequests lowers the pipeline, nothing stalls or is lost", async () => {
  const peer = await startPeer({ uri: "urn:peer-monitor-publish", args: ["--no-big", "--max-publish-requests", "1"] });
  const uarc = runUarc(["monitor", peer.endpointUrl, "ns=1;s=Counter", ...MONITOR, "--verbose"]);
  try {
    await uarc.waitCount(isData, 150, 30000);
  } finally {
    await uarc.stop();
    await peer.stop();
  }
  // One subscription wants two PublishRequests out; the server answered the older of them
  // BadTooManyPublishRequests, and from then on one at a time carried every value.
  assert.match(uarc.stderr(), /BadTooManyPublishRequests: at most 1 PublishRequests/);
  // After two good responses one more was tried, and refused again: the throttle held, data flowed.
  assert.match(uarc.stderr(), /PublishRequests: trying 2/);
  assert.ok(uarc.stderr().match(/BadTooManyPublishRequests: at most 1 PublishRequests/g).length >= 2);
  assert.deepEqual(uarc.events.filter((e) => e.event === "gap" || e.state === "stalled"), []);
  assertConsecutive(uarc.events.filter(isData));
});

test("--events: the peer's events arrive with the selected fields, each once, in order", async () => {
  const peer = await startPeer({ uri: "urn:peer-monitor-events", args: ["--no-big", "--events-every", "100"] });
  const uarc = runUarc(["monitor", peer.endpointUrl, "--events", "i=2253", "--select", "Message",
    "--select", "0:Severity", "--of-type", "i=2041", "--interval", "100", "--queue", "1000",
    "--count", "10", "--json"]);
  try {
    const { code } = await uarc.exited;
    assert.equal(code, 0, uarc.describe());
  } finally {
    await peer.stop();
  }
  const item = uarc.events.find((e) => e.event === "item");
  assert.equal(item.node, "i=2253");
  assert.equal(item.status, "Good");
  const events = uarc.events.filter((e) => e.event === "event");
  assert.equal(events.length, 10, uarc.describe());
  const ticks = events.map((e) => {
    assert.deepEqual(Object.keys(e.fields), ["Message", "0:Severity"]);
    assert.equal(e.fields["0:Severity"], 100);
    const m = /^tick (\d+)$/.exec(e.fields.Message.Text);
    assert.ok(m, JSON.stringify(e));
    return Number(m[1]);
  });
  for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i], ticks[i - 1] + 1);
});

test("listen --events --stay: every accepted server's events arrive with the selected fields, each once, across a re-dial", async () => {
  const uri = "urn:peer-listen-events";
  const listener = await startListen(["--allow", uri, "--stay", "--events", "i=2253", "--select",
    "Message", "--select", "0:Severity", "--of-type", "i=2041", "--interval", "100", "--queue", "1000"]);
  const peer = await startPeer({ uri, reverse: [listener.url], args: ["--no-big", "--events-every", "100"] });
  const isEvent = (e) => e.event === "event";
  try {
    const item = await listener.waitFor((e) => e.event === "item", 30000);
    assert.equal(item.node, "i=2253");
    assert.equal(item.status, "Good");
    const before = await listener.waitCount(isEvent, 5, 20000);
    peer.child.kill("SIGUSR2"); // the server drops its socket and dials again
    await listener.waitFor((e) => e.event === "disconnected", 20000);
    await listener.waitFor((e) => e.event === "subscription" && e.state === "resumed", 20000);
    await listener.waitCount(isEvent, before.length + 10, 20000);
  } finally {
    await listener.stop();
    await peer.stop();
  }
  const events = listener.events.filter(isEvent);
  assert.deepEqual(listener.events.filter((e) => e.event === "gap"), [], listener.describe());
  const ticks = events.map((e) => {
    assert.equal(e.server_uri, uri);
    assert.equal(e.node, "i=2253");
    assert.deepEqual(Object.keys(e.fields), ["Message", "0:Severity"]);
    assert.equal(e.fields["0:Severity"], 100);
    const m = /^tick (\d+)$/.exec(e.fields.Message.Text);
    assert.ok(m, JSON.stringify(e));
    return Number(m[1]);
  });
  for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i], ticks[i - 1] + 1, listener.describe());
});
