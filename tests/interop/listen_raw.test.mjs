// `uarc listen` driven by fake servers on raw sockets (exact bytes), and its command line.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import os from "node:os";
import {
  startListen, runUarc, exitWithin, fakeServer, rhe, frame, uaString, parseErr, sleep, withTimeout,
} from "./helpers.mjs";

const BadTcpEndpointUrlInvalid = 0x80830000;
const ALLOWED = "urn:raw:allowed";
const ENDPOINT = "opc.tcp://127.0.0.1:4840/raw";

let listener; // --allow urn:raw:allowed --hello-timeout 1
const procs = [];
const sockets = [];

before(async () => {
  listener = await startListen(["--accept-only", "--allow", ALLOWED, "--hello-timeout", "1"]);
});

after(async () => {
  for (const s of sockets) s.socket.destroy();
  await Promise.all([listener?.stop(), ...procs.map((p) => p.stop())]);
});

async function connect() {
  const s = await fakeServer(listener.port);
  sockets.push(s);
  return s;
}

const hasIPv6Loopback = Object.values(os.networkInterfaces()).flat()
  .some((i) => i && i.family === "IPv6" && i.address === "::1");

async function rawConnect(host, port) {
  const socket = net.connect({ host, port });
  socket.on("error", () => {});
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

const byPeer = (peer, event) => (e) => e.peer === peer && (!event || e.event === event);

test("a valid RHE from an allowed ServerUri is accepted", async () => {
  const s = await connect();
  await s.write(rhe(ALLOWED, ENDPOINT));
  const accepted = await listener.waitFor(byPeer(s.localPeer, "accepted"), 5000);
  assert.equal(accepted.server_uri, ALLOWED);
  assert.equal(accepted.endpoint_url, ENDPOINT);
  const hello = listener.events.find(byPeer(s.localPeer, "hello"));
  assert.ok(hello, listener.describe());
  assert.equal(hello.server_uri, ALLOWED);
  assert.equal(hello.endpoint_url, ENDPOINT);
});

test("an RHE delivered one byte at a time is accepted", async () => {
  const s = await connect();
  const bytes = rhe(ALLOWED, ENDPOINT);
  s.socket.setNoDelay(true);
  for (let i = 0; i < bytes.length; i++) {
    await s.write(bytes.subarray(i, i + 1));
    await sleep(2);
  }
  const accepted = await listener.waitFor(byPeer(s.localPeer, "accepted"), 5000);
  assert.equal(accepted.endpoint_url, ENDPOINT);
});

test("an RHE from an unknown ServerUri gets ERR BadTcpEndpointUrlInvalid with a reason, then close", async () => {
  const s = await connect();
  await s.write(rhe("urn:raw:stranger", ENDPOINT));
  const bytes = await withTimeout(s.closed, 5000, "uarc closes the rejected socket");
  const err = parseErr(bytes);
  assert.equal(err.type, "ERRF", bytes.toString("hex"));
  assert.equal(err.size, bytes.length, "MessageSize counts the whole message, and nothing follows");
  assert.equal(bytes.readUInt32LE(8), BadTcpEndpointUrlInvalid);
  assert.deepEqual([...bytes.subarray(8, 12)], [0x00, 0x00, 0x83, 0x80], "little-endian status");
  assert.ok(err.reasonLength > 0 && err.reasonLength < 4096, `reason length ${err.reasonLength}`);
  assert.equal(16 + err.reasonLength, bytes.length);

  const rejected = await listener.waitFor(byPeer(s.localPeer, "rejected"), 5000);
  assert.equal(rejected.server_uri, "urn:raw:stranger");
  assert.equal(rejected.endpoint_url, ENDPOINT);
  assert.equal(rejected.status, "BadTcpEndpointUrlInvalid");
  assert.ok(rejected.reason.length > 0);
});

test("a silent socket is closed after --hello-timeout 1 with an error event BadTimeout", async () => {
  const t0 = Date.now();
  const s = await connect();
  await withTimeout(s.closed, 5000, "uarc closes the silent socket");
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 800, `closed after the timeout, not at once (${elapsed} ms)`);
  const ev = await listener.waitFor(byPeer(s.localPeer, "error"), 3000);
  assert.equal(ev.status, "BadTimeout");
  assert.ok(ev.reason.length > 0);
});

test("a silent socket does not delay an honest server", async () => {
  const silent = await connect();
  const honest = await connect();
  const t0 = Date.now();
  await honest.write(rhe(ALLOWED, ENDPOINT));
  await listener.waitFor(byPeer(honest.localPeer, "accepted"), 5000);
  assert.ok(Date.now() - t0 < 800, "accepted before the silent socket's hello timeout");
  silent.socket.destroy();
});

test("a frame that is not RHE is an error event, and the socket is closed", async () => {
  const s = await connect();
  await s.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  await withTimeout(s.closed, 5000, "uarc closes the socket");
  const ev = await listener.waitFor(byPeer(s.localPeer, "error"), 3000);
  assert.equal(ev.status, "BadTcpMessageTypeInvalid");
  assert.ok(ev.reason.length > 0);
  assert.ok(!listener.events.some(byPeer(s.localPeer, "hello")));
});

test("a ServerUri of 4096 bytes is refused (spec: under 4096)", async () => {
  const s = await connect();
  await s.write(frame("RHEF", Buffer.concat([uaString("u".repeat(4096)), uaString(ENDPOINT)])));
  await withTimeout(s.closed, 5000, "uarc closes the socket");
  const ev = await listener.waitFor((e) => e.peer === s.localPeer && (e.event === "error" || e.event === "rejected"), 3000);
  assert.equal(ev.status, "BadTcpEndpointUrlInvalid", JSON.stringify(ev));
  assert.ok(!listener.events.some(byPeer(s.localPeer, "accepted")));
});

test("a server that closes mid-RHE is an error event", async () => {
  const s = await connect();
  await s.write(rhe(ALLOWED, ENDPOINT).subarray(0, 20));
  await sleep(50);
  s.socket.end();
  const ev = await listener.waitFor(byPeer(s.localPeer, "error"), 5000);
  assert.equal(typeof ev.status, "string");
  assert.ok(ev.status.startsWith("Bad"), JSON.stringify(ev));
  assert.ok(ev.reason.length > 0);
});

/** Resolves once `pred()` holds (checked as output arrives), or fails after `ms`. */
async function until(pred, ms, what) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

const configLine = (connect, request, keepalive) =>
  new RegExp(`connect timeout ${connect} ms, request timeout ${request} ms, keep-alive ${keepalive} ms`);

test("--connect-timeout, --request-timeout and --keepalive reach the client configuration", async () => {
  const proc = await startListen(["--allow", ALLOWED, "--verbose", "--connect-timeout", "700",
    "--request-timeout", "2345", "--keepalive", "3456"]);
  procs.push(proc);
  const s = await fakeServer(proc.port);
  sockets.push(s);
  await s.write(rhe(ALLOWED, ENDPOINT));
  // The server never answers HEL: the connect ends after 700 ms, reported with its cause and peer.
  const ev = await proc.waitFor((e) => e.event === "error" && e.server_uri === ALLOWED, 5000);
  assert.equal(ev.step, "HEL", proc.describe());
  assert.equal(ev.status, "BadTimeout");
  assert.match(ev.reason, /700 ms/);
  assert.equal(ev.end, "connect timeout");
  assert.equal(ev.peer, s.localPeer);
  assert.match(proc.stderr(), configLine(700, 2345, 3456));
});

test("without them the client's defaults apply: 10000 ms, 10000 ms, keep-alive at most 5000 ms", async () => {
  const proc = await startListen(["--allow", ALLOWED, "--verbose"]);
  procs.push(proc);
  const s = await fakeServer(proc.port);
  sockets.push(s);
  await s.write(rhe(ALLOWED, ENDPOINT));
  await until(() => configLine(10000, 10000, "at most 5000").test(proc.stderr()), 5000,
    `the client's configuration is logged\n${proc.describe()}`);
});

test("the raw listener's output is JSON Lines flushed per line", () => {
  assert.deepEqual(listener.badLines, []);
  for (const chunk of listener.chunks) assert.ok(chunk.endsWith("\n"), JSON.stringify(chunk));
});

test("--count 1 exits 0 after one accepted server", async () => {
  const proc = await startListen(["--accept-only", "--allow", ALLOWED, "--count", "1"]);
  procs.push(proc);
  const s = await fakeServer(proc.port);
  sockets.push(s);
  await s.write(rhe(ALLOWED, ENDPOINT));
  const { code } = await exitWithin(proc, 5000);
  assert.equal(code, 0, proc.describe());
  assert.equal(proc.events.filter((e) => e.event === "accepted").length, 1);
});

test("--timeout exits 1 when nothing is accepted", async () => {
  const t0 = Date.now();
  const proc = await startListen(["--allow", ALLOWED, "--timeout", "1"]);
  procs.push(proc);
  const { code } = await exitWithin(proc, 10000);
  assert.equal(code, 1, proc.describe());
  assert.ok(Date.now() - t0 >= 900);
});

test("SIGINT closes cleanly with exit code 0", async () => {
  const proc = await startListen(["--allow", ALLOWED]);
  procs.push(proc);
  const { code, signal } = await proc.stop("SIGINT");
  assert.equal(signal, null);
  assert.equal(code, 0, proc.describe());
});

// A supervisor may stop the tool as soon as it has reported `listening`: the handlers must be in
// place by then (signals arriving between the report and the event loop once killed it).
test("SIGTERM right after `listening` exits 0 (10 times)", async () => {
  const outcomes = [];
  for (let i = 0; i < 10; i++) {
    const proc = await startListen(["--allow", ALLOWED]);
    procs.push(proc);
    const { code, signal } = await proc.stop("SIGTERM");
    outcomes.push(signal ?? code);
  }
  assert.deepEqual(outcomes, Array(10).fill(0), "exit code per run (a signal name: killed by it)");
});

test("default bind: one dual-stack socket [::]:PORT that takes IPv4 and IPv6 servers",
  { skip: hasIPv6Loopback ? false : "no IPv6 loopback on this machine" }, async () => {
    const proc = runUarc(["listen", "--json", "--accept-only", "--port", "0", "--allow", ALLOWED]);
    procs.push(proc);
    const listening = await proc.waitFor((e) => e.event === "listening", 5000);
    const m = /^\[::\]:(\d+)$/.exec(listening.address);
    assert.ok(m, `address of the default bind: ${listening.address}`);
    const p = Number(m[1]);
    for (const [host, shown] of [["127.0.0.1", "127.0.0.1"], ["::1", "[::1]"]]) {
      const socket = await rawConnect(host, p);
      socket.write(rhe(ALLOWED, ENDPOINT));
      const peer = `${shown}:${socket.localPort}`;
      const ev = await proc.waitFor(byPeer(peer, "accepted"), 5000);
      assert.equal(ev.server_uri, ALLOWED);
      socket.destroy();
    }
    await sleep(100);
    assert.equal(proc.events.filter((e) => e.event === "listening").length, 1, proc.describe());
    const { code } = await proc.stop();
    assert.equal(code, 0);
  });

test("two --bind addresses: one listening event each, on the same port",
  { skip: hasIPv6Loopback ? false : "no IPv6 loopback on this machine" }, async () => {
    const proc = runUarc(["listen", "--json", "--accept-only", "--bind", "::1", "--bind", "127.0.0.1", "--port", "0", "--allow", ALLOWED]);
    procs.push(proc);
    const [a, b] = await proc.waitCount((e) => e.event === "listening", 2, 5000);
    const addresses = [a.address, b.address].sort();
    const port = a.address.split(":").pop();
    assert.deepEqual(addresses, [`127.0.0.1:${port}`, `[::1]:${port}`].sort());
    const socket = await rawConnect("::1", Number(port));
    socket.write(rhe("urn:raw:stranger", ENDPOINT));
    const ev = await proc.waitFor(byPeer(`[::1]:${socket.localPort}`, "rejected"), 5000);
    assert.equal(ev.status, "BadTcpEndpointUrlInvalid");
    socket.destroy();
    await proc.stop();
  });

for (const [name, args] of [
  ["an unknown option", ["listen", "--no-such-option"]],
  ["a port that is not a number", ["listen", "--port", "forty"]],
  ["a port out of range", ["listen", "--port", "70000"]],
  ["a missing option value", ["listen", "--allow"]],
  ["--count 0", ["listen", "--count", "0", "--allow", ALLOWED]],
  ["--connect-timeout 0", ["listen", "--connect-timeout", "0", "--allow", ALLOWED]],
  ["--keepalive that is not a number", ["listen", "--keepalive", "soon", "--allow", ALLOWED]],
  ["--request-timeout with --accept-only", ["listen", "--accept-only", "--request-timeout", "5", "--allow", ALLOWED]],
  ["--max-handshakes 0", ["listen", "--max-handshakes", "0", "--allow", ALLOWED]],
  ["--max-handshakes with --accept-only", ["listen", "--accept-only", "--max-handshakes", "8", "--allow", ALLOWED]],
  ["a missing allow file", ["listen", "--allow-file", "/nonexistent/uarc-allow.txt"]],
]) {
  test(`usage error (${name}) exits 2 with a message on stderr`, async () => {
    const proc = runUarc(args);
    procs.push(proc);
    const { code } = await exitWithin(proc, 5000);
    assert.equal(code, 2, proc.describe());
    assert.ok(proc.stderr().trim().length > 0, "a message on stderr");
    assert.equal(proc.stdout(), "", "nothing on stdout");
  });
}

test("binding a port that is taken fails with exit 1 and names the address", async () => {
  const proc = runUarc(["listen", "--json", "--bind", "127.0.0.1", "--port", String(listener.port), "--allow", ALLOWED]);
  procs.push(proc);
  const { code } = await exitWithin(proc, 5000);
  assert.equal(code, 1, proc.describe());
  assert.match(proc.stderr(), new RegExp(`127\\.0\\.0\\.1.*${listener.port}|${listener.port}`));
});

// ---- why a connection ended, and a server refused the same way on every dial ----------------

const BadCertificateUntrusted = 0x801a0000;
const BadTcpMessageTypeInvalid = 0x807e0000;

/** Resolves once the fake server has received uarc's HEL. */
async function helReceived(s) {
  for (let i = 0; i < 500; i++) {
    const got = s.received();
    if (got.length >= 8 && got.subarray(0, 4).toString() === "HELF") return;
    await sleep(10);
  }
  throw new Error("no HEL arrived");
}

function errFrame(status, reason) {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(status >>> 0);
  return frame("ERRF", Buffer.concat([head, uaString(reason)]));
}

test("a lost connection says why in one word: reset, closed or timeout", async () => {
  const uris = { reset: "urn:raw:reset", closed: "urn:raw:closed", timeout: "urn:raw:timeout" };
  const proc = await startListen([...Object.values(uris).flatMap((u) => ["--allow", u]),
    "--connect-timeout", "800", "--read", "i=2258"]);
  procs.push(proc);
  for (const [cause, uri] of Object.entries(uris)) {
    const s = await fakeServer(proc.port);
    sockets.push(s);
    await s.write(rhe(uri, ENDPOINT));
    await helReceived(s);
    if (cause === "reset") s.socket.resetAndDestroy();
    else if (cause === "closed") s.socket.end();
    const ev = await proc.waitFor((e) => e.event === "error" && e.server_uri === uri, 10000);
    assert.equal(ev.cause, cause, proc.describe());
  }
});

test("a server failing the same way twice is backed off: one 'backoff' event, then ERR BadTcpMessageTypeInvalid", async () => {
  const uri = "urn:raw:untrusted";
  const proc = await startListen(["--allow", uri, "--read", "i=2258"]);
  procs.push(proc);
  for (let dial = 1; dial <= 2; dial++) {
    const s = await fakeServer(proc.port);
    sockets.push(s);
    await s.write(rhe(uri, ENDPOINT));
    await helReceived(s);
    await s.write(errFrame(BadCertificateUntrusted, "not trusted here"));
    await proc.waitCount((e) => e.event === "error" && e.server_uri === uri, dial, 10000);
  }
  const backoff = await proc.waitFor((e) => e.event === "backoff", 5000);
  assert.equal(backoff.server_uri, uri);
  assert.equal(backoff.status, "BadCertificateUntrusted");
  assert.ok(backoff.delay_ms > 0, proc.describe());
  for (let dial = 3; dial <= 5; dial++) {
    const s = await fakeServer(proc.port);
    sockets.push(s);
    await s.write(rhe(uri, ENDPOINT));
    const bytes = await withTimeout(s.closed, 5000, "the refused dial's close");
    assert.equal(parseErr(bytes).status, BadTcpMessageTypeInvalid, proc.describe());
  }
  assert.equal(proc.events.filter((e) => e.event === "error" && e.server_uri === uri).length, 2,
    "reported once per step, not per dial");
  assert.equal(proc.events.filter((e) => e.event === "backoff").length, 1, proc.describe());
});
