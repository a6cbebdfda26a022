// uarc's data change filters and event items against open62541 1.5.7 (tests/peer62541, the
// program in PEER62541), per Part 4 §7.22.2 and §5.12: an absolute deadband lets a change through
// only when it exceeds the deadband from the last value reported (equal is not enough), a percent
// deadband is that percentage of the AnalogItem's EURange, and a variable without EURange refuses
// a percent deadband for its own item only. The peer's ns=1;s=Counter and ns=1;s=Analog (EURange
// 0..1000) both step by 1 every 10 ms, every step sampled (--sampling 0), so exactly which values
// arrive is known. Then events the peer raises every 100 ms ("tick N"), forward with uarc monitor
// (an OfType where clause of another type lets none through) and dialed in to uarc listen --stay,
// across a cut of the reverse connection.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { runUarc, startListen, relay, startPeer62541 } from "./helpers.mjs";

// One peer for the forward tests, raising its events all along.
const peer = await startPeer62541("urn:o62-filters", ["--events-every", "100"]);
after(() => peer.stop());

const isData = (e) => e.event === "data";
const isEvent = (e) => e.event === "event";
/** The Server object's events of `type` (BaseEventType by default), two fields selected. */
const eventArgs = (type = "i=2041") => ["--events", "i=2253", "--select", "Message", "--select",
  "0:Severity", "--of-type", type, "--interval", "100", "--queue", "1000"];

/** Runs uarc monitor until `count` data lines; returns them (and the run, for messages). */
async function monitor(args, count) {
  const uarc = runUarc(["monitor", peer.endpointUrl, ...args, "--json", "--count", String(count)]);
  const { code } = await uarc.exited;
  assert.equal(code, 0, uarc.describe());
  const data = uarc.events.filter(isData);
  assert.equal(data.length, count, uarc.describe());
  return { uarc, data };
}

/** Each value reported is exactly `step` above the one before it. */
function assertSteps(data, step, describe) {
  for (let i = 1; i < data.length; i++) {
    assert.equal(data[i].value - data[i - 1].value, step, `#${i}\n${describe()}`);
  }
}

/** The N of each event's "tick N", after checking its fields are the ones selected. */
function ticks(events) {
  return events.map((e) => {
    assert.equal(e.node, "i=2253");
    assert.deepEqual(Object.keys(e.fields), ["Message", "0:Severity"]);
    assert.equal(e.fields["0:Severity"], 100);
    const m = /^tick (\d+)$/.exec(e.fields.Message.Text);
    assert.ok(m, JSON.stringify(e));
    return Number(m[1]);
  });
}

function assertConsecutive(numbers, describe) {
  assert.ok(numbers.length > 0, describe());
  for (let i = 1; i < numbers.length; i++) assert.equal(numbers[i], numbers[i - 1] + 1, describe());
}

const DATA = ["--interval", "100", "--sampling", "0", "--queue", "1000"];

test("--deadband abs:5 on a UInt32 counter: a change of 5 is not enough, every sixth value", async () => {
  const { uarc, data } = await monitor(["ns=1;s=Counter", ...DATA, "--deadband", "abs:5"], 12);
  assert.equal(data[0].type, "UInt32");
  assertSteps(data, 6, uarc.describe);
});

test("--deadband pct:0.45 on the AnalogItem with EURange 0..1000: 4.5 units, every fifth value", async () => {
  const { uarc, data } = await monitor(["ns=1;s=Analog", ...DATA, "--deadband", "pct:0.45"], 12);
  assert.equal(data[0].type, "Double");
  assertSteps(data, 5, uarc.describe);
});

test("--deadband pct on a variable without EURange: open62541 refuses that item, the other goes on", async () => {
  const uarc = runUarc(["monitor", peer.endpointUrl, "ns=1;s=Counter", "ns=1;s=Analog", ...DATA,
    "--deadband", "pct:1", "--json"]);
  try {
    const refused = await uarc.waitFor((e) => e.event === "item" && e.node === "ns=1;s=Counter", 20000);
    assert.equal(refused.status, "BadMonitoredItemFilterUnsupported", uarc.describe());
    const accepted = await uarc.waitFor((e) => e.event === "item" && e.node === "ns=1;s=Analog", 20000);
    assert.equal(accepted.status, "Good", uarc.describe());
    await uarc.waitCount((e) => isData(e) && e.node === "ns=1;s=Analog", 4, 20000);
  } finally {
    await uarc.stop();
  }
  assert.deepEqual(uarc.events.filter((e) => isData(e) && e.node === "ns=1;s=Counter"), []);
  assertSteps(uarc.events.filter(isData), 11, uarc.describe); // 1 % of 1000: 10 units
});

test("monitor --events against open62541: its events arrive with the selected fields, each once, in order", async () => {
  const uarc = runUarc(["monitor", peer.endpointUrl, ...eventArgs(), "--count", "10", "--json"]);
  assert.equal((await uarc.exited).code, 0, uarc.describe());
  const item = uarc.events.find((e) => e.event === "item");
  assert.equal(item.node, "i=2253");
  assert.equal(item.status, "Good");
  const events = uarc.events.filter(isEvent);
  assert.equal(events.length, 10, uarc.describe());
  assertConsecutive(ticks(events), uarc.describe);
});

test("--of-type is the where clause open62541 applies: none of its BaseEventType ticks is a SystemEventType", async () => {
  const system = runUarc(["monitor", peer.endpointUrl, ...eventArgs("i=2130"), "--json"]);
  let base;
  try {
    const item = await system.waitFor((e) => e.event === "item", 20000);
    assert.equal(item.status, "Good", system.describe());
    // Five ticks, all raised while the SystemEventType item existed.
    base = runUarc(["monitor", peer.endpointUrl, ...eventArgs(), "--json"]);
    await base.waitCount(isEvent, 5, 20000);
  } finally {
    await system.stop();
    await base?.stop();
  }
  assert.deepEqual(system.events.filter(isEvent), [], system.describe());
});

test("listen --events --stay with open62541 dialing in: the selected fields arrive, and resume once it has dialed again", async () => {
  const uri = "urn:o62-listen-events";
  const listener = await startListen(["--allow", uri, "--stay", ...eventArgs()]);
  // The reverse connection runs through a relay, which cuts it and refuses new ones for half a
  // second: open62541 dials again, the session is re-activated, the events raised meanwhile are
  // delivered from the item's queue.
  const link = await relay(listener.port, { serverDials: true });
  const dialing = await startPeer62541(uri, ["--reverse", link.url, "--events-every", "100"]);
  try {
    const item = await listener.waitFor((e) => e.event === "item", 30000);
    assert.equal(item.node, "i=2253");
    assert.equal(item.status, "Good");
    const before = await listener.waitCount(isEvent, 5, 20000);
    assert.equal(link.cut(500), 1);
    await listener.waitFor((e) => e.event === "disconnected", 20000);
    await listener.waitFor((e) => e.event === "subscription" && e.state === "resumed", 20000);
    await listener.waitCount(isEvent, before.length + 10, 20000);
  } finally {
    await listener.stop();
    await dialing.stop();
    await link.close();
  }
  assert.ok(link.accepted >= 2, listener.describe());
  const events = listener.events.filter(isEvent);
  assert.ok(events.every((e) => e.server_uri === uri), listener.describe());
  assert.deepEqual(listener.events.filter((e) => e.event === "gap"), [], listener.describe());
  assert.equal(listener.events.filter((e) => e.event === "subscription" && e.state !== "resumed").length, 1);
  assertConsecutive(ticks(events), listener.describe);
});
