// Reverse connect end to end: a node-opcua 2.186.4 server dials `uarc listen`, which opens a
// secure channel and a session over that socket and reads and browses the peer's test address
// space (tests/peer/README.md lists its NodeIds and values).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startListen, loadPeer, exitWithin } from "./helpers.mjs";

const { startPeer } = await loadPeer();
const URI = "urn:peer-session";

let peer;
let port;
const procs = [];

before(async () => {
  // Learn a free port from a first listener, then let the peer dial it; each test starts its own
  // listener on that port (the peer re-dials every 100-400 ms while nothing listens).
  const probe = await startListen(["--allow", URI]);
  port = probe.port;
  await probe.stop();
  peer = await startPeer({ uri: URI, reverse: [`opc.tcp://127.0.0.1:${port}`] });
});

after(async () => {
  await Promise.all([...procs.map((p) => p.stop()), peer?.stop()]);
});

async function session(args, timeoutMs = 60000) {
  const proc = await startListen(["--allow", URI, "--count", "1", "--timeout", "60", ...args], { port });
  procs.push(proc);
  const { code } = await exitWithin(proc, timeoutMs);
  return { proc, code };
}

const SCALARS = {
  Boolean: true,
  SByte: -100,
  Byte: 200,
  Int16: -30000,
  UInt16: 60000,
  Int32: -2000000000,
  UInt32: 4000000000,
  Int64: "-1234567890123",
  UInt64: "18000000000000000000",
  Float: 3.5,
  Double: 3.141592653589793,
  String: "Hello, uarc \u2713",
};

test("reads every scalar type, an array and the matrix; exits 0 after --count 1", async () => {
  const names = ["Boolean", "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
    "Float", "Double", "String", "DateTime", "Guid", "ByteString", "XmlElement", "NodeId",
    "ExpandedNodeId", "StatusCode", "QualifiedName", "LocalizedText", "ExtensionObject", "DataValue",
    "Variant", "DiagnosticInfo"];
  const nodes = [...names.map((n) => `ns=1;s=Scalar.${n}`), "ns=1;s=Array.Int32", "ns=1;s=Matrix.Double", "i=2255"];
  const { proc, code } = await session(nodes.flatMap((n) => ["--read", n]));
  assert.equal(code, 0, proc.describe());

  const connected = proc.events.find((e) => e.event === "connected");
  assert.ok(connected, proc.describe());
  assert.equal(connected.server_uri, URI);
  assert.equal(connected.endpoint_url, peer.endpointUrl);

  const reads = new Map(proc.events.filter((e) => e.event === "read").map((e) => [e.node, e]));
  for (const n of nodes) {
    const r = reads.get(n);
    assert.ok(r, `a read event for ${n}\n${proc.describe()}`);
    assert.equal(r.server_uri, URI);
    assert.equal(r.status, "Good", JSON.stringify(r));
  }
  for (const [name, value] of Object.entries(SCALARS)) {
    const r = reads.get(`ns=1;s=Scalar.${name}`);
    assert.equal(r.type, name, JSON.stringify(r));
    if (typeof value === "string" && /^-?\d+$/.test(value)) {
      assert.equal(String(r.value), value, `${name}: ${JSON.stringify(r)}`);
    } else {
      assert.deepEqual(r.value, value, `${name}: ${JSON.stringify(r)}`);
    }
  }
  assert.deepEqual(reads.get("ns=1;s=Array.Int32").value, [-1, 0, 1, 2147483647, -2147483648]);
  assert.deepEqual(reads.get("ns=1;s=Matrix.Double").value, [[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23]]);
  assert.equal(reads.get("i=2255").value[0], "http://opcfoundation.org/UA/");

  const iConnected = proc.events.indexOf(connected);
  assert.ok(proc.events.filter((e) => e.event === "read").every((e) => proc.events.indexOf(e) > iConnected));
});

test("browses the Methods object and the 5,000 children of Big", async () => {
  const { proc, code } = await session(["--browse", "ns=1;s=Methods", "--browse", "ns=1;s=Big"]);
  assert.equal(code, 0, proc.describe());
  const browses = new Map(proc.events.filter((e) => e.event === "browse").map((e) => [e.node, e]));
  const methods = browses.get("ns=1;s=Methods");
  assert.ok(methods, proc.describe());
  const names = methods.references.map((r) => r.browse_name);
  assert.ok(names.includes("1:Add") && names.includes("1:Concat"), JSON.stringify(methods));
  const add = methods.references.find((r) => r.browse_name === "1:Add");
  assert.equal(add.node, "ns=1;s=Methods/Add");
  assert.equal(add.node_class, "Method");

  const big = browses.get("ns=1;s=Big");
  assert.ok(big, proc.describe().slice(0, 4000));
  const items = big.references.map((r) => r.browse_name).filter((n) => n.startsWith("1:Item")).sort();
  assert.equal(items.length, 5000);
  assert.equal(items[0], "1:Item0001");
  assert.equal(items[4999], "1:Item5000");
});

test("an unknown NodeId reads as BadNodeIdUnknown", async () => {
  const { proc } = await session(["--read", "ns=1;s=NoSuchNode", "--read", "ns=1;s=Scalar.Int32"]);
  const reads = proc.events.filter((e) => e.event === "read");
  const bad = reads.find((e) => e.node === "ns=1;s=NoSuchNode");
  assert.ok(bad, proc.describe());
  assert.equal(bad.status, "BadNodeIdUnknown");
  const good = reads.find((e) => e.node === "ns=1;s=Scalar.Int32");
  assert.equal(good?.value, -2000000000, proc.describe());
});

test("the peer kept running through all the sessions", () => {
  assert.equal(peer.child.exitCode, null, peer.stderr());
});
