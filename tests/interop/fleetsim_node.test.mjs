// fleetsim against node-opcua 2.186.4's client: one simulated server dials node-opcua's
// ClientReverseConnect; the client opens a session, reads, browses and subscribes.
//   FLEETSIM_BIN  the simulator       PEER_DIR  tests/peer (node_modules with node-opcua)
process.env.NODEOPCUA_LOG_LEVEL ??= "3";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const PEER_DIR = path.resolve(process.env.PEER_DIR ?? path.join(here, "../peer"));
const FLEETSIM_BIN = process.env.FLEETSIM_BIN;
if (!FLEETSIM_BIN) throw new Error("FLEETSIM_BIN is not set: run through ctest");
const ua = await import(pathToFileURL(createRequire(path.join(PEER_DIR, "package.json"))
  .resolve("node-opcua")).href);
const { ClientReverseConnect, OPCUAClient, OPCUACertificateManager, MessageSecurityMode,
  SecurityPolicy, AttributeIds, TimestampsToReturn, DataType } = ua;

let tmp, rc, sim, client, session, stderr = "";

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-fleetsim-node-"));
  rc = new ClientReverseConnect({ connectionUrl: "opc.tcp://127.0.0.1:0" });
  await rc.start();
  sim = spawn(FLEETSIM_BIN, ["--servers", "1", "--target", `127.0.0.1:${rc.listeningPort}`,
    "--rate", "20", "--items", "3", "--redial-ms", "100", "--stats-ms", "0"],
  { stdio: ["ignore", "ignore", "pipe"] });
  sim.stderr.on("data", (d) => { stderr += d; });
  client = OPCUAClient.create({
    applicationName: "uarc fleetsim interop",
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 0 },
    clientCertificateManager: new OPCUACertificateManager({ rootFolder: tmp,
      automaticallyAcceptUnknownCertificate: true }),
  });
  await client.connectReverse(rc, { serverUri: "urn:fleetsim:0" });
  session = await client.createSession();
});

after(async () => {
  await session?.close().catch(() => {});
  sim?.kill("SIGTERM"); // before the disconnect, so that it does not dial again
  await client?.disconnect().catch(() => {});
  await rc?.stop().catch(() => {});
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("node-opcua reads the counter, an item, CurrentTime and the namespaces", async () => {
  const [counter, item, time, namespaces, missing] = await session.read([
    { nodeId: "ns=1;s=Counter", attributeId: AttributeIds.Value },
    { nodeId: "ns=1;i=1002", attributeId: AttributeIds.Value },
    { nodeId: "i=2258", attributeId: AttributeIds.Value },
    { nodeId: "i=2255", attributeId: AttributeIds.Value },
    { nodeId: "ns=1;i=1003", attributeId: AttributeIds.Value },
  ]);
  assert.equal(counter.statusCode.name, "Good", stderr);
  assert.equal(counter.value.dataType, DataType.UInt32);
  assert.equal(item.value.dataType, DataType.Double);
  assert.ok(Math.abs(item.value.value % 1 - 0.002) < 1e-9, `item value ${item.value.value}`);
  assert.ok(Math.abs(time.value.value.getTime() - Date.now()) < 60000);
  assert.deepEqual(namespaces.value.value, ["http://opcfoundation.org/UA/", "urn:fleetsim:0"]);
  assert.equal(missing.statusCode.name, "BadNodeIdUnknown");
});

test("node-opcua browses Objects", async () => {
  const result = await session.browse("i=85");
  assert.equal(result.statusCode.name, "Good");
  assert.deepEqual(result.references.map((r) => r.nodeId.toString()),
    ["ns=0;i=2253", "ns=1;s=Counter", "ns=1;i=1000", "ns=1;i=1001", "ns=1;i=1002"]);
});

test("node-opcua subscribes: every counter value, in order", async () => {
  const subscription = await session.createSubscription2({
    requestedPublishingInterval: 100, requestedMaxKeepAliveCount: 10, requestedLifetimeCount: 100,
    maxNotificationsPerPublish: 0, publishingEnabled: true, priority: 1,
  });
  const item = await subscription.monitor(
    { nodeId: "ns=1;s=Counter", attributeId: AttributeIds.Value },
    { samplingInterval: 50, queueSize: 100, discardOldest: true }, TimestampsToReturn.Both);
  const values = [];
  await new Promise((resolve) => {
    item.on("changed", (dv) => {
      values.push(dv.value.value);
      if (values.length >= 20) resolve();
    });
  });
  await subscription.terminate();
  for (let k = 1; k < values.length; k++) assert.equal(values[k], values[k - 1] + 1, `${values}`);
});
