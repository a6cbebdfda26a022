#!/usr/bin/env node
// The benchmark server: a plain node-opcua server on loopback (standard address space only, so
// i=2258 is there), SecurityPolicy None, anonymous, room for many sessions, dialing every
// --reverse target with Reverse Connect and re-dialing quickly after each close.
//
//   node bench/server.mjs [--reverse opc.tcp://127.0.0.1:PORT]... [--reconnect-delay MS]
//                         [--variables N]
//
// --variables N adds ns=1;s=V0 ... V<N-1>: Int32 variables whose value is a counter that moves at
// every read, so every sample of a monitored item is a change, stamped with the time it was taken
// (the subscription benchmark's source of data changes).
// Prints one JSON line {"endpoint_url": ...} once started; exits on SIGTERM or when stdin closes.
// It differs from tests/peer/server.mjs in what a benchmark needs: maxSessions and
// maxSubscriptions well above the defaults of 10 and 100 (the memory benchmark holds dozens of
// sessions, the end-to-end one 100 of a subscription each), no test address space, a long
// connectionTimeout (a target that is not being measured keeps its dialed socket waiting for a
// while).
process.env.NODEOPCUA_LOG_LEVEL ??= "3";

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/peer/package.json", import.meta.url));
const { OPCUAServer, OPCUACertificateManager, SecurityPolicy, MessageSecurityMode,
  RegisterServerMethod, DataType, DataValue, StatusCodes, Variant } = require("node-opcua");

const reverse = [];
let reconnectDelay = 10;
let variables = 0;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--reverse") reverse.push(argv[++i]);
  else if (argv[i] === "--reconnect-delay") reconnectDelay = Number(argv[++i]);
  else if (argv[i] === "--variables") variables = Number(argv[++i]);
  else {
    process.stderr.write(`bench/server.mjs: unknown argument ${argv[i]}\n`);
    process.exit(2);
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-bench-server-"));
const pki = (sub) => new OPCUACertificateManager({
  rootFolder: path.join(tmp, sub), automaticallyAcceptUnknownCertificate: true,
});

const server = new OPCUAServer({
  port: 0,
  host: "127.0.0.1",
  hostname: "127.0.0.1",
  serverInfo: { applicationUri: "urn:uarc:bench:server" },
  securityPolicies: [SecurityPolicy.None],
  securityModes: [MessageSecurityMode.None],
  allowAnonymous: true,
  serverCertificateManager: pki("server-pki"),
  userCertificateManager: pki("user-pki"),
  registerServerMethod: RegisterServerMethod.HIDDEN,
  // node-opcua allows 100 subscriptions in all by default: exactly the 100 x 100 configuration of
  // the end-to-end benchmark, so that one subscription of a client still closing made the next
  // client's last session fail (BadTooManySubscriptions)
  serverCapabilities: { maxSessions: 1000, maxSubscriptions: 10000 },
  maxConnectionsPerEndpoint: 1000,
  ...(reverse.length > 0 && {
    reverseConnect: {
      connections: reverse.map((endpointUrl) => ({ endpointUrl })),
      reconnectDelay,
      maxReconnectDelay: Math.max(reconnectDelay, 200),
      connectionTimeout: 120000,
    },
  }),
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => finish(), 3000).unref();
  try {
    await server.shutdown(0);
  } catch {
    // leaving anyway
  }
  finish();
}
function finish() {
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();

await server.initialize();
if (variables > 0) {
  const space = server.engine.addressSpace;
  const ns = space.getOwnNamespace();
  const folder = ns.addFolder(space.rootFolder.objects, { browseName: "Bench" });
  let counter = 0;
  for (let i = 0; i < variables; i++) {
    ns.addVariable({
      componentOf: folder,
      nodeId: `s=V${i}`,
      browseName: `V${i}`,
      dataType: "Int32",
      minimumSamplingInterval: 10,
      value: {
        timestamped_get: () => {
          const now = new Date();
          counter = (counter + 1) & 0x7fffffff;
          return new DataValue({ value: new Variant({ dataType: DataType.Int32, value: counter }),
            statusCode: StatusCodes.Good, sourceTimestamp: now, serverTimestamp: now });
        },
      },
    });
  }
}
await server.start();
process.stdout.write(JSON.stringify({ endpoint_url: server.getEndpointUrl() }) + "\n");
