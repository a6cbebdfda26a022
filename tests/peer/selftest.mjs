// Self-test of the test peer with node-opcua's own client: every NodeId in README.md exists, is
// readable, the writable ones take a write of their own value, the methods answer, and the Big
// folder holds 5,000 children. Run: node --test tests/peer/selftest.mjs
process.env.NODEOPCUA_LOG_LEVEL ??= "3";

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startPeer } from "./peer.mjs";

const ua = await import("node-opcua");
const { OPCUAClient, AttributeIds, StatusCodes, DataType, BrowseDirection, MessageSecurityMode, SecurityPolicy } = ua;

const SCALARS = [
  "Boolean", "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float",
  "Double", "String", "DateTime", "Guid", "ByteString", "XmlElement", "NodeId", "ExpandedNodeId",
  "StatusCode", "QualifiedName", "LocalizedText", "ExtensionObject", "DataValue", "Variant",
  "DiagnosticInfo",
];
const ARRAYS = ["Boolean", "Byte", "Int32", "UInt64", "Double", "String", "ByteString", "LocalizedText", "Variant", "Empty"];

let peer;
let client;
let session;

before(async () => {
  peer = await startPeer({ uri: "urn:peer-selftest", args: ["--user", "alice:secret"] });
  client = OPCUAClient.create({
    endpointMustExist: false,
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 0 },
  });
  await client.connect(peer.endpointUrl);
  session = await client.createSession();
});

after(async () => {
  await session?.close().catch(() => {});
  await client?.disconnect().catch(() => {});
  await peer?.stop();
});

test("the started line names the endpoint and the uri", () => {
  assert.match(peer.endpointUrl, /^opc\.tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(peer.started.application_uri, "urn:peer-selftest");
});

test("every scalar reads Good with its own built-in type", async () => {
  const values = await session.read(SCALARS.map((n) => ({ nodeId: `ns=1;s=Scalar.${n}`, attributeId: AttributeIds.Value })));
  SCALARS.forEach((name, i) => {
    assert.equal(values[i].statusCode.value, StatusCodes.Good.value, `${name}: ${values[i].statusCode}`);
    const expected = name === "Variant" ? "Int32" : name;
    assert.equal(DataType[values[i].value.dataType], expected, name);
  });
});

test("every scalar and array takes a write of its own value", async () => {
  const ids = [...SCALARS.map((n) => `ns=1;s=Scalar.${n}`), ...ARRAYS.map((n) => `ns=1;s=Array.${n}`), "ns=1;s=Matrix.Double"];
  const values = await session.read(ids.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
  const results = await session.write(
    ids.map((nodeId, i) => ({ nodeId, attributeId: AttributeIds.Value, value: { value: values[i].value } })),
  );
  results.forEach((r, i) => assert.equal(r.value, StatusCodes.Good.value, `${ids[i]}: ${r}`));
});

test("the read-only variable refuses a write", async () => {
  const [r] = await session.write([
    { nodeId: "ns=1;s=ReadOnly.Int32", attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Int32, value: 1 } } },
  ]);
  assert.equal(r.value, StatusCodes.BadNotWritable.value);
});

test("the matrix has dimensions 3x4", async () => {
  const dv = await session.read({ nodeId: "ns=1;s=Matrix.Double", attributeId: AttributeIds.Value });
  assert.deepEqual(dv.value.dimensions, [3, 4]);
  assert.equal(dv.value.value[4 + 2], 12);
});

test("Methods/Add and Methods/Concat answer", async () => {
  const r = await session.call({
    objectId: "ns=1;s=Methods",
    methodId: "ns=1;s=Methods/Add",
    inputArguments: [{ dataType: DataType.Double, value: 1.25 }, { dataType: DataType.Double, value: 2 }],
  });
  assert.equal(r.statusCode.value, StatusCodes.Good.value);
  assert.equal(r.outputArguments[0].value, 3.25);
  const c = await session.call({
    objectId: "ns=1;s=Methods",
    methodId: "ns=1;s=Methods/Concat",
    inputArguments: [{ dataType: DataType.String, value: "ab" }, { dataType: DataType.String, value: "\u00e9" }],
  });
  assert.equal(c.outputArguments[0].value, "ab\u00e9");
  assert.equal(c.outputArguments[1].value, 4);
});

test("Big holds Item0001..Item5000 (with continuation points)", async () => {
  const names = [];
  let r = await session.browse({ nodeId: "ns=1;s=Big", browseDirection: BrowseDirection.Forward, resultMask: 63 });
  names.push(...r.references.map((x) => x.browseName.name));
  while (r.continuationPoint && r.continuationPoint.length) {
    [r] = await session.browseNext([r.continuationPoint], false);
    names.push(...r.references.map((x) => x.browseName.name));
  }
  const items = names.filter((n) => n.startsWith("Item")).sort();
  assert.equal(items.length, 5000);
  assert.equal(items[0], "Item0001");
  assert.equal(items[4999], "Item5000");
  const dv = await session.read({ nodeId: "ns=1;s=Big/Item4321", attributeId: AttributeIds.Value });
  assert.equal(dv.value.value, 4321);
});

test("a user name session is accepted with the right password only", async () => {
  const good = await client.createSession({ type: ua.UserTokenType.UserName, userName: "alice", password: "secret" });
  await good.close();
  await assert.rejects(client.createSession({ type: ua.UserTokenType.UserName, userName: "alice", password: "wrong" }));
});
