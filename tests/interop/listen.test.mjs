// `uarc listen` against real node-opcua 2.186.4 servers that dial it with Reverse Connect.
//
// Two peers are started once for the whole file (each takes about 3 s): urn:peer-a, which the
// first listener allows, and urn:peer-b, which it does not. Both dial port P, learned from the
// first listener's `listening` event; later tests start new listeners on the same P with other
// options (the peers re-dial every 100-400 ms while nothing listens there).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startListen, loadPeer, exitWithin, sleep } from "./helpers.mjs";

const { startPeer } = await loadPeer();

let listener; // the first uarc listen, --allow urn:peer-a, no --count
let peerA;
let peerB;
let port;
const others = []; // later uarc processes

// Runs body(proc) with a listener on port P, and always stops it (P is free for the next test).
async function withListener(args, body) {
  const proc = await startListen(args, { port });
  others.push(proc);
  try {
    return await body(proc);
  } finally {
    await proc.stop();
  }
}
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-interop-"));
  listener = await startListen(["--allow", "urn:peer-a", "--hello-timeout", "5"]);
  port = listener.port;
  [peerA, peerB] = await Promise.all([
    startPeer({ uri: "urn:peer-a", reverse: [listener.url], args: ["--no-big"] }),
    startPeer({ uri: "urn:peer-b", reverse: [listener.url], args: ["--no-big"] }),
  ]);
});

after(async () => {
  await Promise.all([listener?.stop(), ...others.map((p) => p.stop()), peerA?.stop(), peerB?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const fromA = (e) => e.server_uri === "urn:peer-a";
const fromB = (e) => e.server_uri === "urn:peer-b";

test("listening reports the bound address with the kernel's port", () => {
  const listening = listener.events.filter((e) => e.event === "listening");
  assert.equal(listening.length, 1, listener.describe());
  assert.match(listening[0].address, /^127\.0\.0\.1:\d+$/);
  assert.ok(port > 0 && port < 65536);
  assert.equal(listener.events[0].event, "listening", "listening comes first");
});

test("an allowed server: hello then accepted, with its ApplicationUri and EndpointUrl", async () => {
  const accepted = await listener.waitFor((e) => e.event === "accepted" && fromA(e), 20000);
  assert.equal(accepted.server_uri, "urn:peer-a");
  assert.equal(accepted.endpoint_url, peerA.endpointUrl);
  assert.match(accepted.peer, /^127\.0\.0\.1:\d+$/);

  const hello = listener.events.find((e) => e.event === "hello" && e.peer === accepted.peer);
  assert.ok(hello, `a hello from ${accepted.peer} before accepted\n${listener.describe()}`);
  assert.equal(hello.server_uri, "urn:peer-a");
  assert.equal(hello.endpoint_url, peerA.endpointUrl);
  assert.ok(listener.events.indexOf(hello) < listener.events.indexOf(accepted), "hello precedes accepted");
});

test("a server missing from the allowlist is rejected with BadTcpEndpointUrlInvalid, and re-dials", async () => {
  const rejected = await listener.waitCount((e) => e.event === "rejected" && fromB(e), 2, 20000);
  for (const r of rejected) {
    assert.equal(r.status, "BadTcpEndpointUrlInvalid");
    assert.equal(typeof r.reason, "string");
    assert.ok(r.reason.length > 0, "non-empty reason");
    assert.equal(r.endpoint_url, peerB.endpointUrl);
    assert.match(r.peer, /^127\.0\.0\.1:\d+$/);
  }
  assert.notEqual(rejected[0].peer, rejected[1].peer, "the second rejection is a new connection");
  assert.ok(!listener.events.some((e) => e.event === "accepted" && fromB(e)), "peer-b never accepted");
});

test("the allowed server is still accepted while the other one keeps being rejected", async () => {
  const before = listener.events.filter((e) => e.event === "accepted" && fromA(e)).length;
  await listener.waitCount((e) => e.event === "accepted" && fromA(e), before + 2, 20000);
  assert.ok(listener.child.exitCode === null, "still running without --count");
});

test("stdout is JSON Lines, one event per line, flushed per line", () => {
  assert.deepEqual(listener.badLines, [], "every line parses as JSON");
  for (const chunk of listener.chunks) {
    assert.ok(chunk.endsWith("\n"), `a chunk ends at a line end: ${JSON.stringify(chunk)}`);
  }
  // This listener opens a session on each accepted server (the default): connected, read,
  // browse and disconnected name the server by server_uri; the socket events name the peer.
  const known = new Set(["listening", "hello", "accepted", "rejected", "error", "connected", "read",
    "browse", "disconnected", "dropped"]);
  for (const e of listener.events) assert.ok(known.has(e.event), `known event: ${JSON.stringify(e)}`);
  for (const e of listener.events.filter((x) => ["hello", "accepted", "rejected"].includes(x.event))) {
    assert.match(e.peer, /^127\.0\.0\.1:\d+$/, JSON.stringify(e));
  }
  for (const e of listener.events.filter((x) => x.event !== "listening" && x.event !== "error")) {
    assert.equal(typeof e.server_uri, "string", JSON.stringify(e));
  }
});

test("SIGTERM closes cleanly with exit code 0", async () => {
  const { code, signal } = await exitWithin({ exited: listener.stop("SIGTERM"), describe: listener.describe }, 5000);
  assert.equal(signal, null, listener.describe());
  assert.equal(code, 0, listener.describe());
});

// --accept-only counts accepted connections; with sessions --count counts distinct servers
// (reverse.test.mjs), and only one server is allowed here.
test("--count 2 --accept-only exits 0 after two accepted connections", async () => {
  await withListener(["--allow", "urn:peer-a", "--count", "2", "--accept-only"], async (proc) => {
    const { code } = await exitWithin(proc, 30000);
    assert.equal(code, 0, proc.describe());
    assert.equal(proc.events.filter((e) => e.event === "accepted").length, 2, proc.describe());
    assert.ok(proc.events.filter((e) => e.event === "accepted").every(fromA));
  });
});

test("--allow-file: URIs one per line, comments, an EndpointUrl pin", async () => {
  const file = path.join(tmp, "allow.txt");
  fs.writeFileSync(file, [
    "# servers allowed to dial in",
    "",
    `urn:peer-b ${peerB.endpointUrl}`,
    "urn:peer-a opc.tcp://127.0.0.1:1",
    "",
  ].join("\n"));
  await withListener(["--allow-file", file], async (proc) => {
    const acceptedB = await proc.waitFor((e) => e.event === "accepted" && fromB(e), 20000);
    assert.equal(acceptedB.endpoint_url, peerB.endpointUrl);
    // peer-a is listed, but pinned to another EndpointUrl: rejected.
    const rejectedA = await proc.waitFor((e) => e.event === "rejected" && fromA(e), 20000);
    assert.equal(rejectedA.status, "BadTcpEndpointUrlInvalid");
    assert.ok(rejectedA.reason.length > 0);
    assert.ok(!proc.events.some((e) => e.event === "accepted" && fromA(e)), proc.describe());
    const { code } = await proc.stop();
    assert.equal(code, 0, proc.describe());
  });
});

test("--timeout exits 1 when only rejected servers came", async () => {
  const started = Date.now();
  await withListener(["--allow", "urn:nobody", "--timeout", "3"], async (proc) => {
    const { code } = await exitWithin(proc, 15000);
    const elapsed = Date.now() - started;
    assert.equal(code, 1, proc.describe());
    assert.ok(elapsed >= 2500, `waited the timeout (${elapsed} ms)`);
    assert.ok(proc.events.some((e) => e.event === "rejected"), `servers did dial in meanwhile\n${proc.describe()}`);
    assert.ok(!proc.events.some((e) => e.event === "accepted"));
  });
});

test("the peers are still alive (they were only rejected, never broken)", async () => {
  await sleep(10);
  assert.equal(peerA.child.exitCode, null, peerA.stderr());
  assert.equal(peerB.child.exitCode, null, peerB.stderr());
});
