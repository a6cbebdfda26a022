// uarc monitor and listen --monitor against open62541 1.5.7 (tests/peer62541, the program in
// PEER62541): its counter (ns=1;s=Counter, +1 every 10 ms) must arrive once, in order and without
// a gap across a cut connection, forward and reverse. The cut is made by a TCP relay between uarc
// and the peer that destroys both of its sockets at once: the client and the server each see
// their socket closed mid-stream, without a CloseSecureChannel. open62541 keeps the session and
// its subscription when the channel goes (the session outlives it by its timeout), so uarc
// re-activates it on a new channel and fetches what it missed with Republish (proven by the
// debug line "Republish: message N recovered" when responses were lost in transit). Then the
// Overflow bit of a queue of 2, and a session limited to one PublishRequest.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runUarc, startListen, relay, startPeer62541 } from "./helpers.mjs";

const MONITOR = ["--interval", "100", "--sampling", "0", "--queue", "10000"];
const isData = (e) => e.event === "data";

/** Every counter value from the first to the last, each once, in order, in one subscription
 * whose sequence numbers never go back. */
function assertConsecutive(data, describe) {
  assert.ok(data.length > 0, describe());
  assert.equal(new Set(data.map((e) => e.subscription)).size, 1, describe());
  for (let i = 1; i < data.length; i++) {
    const a = data[i - 1];
    const b = data[i];
    assert.equal(b.value, a.value + 1, `#${i}: ${JSON.stringify(b)} after ${JSON.stringify(a)}`);
    assert.ok(b.sequence >= a.sequence, `#${i}: ${JSON.stringify(b)} after ${JSON.stringify(a)}`);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Two ways to break the connection: a plain cut followed by half a second in which the relay
// refuses connections (about 50 changes queue up in the monitored item on the server), and
// PublishResponses that never reach the client before the cut (the server keeps them for
// Republish). open62541 revises the requested queue size (10000) down to its default limit of
// 100, and drops the oldest values beyond that: an outage of a second or more loses values on
// the server, whatever the client does.
const CUTS = {
  "a cut and half a second without a connection": async (link) => assert.equal(link.cut(500), 1),
  "responses lost in transit, then a cut": async (link) => {
    link.swallow();
    await sleep(400); // a few publishing intervals: the outstanding PublishRequests are answered
    assert.equal(link.cut(), 1);
  },
};
const REPUBLISHED = /Republish: message \d+ recovered/;

for (const [how, breakIt] of Object.entries(CUTS)) {
  test(`forward, ${how}: every value once, in order, open62541's session resumed`, async () => {
    const peer = await startPeer62541("urn:o62-monitor-cut");
    const link = await relay(Number(new URL(peer.endpointUrl).port));
    const uarc = runUarc(["monitor", link.url, "ns=1;s=Counter", "--json", "--verbose", ...MONITOR]);
    try {
      await uarc.waitFor((e) => e.event === "subscription" && e.state === "created", 20000);
      const before = await uarc.waitCount(isData, 30, 20000);
      await breakIt(link);
      await uarc.waitFor((e) => e.event === "connection" && e.state === "lost", 20000);
      await uarc.waitFor((e) => e.event === "subscription" && e.state === "resumed", 20000);
      const cutAt = before.at(-1).value;
      await uarc.waitFor((e) => isData(e) && e.value >= cutAt + 200, 20000);
    } finally {
      await uarc.stop();
      await link.close();
      await peer.stop();
    }
    const data = uarc.events.filter(isData);
    assert.ok(link.accepted >= 2, uarc.describe());
    assert.deepEqual(uarc.events.filter((e) => e.event === "gap"), [], uarc.describe());
    assert.equal(uarc.events.filter((e) => e.event === "subscription" && e.state !== "resumed").length, 1);
    assert.ok(data.at(-1).value - data[0].value >= 229, uarc.describe());
    assertConsecutive(data, uarc.describe);
    if (link.swallowed) assert.match(uarc.stderr(), REPUBLISHED, uarc.describe());
  });

  test(`reverse, ${how}: open62541 dials again, listen --stay resumes the session, every value once`, async () => {
    const uri = "urn:o62-monitor-reverse";
    const listener = await startListen(["--allow", uri, "--stay", "--verbose", "--monitor",
      "ns=1;s=Counter", ...MONITOR]);
    const link = await relay(listener.port, { serverDials: true });
    const peer = await startPeer62541(uri, ["--reverse", link.url]);
    try {
      const created = await listener.waitFor((e) => e.event === "subscription" && e.state === "created", 30000);
      assert.equal(created.server_uri, uri);
      const before = await listener.waitCount(isData, 30, 20000);
      await breakIt(link);
      await listener.waitFor((e) => e.event === "disconnected", 20000);
      await listener.waitFor((e) => e.event === "subscription" && e.state === "resumed", 20000);
      const cutAt = before.at(-1).value;
      await listener.waitFor((e) => isData(e) && e.value >= cutAt + 200, 20000);
    } finally {
      await listener.stop();
      await peer.stop();
      await link.close();
    }
    const data = listener.events.filter(isData);
    assert.ok(link.accepted >= 2, listener.describe());
    assert.ok(data.every((e) => e.server_uri === uri));
    assert.deepEqual(listener.events.filter((e) => e.event === "gap"), [], listener.describe());
    assert.equal(listener.events.filter((e) => e.event === "subscription" && e.state !== "resumed").length, 1);
    assert.ok(data.at(-1).value - data[0].value >= 229, listener.describe());
    assertConsecutive(data, listener.describe);
    if (link.swallowed) assert.match(listener.stderr(), REPUBLISHED, listener.describe());
  });
}

test("a queue of 2 that overflows between publishes: open62541 marks the value after dropped ones with the Overflow bit", async () => {
  const peer = await startPeer62541("urn:o62-monitor-overflow");
  const uarc = runUarc(["monitor", peer.endpointUrl, "ns=1;s=Counter", "--json", "--interval", "500",
    "--sampling", "0", "--queue", "2", "--count", "12"]);
  try {
    assert.equal((await uarc.exited).code, 0, uarc.describe());
  } finally {
    await uarc.stop();
    await peer.stop();
  }
  const data = uarc.events.filter(isData);
  let marked = 0;
  for (let i = 1; i < data.length; i++) {
    const dropped = data[i].value - data[i - 1].value > 1;
    assert.equal(data[i].overflow === true, dropped, `#${i}\n${uarc.describe()}`);
    marked += dropped;
  }
  assert.ok(marked >= 2, uarc.describe());
});

test("open62541 queueing one PublishRequest: BadTooManyPublishRequests lowers the pipeline, nothing stalls or is lost", async () => {
  const peer = await startPeer62541("urn:o62-monitor-publish", ["--max-publish-requests", "1"]);
  const uarc = runUarc(["monitor", peer.endpointUrl, "ns=1;s=Counter", "--json", "--verbose", ...MONITOR]);
  try {
    await uarc.waitCount(isData, 150, 30000);
  } finally {
    await uarc.stop();
    await peer.stop();
  }
  // One subscription wants two PublishRequests out; open62541 answered the older one
  // BadTooManyPublishRequests, and from then on one at a time carried every value.
  assert.match(uarc.stderr(), /BadTooManyPublishRequests: at most 1 PublishRequests/, uarc.describe());
  // After two good responses one more was tried, and refused again: the throttle held, data flowed.
  assert.match(uarc.stderr(), /PublishRequests: trying 2/, uarc.describe());
  assert.ok(uarc.stderr().match(/BadTooManyPublishRequests: at most 1 PublishRequests/g).length >= 2, uarc.describe());
  assert.deepEqual(uarc.events.filter((e) => e.event === "gap" || e.state === "stalled"), [], uarc.describe());
  assertConsecutive(uarc.events.filter(isData), uarc.describe);
});
