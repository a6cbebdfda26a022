#!/usr/bin/env node
// node-opcua's own ClientSubscription as bench_subscription's e2e mode measures uarc: SESSIONS
// clients, each a session with one subscription of ITEMS monitored items (ns=1;s=V0..), sampling
// and publishing every INTERVAL ms, queue 10. Once every item has reported, for SECONDS: the
// notifications, this process's CPU time and the latency from a value's source timestamp to its
// "changed" callback (items 0, 16, 32, ... of each session). Prints one JSON line.
//
//   node bench/sub_node.mjs URL SESSIONS ITEMS SECONDS [INTERVAL]
process.env.NODEOPCUA_LOG_LEVEL ??= "3";

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/peer/package.json", import.meta.url));
const { OPCUAClient, OPCUACertificateManager, MessageSecurityMode, SecurityPolicy,
  ClientSubscription, ClientMonitoredItemGroup, AttributeIds, TimestampsToReturn } =
  require("node-opcua");

const [url, sessionsArg, itemsArg, secondsArg, intervalArg] = process.argv.slice(2);
const sessions = Number(sessionsArg), items = Number(itemsArg), seconds = Number(secondsArg);
const interval = Number(intervalArg ?? 100);

const pki = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-bench-node-"));
const certificates = new OPCUACertificateManager({ rootFolder: pki,
  automaticallyAcceptUnknownCertificate: true });

let measuring = false, changes = 0, unseen = sessions * items;
const seen = new Uint8Array(sessions * items);
const latency = []; // ms, measured values only

const t0 = performance.now();
const clients = [];
async function session(index) {
  const client = OPCUAClient.create({
    applicationName: "node-opcua bench subscriber",
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 0 },
    clientCertificateManager: certificates,
    requestedSessionTimeout: 600000,
    defaultTransactionTimeout: 600000,
  });
  await client.connect(url);
  const s = await client.createSession();
  clients.push({ client, s });
  const sub = ClientSubscription.create(s, {
    requestedPublishingInterval: interval,
    requestedMaxKeepAliveCount: 10,
    requestedLifetimeCount: 1000,
    maxNotificationsPerPublish: 0,
    publishingEnabled: true,
    priority: 0,
  });
  const nodes = [];
  for (let k = 0; k < items; k++)
    nodes.push({ nodeId: `ns=1;s=V${k}`, attributeId: AttributeIds.Value });
  const group = ClientMonitoredItemGroup.create(sub, nodes,
    { samplingInterval: interval, queueSize: 10, discardOldest: true }, TimestampsToReturn.Both);
  group.on("changed", (item, dataValue, k) => {
    const i = index * items + k;
    if (!measuring) {
      if (!seen[i]) { seen[i] = 1; unseen--; }
      return;
    }
    changes++;
    // the latency of one item in 16, as bench_subscription.c measures it
    if (k % 16 === 0 && dataValue.sourceTimestamp) latency.push(Date.now() - dataValue.sourceTimestamp.getTime());
  });
}

// The first client makes the key pair; the others then connect ten at a time (clients made at
// once before it exists find no private key).
await certificates.initialize();
await session(0);
for (let i = 1; i < sessions; i += 10)
  await Promise.all(Array.from({ length: Math.min(10, sessions - i) }, (_, j) => session(i + j)));
const deadline = performance.now() + 60000;
while (unseen > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const setup = (performance.now() - t0) / 1e3;
if (unseen > 0) {
  process.stderr.write(`sub_node: ${unseen} items never reported\n`);
  process.exit(1);
}
measuring = true;
const cpu0 = process.cpuUsage(), w0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
const cpu = process.cpuUsage(cpu0), wall = (performance.now() - w0) / 1e3;
measuring = false;
latency.sort((a, b) => a - b);
const q = (p) => (latency.length ? latency[Math.min(latency.length - 1, Math.floor(p * latency.length))] : NaN);
const cpuS = (cpu.user + cpu.system) / 1e6;
process.stdout.write(JSON.stringify({ bench: "e2e", who: "node-opcua", sessions, items,
  setup_s: setup, wall_s: wall, notifications: changes, per_s: changes / wall, cpu_s: cpuS,
  cpu_s_per_million: changes ? cpuS * 1e6 / changes : 0, p50_ms: q(0.5), p99_ms: q(0.99) }) + "\n");
await Promise.all(clients.map(async ({ client, s }) => {
  try { await s.close(); await client.disconnect(); } catch { /* leaving anyway */ }
}));
fs.rmSync(pki, { recursive: true, force: true });
process.exit(0);
