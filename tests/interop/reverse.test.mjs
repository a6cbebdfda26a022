// Reverse Connect end to end: node-opcua 2.186.4 servers dial `uarc listen`, which opens a
// session over each inbound socket, reads, browses, and keeps or closes the session.
//
// Four listeners, one per scenario, are started first; then four peers, each dialing the
// listeners it belongs to (a peer runs one dial loop per --reverse URL):
//
//   listener  options                                   dialed by
//   full      --read i=2258 --browse i=85 --count 1     A
//   three     --read i=2258 --count 3                   A B C
//   allow     --read i=2258 --stay, D not allowed       A B D (D backs off from 500 ms)
//   stay      --read i=2258 --stay                      C (dropped with SIGUSR2, then restarted)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startListen, loadPeer, exitWithin } from "./helpers.mjs";

const { startPeer } = await loadPeer();

const A = "urn:rc-a";
const B = "urn:rc-b";
const C = "urn:rc-c";
const D = "urn:rc-d";

const L = {};      // listeners by scenario
const peers = {};  // peers by ServerUri
const extra = [];  // peers started by the tests

const from = (uri, event) => (e) => e.server_uri === uri && (!event || e.event === event);

before(async () => {
  [L.full, L.three, L.allow, L.stay] = await Promise.all([
    startListen(["--allow", A, "--read", "i=2258", "--browse", "i=85", "--count", "1"]),
    startListen(["--allow", A, "--allow", B, "--allow", C, "--read", "i=2258", "--count", "3"]),
    startListen(["--allow", A, "--allow", B, "--read", "i=2258", "--stay"]),
    startListen(["--allow", C, "--read", "i=2258", "--stay"]),
  ]);
  const common = { args: ["--no-big"] };
  [peers[A], peers[B], peers[C], peers[D]] = await Promise.all([
    startPeer({ uri: A, reverse: [L.full.url, L.three.url, L.allow.url], ...common }),
    startPeer({ uri: B, reverse: [L.three.url, L.allow.url], ...common }),
    startPeer({ uri: C, reverse: [L.three.url, L.stay.url], ...common }),
    startPeer({ uri: D, reverse: [L.allow.url], reconnectDelay: 500, maxReconnectDelay: 8000, ...common }),
  ]);
});

after(async () => {
  await Promise.all([
    ...Object.values(L).map((l) => l?.stop()),
    ...Object.values(peers).map((p) => p?.stop()),
    ...extra.map((p) => p.stop()),
  ]);
});

test("full flow: hello, accepted, connected, read, browse, disconnected Good; --count 1 exits 0", async () => {
  const proc = L.full;
  const { code, signal } = await exitWithin(proc, 30000, "uarc listen --count 1");
  assert.equal(signal, null, proc.describe());
  assert.equal(code, 0, proc.describe());
  assert.deepEqual(proc.badLines, [], "every line is JSON");

  const order = ["hello", "accepted", "connected", "read", "browse", "disconnected"];
  const seen = proc.events.filter((e) => e.event !== "listening").map((e) => e.event);
  assert.deepEqual(seen, order, proc.describe());
  const ev = Object.fromEntries(proc.events.map((e) => [e.event, e]));
  for (const name of order) assert.equal(ev[name].server_uri, A, `${name} names the server`);
  assert.equal(ev.hello.endpoint_url, peers[A].endpointUrl);
  assert.equal(ev.accepted.peer, ev.hello.peer);

  assert.equal(ev.connected.endpoint_url, peers[A].endpointUrl, "HEL carried the announced EndpointUrl");
  assert.equal(ev.connected.security_policy, "None");
  assert.equal(ev.connected.session, undefined, "a first connection is neither resumed nor new");

  assert.equal(ev.read.node, "i=2258");
  assert.equal(ev.read.status, "Good");
  assert.equal(ev.read.type, "DateTime");
  const t = Date.parse(ev.read.value);
  assert.ok(Math.abs(t - Date.now()) < 60000, `the server's current time: ${ev.read.value}`);

  assert.equal(ev.browse.node, "i=85");
  const server = ev.browse.references.find((r) => r.node === "i=2253");
  assert.ok(server, `Objects holds Server i=2253: ${JSON.stringify(ev.browse.references)}`);
  assert.equal(server.browse_name, "Server");
  assert.equal(server.node_class, "Object");

  assert.equal(ev.disconnected.status, "Good");
  assert.equal(ev.disconnected.reason, "closed by client");
});

test("three servers dialing one listener: each gets its own session and a Read (--count 3)", async () => {
  const proc = L.three;
  const { code } = await exitWithin(proc, 30000, "uarc listen --count 3");
  assert.equal(code, 0, proc.describe());
  for (const uri of [A, B, C]) {
    const connected = proc.events.filter(from(uri, "connected"));
    assert.ok(connected.length >= 1, `${uri} connected\n${proc.describe()}`);
    assert.equal(connected[0].endpoint_url, peers[uri].endpointUrl);
    const reads = proc.events.filter(from(uri, "read"));
    assert.ok(reads.length >= 1, `${uri} read\n${proc.describe()}`);
    for (const r of reads) {
      assert.equal(r.status, "Good");
      assert.equal(r.type, "DateTime");
    }
    assert.ok(proc.events.some(from(uri, "disconnected")), `${uri} was closed with Good`);
  }
  // Without --stay a server that re-dials is served again; --count counts servers, not sessions.
  const servers = new Set(proc.events.filter((e) => e.event === "connected").map((e) => e.server_uri));
  assert.deepEqual([...servers].sort(), [A, B, C], proc.describe());
  assert.ok(!proc.events.some((e) => e.event === "error"), proc.describe());
});

test("a server missing from the allowlist gets ERR and re-dials with a growing back-off; the others are served", async () => {
  const proc = L.allow;
  for (const uri of [A, B]) {
    const connected = await proc.waitFor(from(uri, "connected"), 20000);
    assert.equal(connected.security_policy, "None");
    const read = await proc.waitFor(from(uri, "read"), 5000);
    assert.equal(read.status, "Good");
  }
  // D: 500 ms back-off doubling, plus the 1 s node-opcua waits after an ERR before closing.
  const rejected = await proc.waitCount(from(D, "rejected"), 4, 25000);
  for (const r of rejected) {
    assert.equal(r.status, "BadTcpEndpointUrlInvalid");
    assert.equal(r.endpoint_url, peers[D].endpointUrl);
  }
  assert.equal(new Set(rejected.map((r) => r.peer)).size, 4, "each rejection is a new connection");
  const gaps = rejected.slice(1).map((r, i) => r._at - rejected[i]._at);
  for (let i = 1; i < gaps.length; i++) {
    assert.ok(gaps[i] > gaps[i - 1] * 1.15, `the gaps between rejections grow: ${gaps.join(", ")} ms`);
  }
  assert.ok(!proc.events.some(from(D, "accepted")), "D never accepted");
  assert.ok(!proc.events.some(from(D, "connected")), "D never connected");
  // The sessions of A and B were never disturbed meanwhile.
  assert.equal(proc.events.filter((e) => e.event === "connected").length, 2, proc.describe());
  assert.ok(!proc.events.some((e) => e.event === "disconnected"), proc.describe());
  assert.equal(proc.child.exitCode, null, "still running with --stay");
});

test("--stay: a dropped connection (no restart) comes back with the same session, resumed", async () => {
  const proc = L.stay;
  await proc.waitFor(from(C, "read"), 20000);
  const before = proc.events.length;
  peers[C].child.kill("SIGUSR2");
  const lost = await proc.waitFor((e) => proc.events.indexOf(e) >= before && from(C, "disconnected")(e), 10000);
  assert.match(lost.status, /^Bad/, proc.describe());
  assert.ok(["closed", "reset"].includes(lost.cause), proc.describe());
  const back = await proc.waitFor((e) => proc.events.indexOf(e) >= before && from(C, "connected")(e), 15000);
  assert.equal(back.session, "resumed", proc.describe());
  assert.equal(back.endpoint_url, peers[C].endpointUrl);
  assert.ok(proc.events.indexOf(lost) < proc.events.indexOf(back));
  assert.equal(peers[C].child.exitCode, null, "the peer was not restarted");
});

test("--stay: a connection cut in the middle of the operations goes on where it stopped, repeating nothing", async () => {
  const E = "urn:rc-e";
  const SLOW = "ns=1;s=Slow";
  const proc = await startListen(["--allow", E, "--read", "i=2258", "--read", SLOW, "--read", "i=2255", "--stay"]);
  extra.push(proc);
  // Reading ns=1;s=Slow takes 3 s: the connection is dropped while that read is in flight.
  const peer = await startPeer({ uri: E, reverse: [proc.url], args: ["--no-big", "--slow-read", "3000"] });
  extra.push(peer);
  await proc.waitFor((e) => from(E, "read")(e) && e.node === "i=2258", 20000);
  peer.child.kill("SIGUSR2");
  const lost = await proc.waitFor(from(E, "disconnected"), 10000);
  assert.match(lost.status, /^Bad/, proc.describe());
  const back = await proc.waitFor((e) => proc.events.indexOf(e) > proc.events.indexOf(lost) &&
    from(E, "connected")(e), 15000);
  assert.equal(back.session, "resumed", proc.describe());
  await proc.waitFor((e) => from(E, "read")(e) && e.node === "i=2255", 20000);
  const reads = proc.events.filter(from(E, "read")).map((e) => [e.node, e.status]);
  assert.deepEqual(reads, [["i=2258", "Good"], [SLOW, "Good"], ["i=2255", "Good"]], proc.describe());
  assert.ok(!proc.events.some((e) => e.event === "error"), proc.describe());
});

test("--stay: a server restarted mid-session re-dials and gets a new session", async () => {
  const proc = L.stay;
  const before = proc.events.length;
  await peers[C].stop();
  const lost = await proc.waitFor((e) => proc.events.indexOf(e) >= before && from(C, "disconnected")(e), 10000);
  assert.match(lost.status, /^Bad/, proc.describe());

  const again = await startPeer({ uri: C, reverse: [L.stay.url], args: ["--no-big"] });
  extra.push(again);
  const back = await proc.waitFor((e) => proc.events.indexOf(e) > proc.events.indexOf(lost) &&
    from(C, "connected")(e), 20000);
  assert.equal(back.session, "new", proc.describe());
  assert.equal(back.endpoint_url, again.endpointUrl, "the new server's EndpointUrl");
  // The restarted server is read again on its new session; the resumed session earlier was not.
  await proc.waitFor((e) => proc.events.indexOf(e) > proc.events.indexOf(back) && from(C, "read")(e),
    20000);
  assert.equal(proc.events.filter(from(C, "read")).length, 2, proc.describe());
  assert.ok(["closed", "reset"].includes(lost.cause), proc.describe());
  assert.ok(!proc.events.some((e) => e.event === "error"), proc.describe());
  const { code } = await proc.stop();
  assert.equal(code, 0, proc.describe());
});
