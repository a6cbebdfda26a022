// One slow server must not delay another: `uarc listen --read` runs each server's operations
// without blocking, so a quick server's read completes while a slow server's read is in flight.
//
// Two node-opcua peers whose ns=1;s=Slow answers a read after 8 s (A) and 1.5 s (B) wait for a
// listener on port P; the listener starts once both are up, so both dial within a second of it.
// With operations run one server at a time, either B's session would wait for A's read, or A
// would connect only after B's read: both orders fail the checks below.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startListen, loadPeer, exitWithin } from "./helpers.mjs";

const { startPeer } = await loadPeer();
const A = "urn:slow-a";
const B = "urn:slow-b";
const started = [];

after(async () => {
  await Promise.all(started.map((p) => p?.stop()));
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test("a quick server's read completes while a slow server's read is still in flight", async () => {
  const port = await freePort();
  const url = `opc.tcp://127.0.0.1:${port}`;
  const dial = { reverse: [url], reconnectDelay: 200, maxReconnectDelay: 500 };
  const [a, b] = await Promise.all([
    startPeer({ uri: A, ...dial, args: ["--no-big", "--slow-read", "8000"] }),
    startPeer({ uri: B, ...dial, args: ["--no-big", "--slow-read", "1500"] }),
  ]);
  started.push(a, b);

  const proc = await startListen(
    ["--allow", A, "--allow", B, "--read", "ns=1;s=Slow", "--count", "2"], { port });
  started.push(proc);
  const { code } = await exitWithin(proc, 40000, "uarc listen --count 2");
  assert.equal(code, 0, proc.describe());

  const at = (uri, event) => proc.events.findIndex((e) => e.server_uri === uri && e.event === event);
  const aConnected = at(A, "connected");
  const aRead = at(A, "read");
  const bConnected = at(B, "connected");
  const bRead = at(B, "read");
  for (const i of [aConnected, aRead, bConnected, bRead]) assert.ok(i >= 0, proc.describe());
  for (const i of [aRead, bRead]) {
    assert.equal(proc.events[i].status, "Good", proc.describe());
    assert.equal(proc.events[i].value, 1.5, proc.describe());
  }
  assert.ok(aConnected < bRead, `A's read was in flight when B's read ended\n${proc.describe()}`);
  assert.ok(bRead < aRead, `B's read did not wait for A's\n${proc.describe()}`);
  assert.ok(bConnected < aRead, `B's session did not wait for A's read\n${proc.describe()}`);
});
