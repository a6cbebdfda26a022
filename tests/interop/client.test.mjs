// The forward-connecting client commands (`uarc endpoints | read | write | browse | call`) against
// a real node-opcua 2.186.4 server (tests/peer/server.mjs) on loopback.
//
// Two peers for the whole file, started together in before() (about 3 s each, more on a busy
// machine): `peer`, with the 5,000-child Big folder and at most 2,000 references per node from
// Browse, so that browsing Big needs continuation points (node-opcua alone never limits them
// unless the client asks, and uarc asks for no maximum); and `userPeer`, which accepts only the
// user alice:secret. Tests run in file order: the reads of the initial values come before the
// writes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { runUarc, loadPeer, exitWithin } from "./helpers.mjs";

const { startPeer } = await loadPeer();

const MAX_REFS = 2000;
let peer;
let userPeer;
let url;
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-client-"));
  [peer, userPeer] = await Promise.all([
    startPeer({ uri: "urn:uarc:client-test", args: ["--max-references-per-node", String(MAX_REFS)] }),
    startPeer({
      uri: "urn:uarc:client-test-users",
      args: ["--no-big", "--user", "alice:secret", "--no-anonymous"],
    }),
  ]);
  url = peer.endpointUrl;
});

after(async () => {
  await Promise.all([peer?.stop(), userPeer?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs `uarc ARGS...` to the end: { code, events, stderr, describe }. */
async function uarc(args, ms = 20000) {
  const proc = runUarc(args);
  const { code, signal } = await exitWithin(proc, ms);
  assert.equal(proc.badLines.length, 0, `every stdout line is JSON\n${proc.describe()}`);
  return { code, signal, events: proc.events, stderr: proc.stderr(), describe: proc.describe };
}

/** Reads nodes in one `uarc read` and returns the read events in order (all must be Good). */
async function readAll(nodes) {
  const r = await uarc(["read", url, ...nodes, "--json"]);
  assert.equal(r.code, 0, r.describe());
  const reads = r.events.filter((e) => e.event === "read");
  assert.deepEqual(reads.map((e) => e.node), nodes, r.describe());
  for (const e of reads) assert.equal(e.status, "Good", JSON.stringify(e));
  return reads;
}

// ---- standard nodes ----

test("standard nodes: ServerStatus, CurrentTime, NamespaceArray", async () => {
  const [status, time, namespaces] = await readAll(["i=2256", "i=2258", "i=2255"]);

  // ServerStatusDataType, decoded from its ExtensionObject into a JSON object.
  assert.equal(status.type, "ExtensionObject");
  assert.equal(status.value.State, 0, "ServerState Running");
  assert.equal(status.value.BuildInfo.ProductUri, "urn:uarc:test-peer");
  assert.equal(status.value.BuildInfo.ManufacturerName, "uarc");
  assert.equal(status.value.BuildInfo.ProductName, "uarc test peer");
  assert.ok(Date.parse(status.value.StartTime) <= Date.parse(status.value.CurrentTime));

  assert.equal(time.type, "DateTime");
  assert.match(time.value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.ok(Math.abs(Date.parse(time.value) - Date.now()) < 60000, `CurrentTime ${time.value} is now`);

  assert.equal(namespaces.type, "String[]");
  assert.equal(namespaces.value[0], "http://opcfoundation.org/UA/");
  assert.ok(namespaces.value.includes(peer.uri), JSON.stringify(namespaces.value));
});

// ---- reading what server.mjs defines ----

const SCALARS = {
  Boolean: ["Boolean", true],
  SByte: ["SByte", -100],
  Byte: ["Byte", 200],
  Int16: ["Int16", -30000],
  UInt16: ["UInt16", 60000],
  Int32: ["Int32", -2000000000],
  UInt32: ["UInt32", 4000000000],
  Int64: ["Int64", "-1234567890123"], // 64-bit integers are JSON strings
  UInt64: ["UInt64", "18000000000000000000"],
  Float: ["Float", 3.5],
  Double: ["Double", 3.141592653589793],
  String: ["String", "Hello, uarc \u2713"],
  DateTime: ["DateTime", "2024-01-02T03:04:05.678Z"],
  Guid: ["Guid", "72962b91-fa75-4ae6-8d28-b404dc7daf63"],
  ByteString: ["ByteString", Buffer.from([0x00, 0x01, 0x02, 0xfe, 0xff]).toString("base64")],
  XmlElement: ["XmlElement", "<a>b</a>"],
  NodeId: ["NodeId", "ns=1;s=Scalar.Double"],
  // node-opcua keeps no NamespaceUri on an ExpandedNodeId of namespace 0 (its own client reads
  // the same), so i=2258 is what the server sends.
  ExpandedNodeId: ["ExpandedNodeId", "i=2258"],
  StatusCode: ["StatusCode", { Code: 0x800a0000, Symbol: "BadTimeout" }],
  QualifiedName: ["QualifiedName", "1:uarc"],
  LocalizedText: ["LocalizedText", { Locale: "en-US", Text: "Hello" }],
  ExtensionObject: ["ExtensionObject", { Low: -1.5, High: 10.25 }], // a Range
  DataValue: ["DataValue", { Value: 42 }],
  Variant: ["Int32", 42], // a BaseDataType variable: the value's own type
  DiagnosticInfo: ["DiagnosticInfo", { SymbolicId: 1, LocalizedText: 2, AdditionalInfo: "uarc" }],
};

test("every ns=1 scalar has the type and value server.mjs gives it", async () => {
  const names = Object.keys(SCALARS);
  const reads = await readAll([...names.map((n) => `ns=1;s=Scalar.${n}`), "ns=1;s=ReadOnly.Int32"]);
  names.forEach((name, i) => {
    const [type, value] = SCALARS[name];
    assert.equal(reads[i].type, type, `type of Scalar.${name}`);
    assert.deepEqual(reads[i].value, value, `value of Scalar.${name}`);
    assert.ok(reads[i].source_timestamp, `Scalar.${name} has a source timestamp`);
  });
  assert.equal(reads[names.length].type, "Int32");
  assert.equal(reads[names.length].value, 7);
});

const ARRAYS = {
  Boolean: ["Boolean[]", [true, false, true]],
  Byte: ["Byte[]", [1, 2, 3, 250]],
  Int32: ["Int32[]", [-1, 0, 1, 2147483647, -2147483648]],
  UInt64: ["UInt64[]", ["0", "1", "18446744073709551615"]],
  Double: ["Double[]", [0, -1.5, 1e300, Number.MIN_VALUE]],
  String: ["String[]", ["alpha", "", "\u00e9t\u00e9", null]],
  ByteString: ["ByteString[]", ["YWI=", "", null]],
  LocalizedText: ["LocalizedText[]", [{ Locale: "en", Text: "one" }, { Text: "two" }]],
  Variant: ["Variant[]", [7, "x"]],
  Empty: ["Int32[]", []],
};

test("every ns=1 array and the matrix have the values server.mjs gives them", async () => {
  const names = Object.keys(ARRAYS);
  const reads = await readAll([...names.map((n) => `ns=1;s=Array.${n}`), "ns=1;s=Matrix.Double"]);
  names.forEach((name, i) => {
    const [type, value] = ARRAYS[name];
    assert.equal(reads[i].type, type, `type of Array.${name}`);
    assert.deepEqual(reads[i].value, value, `value of Array.${name}`);
  });
  // ArrayDimensions [3,4], row-major, element [r][c] = 10r + c: nested arrays in JSON, and the
  // dimensions in the type (a one-dimensional array is "Double[]").
  const matrix = reads[names.length];
  assert.equal(matrix.type, "Double[3,4]");
  assert.deepEqual(matrix.value, [[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23]]);
});

test("a response spanning many chunks: a 20,000-element Double array (160 KB, 64 KiB chunks)", async () => {
  const [large] = await readAll(["ns=1;s=Array.Large"]);
  assert.equal(large.type, "Double[]");
  assert.equal(large.value.length, 20000);
  large.value.forEach((v, i) => {
    if (v !== i * 0.5) assert.fail(`Array.Large[${i}] is ${v}, expected ${i * 0.5}`);
  });
});

// ---- writing ----

// [variable, TYPE, VALUE text, the value read back as JSON]
const WRITES = [
  ["Boolean", "Boolean", "false", false],
  ["SByte", "SByte", "-128", -128],
  ["Byte", "Byte", "255", 255],
  ["Int16", "Int16", "-32768", -32768],
  ["UInt16", "UInt16", "65535", 65535],
  ["Int32", "Int32", "-2147483648", -2147483648],
  ["UInt32", "UInt32", "4294967295", 4294967295],
  ["Int64", "Int64", "-9223372036854775808", "-9223372036854775808"],
  ["UInt64", "UInt64", "18446744073709551615", "18446744073709551615"],
  ["Float", "Float", "-0.25", -0.25],
  ["Double", "Double", "-2.5e-10", -2.5e-10],
  ["String", "String", "na\u00efve \u2713 \"quoted\"", "na\u00efve \u2713 \"quoted\""],
  ["DateTime", "DateTime", "2030-06-07T08:09:10.123Z", "2030-06-07T08:09:10.123Z"],
  ["Guid", "Guid", "01234567-89AB-CDEF-0123-456789ABCDEF", "01234567-89ab-cdef-0123-456789abcdef"],
  ["ByteString", "ByteString", "xyz", Buffer.from("xyz").toString("base64")],
  ["XmlElement", "XmlElement", "<b c=\"d\"/>", "<b c=\"d\"/>"],
  ["NodeId", "NodeId", "ns=1;s=Big/Item0042", "ns=1;s=Big/Item0042"],
  ["ExpandedNodeId", "ExpandedNodeId", "ns=1;i=7", "ns=1;i=7"],
  ["StatusCode", "StatusCode", "BadNodeIdUnknown", { Code: 0x80340000, Symbol: "BadNodeIdUnknown" }],
  ["QualifiedName", "QualifiedName", "2:Name", "2:Name"],
  ["LocalizedText", "LocalizedText", "Bonjour", { Text: "Bonjour" }],
  ["Variant", "String", "any type", "any type"], // a BaseDataType variable takes any type
];

test("write then read back every built-in type the TYPE parser supports", async () => {
  for (const [name, type, text, expected] of WRITES) {
    const node = `ns=1;s=Scalar.${name}`;
    const w = await uarc(["write", url, node, type, text, "--json"]);
    assert.equal(w.code, 0, w.describe());
    const ev = w.events.find((e) => e.event === "write");
    assert.ok(ev, w.describe());
    assert.equal(ev.node, node);
    assert.equal(ev.status, "Good");
    assert.equal(ev.type, type);
    assert.deepEqual(ev.value, expected, `the write event echoes the value written to ${node}`);
  }
  const reads = await readAll(WRITES.map(([name]) => `ns=1;s=Scalar.${name}`));
  WRITES.forEach(([name, type, , expected], i) => {
    assert.equal(reads[i].type, type, `type read back from Scalar.${name}`);
    assert.deepEqual(reads[i].value, expected, `value read back from Scalar.${name}`);
  });
});

test("integer texts are decimal or 0x hex, never octal: 010 is ten", async () => {
  for (const [text, expected] of [["010", 10], ["-0x1F", -31], ["+7", 7]]) {
    const w = await uarc(["write", url, "ns=1;s=Scalar.Int32", "Int32", text, "--json"]);
    assert.equal(w.code, 0, w.describe());
    const [r] = await readAll(["ns=1;s=Scalar.Int32"]);
    assert.equal(r.value, expected, `${text}: ${JSON.stringify(r)}`);
  }
  const bad = await uarc(["write", url, "ns=1;s=Scalar.Int32", "Int32", "09x", "--json"]);
  assert.equal(bad.code, 2, bad.describe());
});

// One-dimensional arrays: TYPE[] and a JSON array of the scalar texts, as strings or as bare
// numbers and booleans. [variable, TYPE, VALUE text, the value read back as JSON]; every value
// differs from the one server.mjs gives the variable.
const ARRAY_WRITES = [
  ["Boolean", "Boolean[]", '[false, true, "1", 0]', [false, true, true, false]],
  ["SByte", "SByte[]", "[127,-1]", [127, -1]],
  ["Byte", "Byte[]", '[255, "0x10"]', [255, 16]],
  ["Int16", "Int16[]", "[-1,32767]", [-1, 32767]],
  ["UInt16", "UInt16[]", "[65535, 2]", [65535, 2]],
  ["Int32", "Int32[]", "[1,-2,3]", [1, -2, 3]],
  ["UInt32", "UInt32[]", "[4294967295]", [4294967295]],
  ["Int64", "Int64[]", '["-9223372036854775808", 5]', ["-9223372036854775808", "5"]],
  ["UInt64", "UInt64[]", '["18446744073709551615",2]', ["18446744073709551615", "2"]],
  ["Float", "Float[]", "[-0.25, 1e3]", [-0.25, 1000]],
  ["Double", "Double[]", "[ -2.5e-10 , 1E300 ]", [-2.5e-10, 1e300]],
  ["String", "String[]", '["a", "", "\\u00e9t\\u00e9 \\"q\\"", "\\ud83d\\ude00 \\\\ \\/"]',
    ["a", "", "\u00e9t\u00e9 \"q\"", "\u{1f600} \\ /"]],
  ["DateTime", "DateTime[]", '["2030-06-07T08:09:10.123Z", "1999-01-01T00:00:00Z"]',
    ["2030-06-07T08:09:10.123Z", "1999-01-01T00:00:00Z"]],
  ["Guid", "Guid[]", '["01234567-89AB-CDEF-0123-456789ABCDEF"]', ["01234567-89ab-cdef-0123-456789abcdef"]],
  ["ByteString", "ByteString[]", '["xyz", ""]', [Buffer.from("xyz").toString("base64"), ""]],
  ["XmlElement", "XmlElement[]", '["<b c=\\"d\\"/>", "<e/>"]', ["<b c=\"d\"/>", "<e/>"]],
  ["NodeId", "NodeId[]", '["ns=1;s=Big/Item0042", "i=85"]', ["ns=1;s=Big/Item0042", "i=85"]],
  ["ExpandedNodeId", "ExpandedNodeId[]", '["ns=1;i=7", "svr=1;i=2"]', ["ns=1;i=7", "svr=1;i=2"]],
  ["StatusCode", "StatusCode[]", '["BadNodeIdUnknown", 0]',
    [{ Code: 0x80340000, Symbol: "BadNodeIdUnknown" }, { Code: 0, Symbol: "Good" }]],
  ["QualifiedName", "QualifiedName[]", '["2:Name", "plain"]', ["2:Name", "plain"]],
  ["LocalizedText", "LocalizedText[]", '["Bonjour"]', [{ Text: "Bonjour" }]],
  ["Variant", "Int32[]", "[]", []], // a BaseDataType variable: an empty Int32 array
];

test("write then read back a one-dimensional array of every type the TYPE parser supports", async () => {
  for (const [name, type, text, expected] of ARRAY_WRITES) {
    const node = `ns=1;s=Array.${name}`;
    const w = await uarc(["write", url, node, type, text, "--json"]);
    assert.equal(w.code, 0, w.describe());
    assert.deepEqual(w.events.map((e) => [e.event, e.node, e.status, e.type]), [["write", node, "Good", type]],
      w.describe());
    assert.deepEqual(w.events[0].value, expected, `the write event echoes the array written to ${node}`);
  }
  const reads = await readAll(ARRAY_WRITES.map(([name]) => `ns=1;s=Array.${name}`));
  ARRAY_WRITES.forEach(([name, type, , expected], i) => {
    assert.equal(reads[i].type, type, `type read back from Array.${name}`);
    assert.deepEqual(reads[i].value, expected, `value read back from Array.${name}`);
  });
});

test("a malformed array VALUE is a usage error naming the problem: exit 2 before connecting", async () => {
  const cases = [
    ["Int32[]", "[1,,2]", /"\[1,,2\]" is not a JSON array of Int32: an element is missing \(at offset 3\)/],
    ["Int32[]", "[1, 2", /is not a JSON array of Int32: no closing \]/],
    ["Int32[]", "1,2", /is not a JSON array of Int32: it does not start with \[/],
    ["String[]", '["a" "b"]', /is not a JSON array of String: expected , or \] after an element/],
    ["String[]", '["a\\x"]', /is not a JSON array of String: an unknown escape in a string/],
    ["Int32[]", "[null]", /is not a JSON array of Int32: null is not an element value/],
    ["SByte[]", "[1,-129]", /element 1 of the SByte\[\] array: "-129" is not a valid SByte/],
    ["Struct[]", "[1]", /unsupported type "Struct\[\]"/],
  ];
  for (const [type, text, message] of cases) {
    const r = await uarc(["write", url, "ns=1;s=Array.Int32", type, text, "--json"]);
    assert.equal(r.code, 2, r.describe());
    assert.equal(r.events.length, 0, r.describe());
    assert.match(r.stderr, message, r.describe());
  }
  const [after_] = await readAll(["ns=1;s=Array.Int32"]);
  assert.deepEqual(after_.value, [1, -2, 3], "the array is unchanged");
  const help = runUarc(["write", "--help"]);
  assert.equal((await exitWithin(help, 20000)).code, 0);
  for (const word of ["XmlElement", "ExpandedNodeId", "TYPE[]", "Int32[] '[1,-2,3]'"]) {
    assert.ok(help.stdout().includes(word), `write --help mentions ${word}`);
  }
});

// A node's Bad result is the status of its `read` or `write` event, one line per operation; an
// `error` event only comes when there is no result (arguments, connect, the service call failed).
test("a write of the wrong type: BadTypeMismatch in the write event alone, exit 1", async () => {
  const r = await uarc(["write", url, "ns=1;s=Scalar.UInt32", "String", "not a number", "--json"]);
  assert.equal(r.code, 1, r.describe());
  assert.deepEqual(r.events.map((e) => e.event), ["write"], r.describe());
  assert.equal(r.events[0].status, "BadTypeMismatch", r.describe());
  assert.equal(r.events[0].node, "ns=1;s=Scalar.UInt32");
  const [after_] = await readAll(["ns=1;s=Scalar.UInt32"]);
  assert.equal(after_.value, 4294967295, "the value is unchanged");
});

test("a write to a read-only variable: BadNotWritable, exit 1", async () => {
  const r = await uarc(["write", url, "ns=1;s=ReadOnly.Int32", "Int32", "8", "--json"]);
  assert.equal(r.code, 1, r.describe());
  assert.equal(r.events.find((e) => e.event === "write").status, "BadNotWritable");
});

test("a value the TYPE parser rejects is a usage error: exit 2 before connecting, nothing written", async () => {
  const r = await uarc(["write", url, "ns=1;s=Scalar.SByte", "SByte", "-129", "--json"]);
  assert.equal(r.code, 2, r.describe());
  assert.match(r.stderr, /"-129" is not a valid SByte/);
  assert.equal(r.events.length, 0, r.describe());
  const c = await uarc(["call", url, "ns=1;s=Methods", "ns=1;s=Methods/Add", "Double:x", "--json"]);
  assert.equal(c.code, 2, c.describe());
  assert.match(c.stderr, /"x" is not a valid Double/);
});

// ---- unknown nodes ----

test("an unknown node id: status BadNodeIdUnknown, exit 1 (read and write)", async () => {
  const r = await uarc(["read", url, "ns=1;s=NoSuchNode", "--json"]);
  assert.equal(r.code, 1, r.describe());
  assert.deepEqual(r.events.map((e) => e.event), ["read"], r.describe());
  const ev = r.events.find((e) => e.event === "read");
  assert.equal(ev.node, "ns=1;s=NoSuchNode");
  assert.equal(ev.status, "BadNodeIdUnknown");
  assert.equal(ev.value, null);

  // One bad node among good ones: every node is still read, and the exit code says "failed".
  const mixed = await uarc(["read", url, "i=2258", "ns=7;i=1", "i=2255", "--json"]);
  assert.equal(mixed.code, 1, mixed.describe());
  assert.deepEqual(mixed.events.filter((e) => e.event === "read").map((e) => e.status),
    ["Good", "BadNodeIdUnknown", "Good"]);

  // A node id that does not parse is a usage error before anything is read (usage.test.mjs).
  const unparsable = await uarc(["read", url, "i=2258", "not-a-node", "ns=7;i=1", "i=2255", "--json"]);
  assert.equal(unparsable.code, 2, unparsable.describe());
  assert.equal(unparsable.events.length, 0, unparsable.describe());
  assert.match(unparsable.stderr, /NODEID: not a NodeId: "not-a-node"/, unparsable.describe());

  const w = await uarc(["write", url, "ns=1;s=NoSuchNode", "Int32", "1", "--json"]);
  assert.equal(w.code, 1, w.describe());
  assert.deepEqual(w.events.map((e) => e.event), ["write"], w.describe());
  assert.equal(w.events[0].status, "BadNodeIdUnknown");
});

// ---- browsing ----

test("browse the Objects folder (the default node)", async () => {
  const r = await uarc(["browse", url, "--json"]);
  assert.equal(r.code, 0, r.describe());
  const browse = r.events.filter((e) => e.event === "browse");
  assert.equal(browse.length, 1, r.describe());
  assert.equal(browse[0].node, "i=85");
  const byNode = new Map(browse[0].references.map((x) => [x.node, x]));
  assert.deepEqual(byNode.get("i=2253"),
    { node: "i=2253", browse_name: "Server", display_name: "Server", node_class: "Object" });
  for (const name of ["Scalar", "Array", "Matrix", "Methods", "Big", "Stats"]) {
    const ref = byNode.get(`ns=1;s=${name}`);
    assert.ok(ref, `Objects holds ns=1;s=${name}\n${r.describe()}`);
    assert.equal(ref.browse_name, `1:${name}`);
    assert.equal(ref.display_name, name);
    assert.equal(ref.node_class, "Object");
  }
});

async function browseNextCount() {
  const [ev] = await readAll(["ns=1;s=Stats.BrowseNext"]);
  return ev.value;
}

test(`browse the Big folder: all 5,000 references, through continuation points (${MAX_REFS} per response)`, async () => {
  const before_ = await browseNextCount();
  const r = await uarc(["browse", url, "ns=1;s=Big", "--json"]);
  assert.equal(r.code, 0, r.describe());
  const [ev] = r.events.filter((e) => e.event === "browse");
  const refs = ev.references;
  assert.equal(refs.length, 5000, `${refs.length} references`);
  const names = new Set(refs.map((x) => x.browse_name));
  assert.equal(names.size, 5000, "no reference twice");
  for (let i = 1; i <= 5000; i++) {
    const name = `Item${String(i).padStart(4, "0")}`;
    if (!names.has(`1:${name}`)) assert.fail(`1:${name} is missing`);
  }
  assert.ok(refs.every((x) => x.node_class === "Variable" && x.node.startsWith("ns=1;s=Big/Item")));
  // The peer caps each response at MAX_REFS: the tool had to follow ceil(5000/2000) - 1 = 2
  // continuation points. Each of the first two responses holds 2,000 references of more than 50
  // bytes each (a 100 KB BrowseResponse), so they arrive in several 64 KiB chunks as well.
  const used = (await browseNextCount()) - before_;
  assert.equal(used, Math.ceil(5000 / MAX_REFS) - 1, "BrowseNext calls the peer served");
});

test("browse --recursive of Objects terminates and visits every node once", async () => {
  const r = await uarc(["browse", url, "--recursive", "--json"], 45000);
  assert.equal(r.code, 0, r.describe());
  const browse = r.events.filter((e) => e.event === "browse");
  const nodes = browse.map((e) => e.node);
  assert.equal(new Set(nodes).size, nodes.length, "no node browsed twice");
  assert.equal(nodes[0], "i=85");
  const big = browse.find((e) => e.node === "ns=1;s=Big");
  assert.ok(big, "Big was browsed");
  assert.equal(big.references.length, 5000);
  const methods = browse.find((e) => e.node === "ns=1;s=Methods");
  assert.deepEqual(methods.references.map((x) => x.browse_name).filter((n) => !n.includes("Argument")).sort(),
    ["1:Add", "1:Concat"]);
  for (const n of ["ns=1;s=Scalar", "ns=1;s=Array.Large", "ns=1;s=Big/Item5000", "i=2253"]) {
    assert.ok(nodes.includes(n), `${n} was visited`);
  }
});

// ---- methods ----

test("call Add and Concat: outputs as JSON", async () => {
  const add = await uarc(["call", url, "ns=1;s=Methods", "ns=1;s=Methods/Add", "Double:1.5", "Double:-2.25", "--json"]);
  assert.equal(add.code, 0, add.describe());
  const ev = add.events.find((e) => e.event === "call");
  assert.equal(ev.object, "ns=1;s=Methods");
  assert.equal(ev.method, "ns=1;s=Methods/Add");
  assert.equal(ev.status, "Good");
  assert.deepEqual(ev.outputs, [-0.75]);

  const concat = await uarc(["call", url, "ns=1;s=Methods", "ns=1;s=Methods/Concat", "String:ab", "String:\u00e9t\u00e9", "--json"]);
  assert.equal(concat.code, 0, concat.describe());
  assert.deepEqual(concat.events.find((e) => e.event === "call").outputs, ["ab\u00e9t\u00e9", 7]);
});

test("call with wrong argument types, too few arguments or an unknown method: one call event with the Bad result, exit 1", async () => {
  // The server answered for the method: its result is the call event (as for read and write);
  // no error event, which is for a call that got no result at all.
  const wrong = await uarc(["call", url, "ns=1;s=Methods", "ns=1;s=Methods/Add", "String:one", "Double:2", "--json"]);
  assert.equal(wrong.code, 1, wrong.describe());
  assert.deepEqual(wrong.events.map((e) => e.event), ["call"], wrong.describe());
  assert.equal(wrong.events[0].status, "BadInvalidArgument", wrong.describe());
  assert.deepEqual(wrong.events[0].input_results, ["BadTypeMismatch", "Good"], wrong.describe());
  assert.deepEqual(wrong.events[0].outputs, []);

  const missing = await uarc(["call", url, "ns=1;s=Methods", "ns=1;s=Methods/Add", "Double:2", "--json"]);
  assert.equal(missing.code, 1, missing.describe());
  assert.deepEqual(missing.events.map((e) => e.event), ["call"], missing.describe());
  assert.equal(missing.events[0].status, "BadArgumentsMissing");

  const unknown = await uarc(["call", url, "ns=1;s=Methods", "ns=1;s=Methods/Nope", "--json"]);
  assert.equal(unknown.code, 1, unknown.describe());
  assert.deepEqual(unknown.events.map((e) => e.event), ["call"], unknown.describe());
  assert.match(unknown.events[0].status, /^BadMethodInvalid|^BadNodeIdUnknown/);

});

// ---- endpoints ----

test("endpoints lists the None endpoint", async () => {
  const r = await uarc(["endpoints", url, "--json"]);
  assert.equal(r.code, 0, r.describe());
  const eps = r.events.filter((e) => e.event === "endpoint");
  assert.ok(eps.length >= 1, r.describe());
  const none = eps.find((e) => e.security_policy === "http://opcfoundation.org/UA/SecurityPolicy#None");
  assert.ok(none, r.describe());
  assert.equal(none.security_mode, "None");
  assert.equal(none.endpoint_url, url);
  assert.equal(none.server_application_uri, peer.uri);
  assert.ok(none.user_tokens.includes("Anonymous"));
  assert.ok(none.certificate_bytes > 0);
});

// ---- failures ----

test("connection refused: error event at step connect, exit 1", async () => {
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const r = await uarc(["read", `opc.tcp://127.0.0.1:${port}`, "i=2258", "--json"]);
  assert.equal(r.code, 1, r.describe());
  const err = r.events.find((e) => e.event === "error");
  assert.equal(err.step, "connect", r.describe());
  assert.match(err.status, /^Bad/);
  assert.match(err.reason, /refused/i);
  assert.equal(r.events.length, 1);
});

test("a server that never answers HEL: --timeout bounds the connect (step HEL, BadTimeout)", async () => {
  const sockets = [];
  const srv = net.createServer((s) => sockets.push(s));
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  try {
    const t0 = Date.now();
    const r = await uarc(["read", `opc.tcp://127.0.0.1:${srv.address().port}`, "i=2258", "--timeout", "0.5", "--json"]);
    const took = Date.now() - t0;
    assert.equal(r.code, 1, r.describe());
    const err = r.events.find((e) => e.event === "error");
    assert.equal(err.step, "HEL", r.describe());
    assert.equal(err.status, "BadTimeout");
    assert.ok(took >= 450 && took < 5000, `took ${took} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    srv.close();
  }
});

test("usage errors exit 2 and print no events", async () => {
  const cases = [
    ["read"],
    ["read", "opc.tcp://127.0.0.1:4840"],
    ["write", "opc.tcp://127.0.0.1:4840", "i=1", "Int32"],
    ["browse", "opc.tcp://127.0.0.1:4840", "i=85", "i=84"],
    ["call", "opc.tcp://127.0.0.1:4840", "i=2253"],
    ["endpoints", "opc.tcp://127.0.0.1:4840", "extra"],
    ["read", url, "i=2258", "--bogus"],
    ["read", url, "i=2258", "--timeout"],
    ["read", url, "i=2258", "--timeout", "soon"],
    ["read", url, "i=2258", "--timeout", "0"],
    ["read", url, "i=2258", "--recursive"],
    ["read", url, "i=2258", "--json=yes"],
    ["read", url, "i=2258", "--password-file", path.join(tmp, "pw-missing")],
    ["read", url, "i=2258", "--password-file", writePassword("p1", "secret")],
  ];
  for (const args of cases) {
    const r = await uarc([...args]);
    assert.equal(r.code, 2, `exit 2 for ${args.join(" ")}\n${r.describe()}`);
    assert.equal(r.events.length, 0, r.describe());
    assert.ok(r.stderr.length > 0, `a message on stderr for ${args.join(" ")}`);
  }
  const help = runUarc(["read", "--help"]);
  assert.equal((await exitWithin(help, 20000)).code, 0);
  assert.match(help.stdout(), /usage: uarc read URL NODEID/);
});

function writePassword(name, text) {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `${text}\n`);
  return file;
}

test("options work before, between and after the positional arguments", async () => {
  const node = "ns=1;s=Scalar.UInt16";
  const variants = [
    ["read", "--json", "--timeout", "5", url, node],
    ["read", url, "--json", node],
    ["read", url, node, "--timeout=5", "--json"],
    ["read", "--timeout", "5", url, "--json", node, "--verbose"],
  ];
  for (const args of variants) {
    const r = await uarc(args);
    assert.equal(r.code, 0, r.describe());
    assert.equal(r.events.length, 1, r.describe());
    assert.equal(r.events[0].node, node);
    assert.equal(r.events[0].value, 65535);
  }
  const w = await uarc(["write", "--json", url, node, "--timeout", "5", "UInt16", "7"]);
  assert.equal(w.code, 0, w.describe());
  assert.equal(w.events[0].value, 7);
  const b = await uarc(["browse", "--recursive", url, "--json", "ns=1;s=Matrix"]);
  assert.equal(b.code, 0, b.describe());
  assert.deepEqual(b.events.map((e) => e.node), ["ns=1;s=Matrix", "ns=1;s=Matrix.Double"]);
  const c = await uarc(["call", "--json", url, "ns=1;s=Methods", "--timeout", "5", "ns=1;s=Methods/Add", "Double:1", "Double:2"]);
  assert.equal(c.code, 0, c.describe());
  assert.deepEqual(c.events[0].outputs, [3]);
  const e = await uarc(["endpoints", "--json", url]);
  assert.equal(e.code, 0, e.describe());
  // `--` ends the options: a NodeId that starts with a dash would be taken as a value.
  const dd = await uarc(["read", "--json", "--", url, node]);
  assert.equal(dd.code, 0, dd.describe());
  // Without --json: text lines, not JSON.
  const text = runUarc(["read", url, node]);
  assert.equal((await exitWithin(text, 20000)).code, 0);
  assert.match(text.stdout(), /^read node=ns=1;s=Scalar\.UInt16 status=Good type=UInt16 value=7/);
});

// ---- user names ----

test("user name login: anonymous refused, password accepted only with --allow-unencrypted-password", async () => {
  const uurl = userPeer.endpointUrl;
  const good = writePassword("good", "secret");
  const bad = writePassword("bad", "wrong");

  const ep = await uarc(["endpoints", uurl, "--json"]);
  assert.equal(ep.code, 0, ep.describe());
  assert.ok(ep.events.some((e) => e.user_tokens.includes("UserName")), ep.describe());

  const anonymous = await uarc(["read", uurl, "i=2258", "--json"]);
  assert.equal(anonymous.code, 1, anonymous.describe());
  assert.equal(anonymous.events[0].step, "ActivateSession");
  assert.match(anonymous.events[0].status, /^Bad/);

  const ok = await uarc(["read", "--user", "alice", uurl, "i=2258", "--password-file", good,
    "--allow-unencrypted-password", "--json"]);
  assert.equal(ok.code, 0, ok.describe());
  assert.equal(ok.events[0].status, "Good");
  assert.equal(ok.events[0].type, "DateTime");

  const refused = await uarc(["read", uurl, "i=2258", "--user", "alice", "--password-file", good, "--json"]);
  assert.equal(refused.code, 1, refused.describe());
  assert.equal(refused.events.length, 1, refused.describe());
  assert.equal(refused.events[0].event, "error");
  assert.equal(refused.events[0].step, "ActivateSession");
  assert.equal(refused.events[0].status, "BadSecurityModeInsufficient");
  assert.match(refused.stderr, /ActivateSession: BadSecurityModeInsufficient/);

  const wrong = await uarc(["read", uurl, "i=2258", "--user", "alice", "--password-file", bad,
    "--allow-unencrypted-password", "--json"]);
  assert.equal(wrong.code, 1, wrong.describe());
  assert.equal(wrong.events[0].step, "ActivateSession");
  assert.match(wrong.events[0].status, /^Bad(UserAccessDenied|IdentityTokenRejected|IdentityTokenInvalid)$/);
});
