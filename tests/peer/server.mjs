#!/usr/bin/env node
// The uarc test peer: a node-opcua server on loopback with a predictable address space in
// namespace 1, optionally dialing uarc listeners with Reverse Connect. See README.md for the
// command line and the NodeIds. It prints exactly one JSON line on stdout once it has started,
// and exits on SIGTERM/SIGINT or when its stdin pipe closes (so a crashed test never leaves it
// running).

// Quiet by default: must be set before node-opcua is imported (it reads it at load time).
process.env.NODEOPCUA_LOG_LEVEL ??= "3";

import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const USAGE = `usage: node server.mjs --uri URI [options]
  --uri URI                  ApplicationUri (the ServerUri of its ReverseHello); required
  --reverse URL              dial this uarc listener (opc.tcp://HOST:PORT); repeatable
  --reconnect-delay MS       first re-dial delay (default 200)
  --max-reconnect-delay MS   re-dial back-off ceiling (default 1000)
  --connection-timeout MS    give up on a dialed socket that never sends HEL (default 10000; node-opcua
                             never uses less than 2000)
  --port N                   forward-connect listening port on 127.0.0.1 (default 0 = kernel's choice)
  --user NAME:PASSWORD       accept this user name identity; repeatable
  --no-anonymous             refuse anonymous sessions
  --token-lifetime MS        ceiling of the secure channel token lifetime (default 600000)
  --no-big                   skip the 5,000-variable folder (faster start)
  --max-references-per-node N
                             return at most N references per node from Browse, with a continuation
                             point for the rest, even when the client asks for more or no limit
                             (default 0: node-opcua's behaviour, the client's limit only)
  --slow-read MS             ns=1;s=Slow (a Double, 1.5) answers a read only after MS (default 0)
  --secure                   also offer Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss
                             endpoints in modes Sign and SignAndEncrypt (None stays), trusting every
                             client certificate
  --certificate FILE         its certificate (PEM), perhaps followed by its issuers (a chain,
                             sent in its endpoints as it is), with --private-key FILE (PEM).
                             Default: node-opcua makes a self-signed one
  --certificate-out FILE     write the server's certificate (DER) to FILE once started
  --events-every MS          raise a BaseEventType event on the Server object every MS: Message
                             "tick N" (N from 1), Severity 100 (default 0: none)
  --fast-counter             add ns=1;s=FastCounter, a UInt32 incremented every 1 ms
  --max-publish-requests N   PublishRequests a session queues; one more gets the oldest answered
                             BadTooManyPublishRequests (default 0: node-opcua's 100)
  --max-monitored-items-per-call N
                             OperationLimits/MaxMonitoredItemsPerCall; more items in one
                             Create/Modify/SetMonitoringMode/DeleteMonitoredItems get
                             BadTooManyOperations (default 0: node-opcua's 10000)
  --retransmission-queue N   keep at most N sent NotificationMessages per subscription for
                             Republish (default: node-opcua's 100; 0: none, as a server
                             without a retransmission queue)
  --no-values-on-activate    do not re-send every item's last value at each ActivateSession
                             (node-opcua does; open62541 does not)
  --trust-user FILE          trust this user certificate (PEM or DER) for X509 identities;
                             repeatable. Without it every user certificate is accepted
  --help                     this text`;

function usage(message) {
  if (message) process.stderr.write(`server.mjs: ${message}\n`);
  process.stderr.write(USAGE + "\n");
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    uri: undefined,
    reverse: [],
    reconnectDelay: 200,
    maxReconnectDelay: 1000,
    connectionTimeout: 10000,
    port: 0,
    users: [],
    anonymous: true,
    tokenLifetime: 600000,
    big: true,
    maxReferencesPerNode: 0,
    slowReadMs: 0,
    secure: false,
    certificate: undefined,
    privateKey: undefined,
    certificateOut: undefined,
    maxPublishRequests: 0,
    maxMonitoredItemsPerCall: 0,
    eventsEvery: 0,
    fastCounter: false,
    retransmissionQueue: -1,
    valuesOnActivate: true,
    trustUser: [],
  };
  const intArg = (name, value) => {
    if (value === undefined || !/^\d+$/.test(value)) usage(`${name} needs a non-negative integer`);
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--uri": opts.uri = next(); break;
      case "--reverse": opts.reverse.push(next()); break;
      case "--reconnect-delay": opts.reconnectDelay = intArg(arg, next()); break;
      case "--max-reconnect-delay": opts.maxReconnectDelay = intArg(arg, next()); break;
      case "--connection-timeout": opts.connectionTimeout = intArg(arg, next()); break;
      case "--port": opts.port = intArg(arg, next()); break;
      case "--token-lifetime": opts.tokenLifetime = intArg(arg, next()); break;
      case "--user": {
        const v = next();
        const colon = v.indexOf(":");
        if (colon <= 0) usage("--user needs NAME:PASSWORD");
        opts.users.push({ name: v.slice(0, colon), password: v.slice(colon + 1) });
        break;
      }
      case "--no-anonymous": opts.anonymous = false; break;
      case "--no-big": opts.big = false; break;
      case "--max-references-per-node": opts.maxReferencesPerNode = intArg(arg, next()); break;
      case "--slow-read": opts.slowReadMs = intArg(arg, next()); break;
      case "--secure": opts.secure = true; break;
      case "--certificate": opts.certificate = next(); break;
      case "--private-key": opts.privateKey = next(); break;
      case "--certificate-out": opts.certificateOut = next(); break;
      case "--max-publish-requests": opts.maxPublishRequests = intArg(arg, next()); break;
      case "--max-monitored-items-per-call": opts.maxMonitoredItemsPerCall = intArg(arg, next()); break;
      case "--events-every": opts.eventsEvery = intArg(arg, next()); break;
      case "--fast-counter": opts.fastCounter = true; break;
      case "--retransmission-queue": opts.retransmissionQueue = intArg(arg, next()); break;
      case "--no-values-on-activate": opts.valuesOnActivate = false; break;
      case "--trust-user": opts.trustUser.push(next()); break;
      case "--help": case "-h":
        process.stdout.write(USAGE + "\n");
        process.exit(0);
        break;
      default: usage(`unknown argument: ${arg}`);
    }
  }
  if (!opts.uri) usage("--uri is required");
  if (!opts.certificate !== !opts.privateKey) usage("--certificate and --private-key go together");
  for (const url of opts.reverse) {
    if (!/^opc\.tcp:\/\/[^/]+:\d+\/?$/i.test(url)) usage(`--reverse needs opc.tcp://HOST:PORT, got ${url}`);
  }
  if (opts.maxReconnectDelay < opts.reconnectDelay) opts.maxReconnectDelay = opts.reconnectDelay;
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const t0 = performance.now();

const ua = await import("node-opcua");
const {
  OPCUAServer, OPCUACertificateManager, SecurityPolicy, MessageSecurityMode, RegisterServerMethod,
  DataType, Variant, VariantArrayType, StatusCodes, AccessLevelFlag, LocalizedText, QualifiedName,
  DataValue, DiagnosticInfo, ExpandedNodeId, NodeId, resolveNodeId, Range, UserTokenType, UserTokenPolicy,
  Argument, ServerSession, Subscription,
} = ua;
if (opts.maxPublishRequests > 0) ServerSession.maxPublishRequestInQueue = opts.maxPublishRequests;
// A smaller retransmission queue: a sent message stays listed in its own PublishResponse, then
// only the newest N are kept (node-opcua's own limit is a constant, 100).
if (opts.retransmissionQueue >= 0) {
  const publish = Subscription.prototype._publish_pending_notifications;
  Subscription.prototype._publish_pending_notifications = function (...args) {
    const result = publish.apply(this, args);
    const sent = this._sent_notification_messages;
    if (sent.length > opts.retransmissionQueue) sent.splice(0, sent.length - opts.retransmissionQueue);
    return result;
  };
}
if (!opts.valuesOnActivate) ServerSession.prototype.resendMonitoredItemInitialValues = async () => {};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-peer-"));
const certificateManager = (sub, acceptUnknown = true) =>
  new OPCUACertificateManager({
    rootFolder: path.join(tmp, sub),
    automaticallyAcceptUnknownCertificate: acceptUnknown,
  });

// A certificate file as DER: PEM's first block decoded, anything else taken as DER.
function readCertificateFile(file) {
  const bytes = fs.readFileSync(file);
  const pem = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/.exec(bytes.toString("latin1"));
  return pem ? Buffer.from(pem[1].replace(/\s+/g, ""), "base64") : bytes;
}

const userTable = new Map(opts.users.map((u) => [u.name, u.password]));

const server = new OPCUAServer({
  port: opts.port,
  host: "127.0.0.1",
  hostname: "127.0.0.1",
  serverInfo: {
    applicationUri: opts.uri,
    productUri: "urn:uarc:test-peer",
    applicationName: { text: "uarc test peer", locale: "en" },
  },
  buildInfo: { productName: "uarc test peer", manufacturerName: "uarc" },
  securityPolicies: opts.secure
    ? [SecurityPolicy.None, SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep,
       SecurityPolicy.Aes256_Sha256_RsaPss]
    : [SecurityPolicy.None],
  securityModes: opts.secure
    ? [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt]
    : [MessageSecurityMode.None],
  allowAnonymous: opts.anonymous,
  serverCertificateManager: certificateManager("server-pki"),
  ...(opts.certificate ? { certificateFile: opts.certificate, privateKeyFile: opts.privateKey } : {}),
  userCertificateManager: certificateManager("user-pki", opts.trustUser.length === 0),
  registerServerMethod: RegisterServerMethod.HIDDEN,
  defaultSecureTokenLifetime: opts.tokenLifetime,
  // 0: an item asking for sampling interval 0 on a variable with MinimumSamplingInterval 0 gets
  // every change, uncoalesced (ns=1;s=Counter).
  serverCapabilities: {
    minSupportedSampleRate: 0,
    ...(opts.maxMonitoredItemsPerCall > 0 && {
      operationLimits: { maxMonitoredItemsPerCall: opts.maxMonitoredItemsPerCall },
    }),
  },
  // node-opcua counts the reverse connections it dials against this (default 10): a test that
  // serves a dozen listeners at once must still leave room for its forward connects
  maxConnectionsPerEndpoint: 100,

  userManager: {
    isValidUser: (name, password) => userTable.has(name) && userTable.get(name) === password,
  },
  ...(opts.reverse.length > 0 && {
    reverseConnect: {
      connections: opts.reverse.map((endpointUrl) => ({ endpointUrl })),
      reconnectDelay: opts.reconnectDelay,
      maxReconnectDelay: opts.maxReconnectDelay,
      connectionTimeout: opts.connectionTimeout,
    },
  }),
});

// ---- address space -------------------------------------------------------------------------

// Int64/UInt64 from a BigInt: node-opcua holds them as [high, low] 32-bit words.
const words = (big) => [Number((big >> 32n) & 0xffffffffn), Number(big & 0xffffffffn)];

// Every built-in type (Part 6 §5.1.2) with a recognizable value. `dataType` is the variable's
// DataType node when it is not the built-in type's own name.
const SCALARS = [
  ["Boolean", DataType.Boolean, true],
  ["SByte", DataType.SByte, -100],
  ["Byte", DataType.Byte, 200],
  ["Int16", DataType.Int16, -30000],
  ["UInt16", DataType.UInt16, 60000],
  ["Int32", DataType.Int32, -2000000000],
  ["UInt32", DataType.UInt32, 4000000000],
  ["Int64", DataType.Int64, words(-1234567890123n & 0xffffffffffffffffn)],
  ["UInt64", DataType.UInt64, words(18000000000000000000n)],
  ["Float", DataType.Float, 3.5],
  ["Double", DataType.Double, 3.141592653589793],
  ["String", DataType.String, "Hello, uarc \u2713"],
  ["DateTime", DataType.DateTime, new Date("2024-01-02T03:04:05.678Z")],
  ["Guid", DataType.Guid, "72962B91-FA75-4AE6-8D28-B404DC7DAF63"],
  ["ByteString", DataType.ByteString, Buffer.from([0x00, 0x01, 0x02, 0xfe, 0xff])],
  ["XmlElement", DataType.XmlElement, "<a>b</a>"],
  ["NodeId", DataType.NodeId, resolveNodeId("ns=1;s=Scalar.Double")],
  ["ExpandedNodeId", DataType.ExpandedNodeId,
    new ExpandedNodeId(NodeId.NodeIdType.NUMERIC, 2258, 0, "http://opcfoundation.org/UA/", 0)],
  ["StatusCode", DataType.StatusCode, StatusCodes.BadTimeout],
  ["QualifiedName", DataType.QualifiedName, new QualifiedName({ namespaceIndex: 1, name: "uarc" })],
  ["LocalizedText", DataType.LocalizedText, new LocalizedText({ locale: "en-US", text: "Hello" })],
  ["ExtensionObject", DataType.ExtensionObject, new Range({ low: -1.5, high: 10.25 }), "Range"],
  ["DataValue", DataType.DataValue,
    new DataValue({ value: { dataType: DataType.Int32, value: 42 }, statusCode: StatusCodes.Good })],
  ["Variant", DataType.Variant, null, "BaseDataType"],
  ["DiagnosticInfo", DataType.DiagnosticInfo,
    new DiagnosticInfo({ symbolicId: 1, localizedText: 2, additionalInfo: "uarc" })],
];

const ARRAYS = [
  ["Boolean", DataType.Boolean, [true, false, true]],
  ["Byte", DataType.Byte, Buffer.from([1, 2, 3, 250])],
  ["Int32", DataType.Int32, Int32Array.from([-1, 0, 1, 2147483647, -2147483648])],
  ["UInt64", DataType.UInt64, [words(0n), words(1n), words(18446744073709551615n)]],
  ["Double", DataType.Double, Float64Array.from([0, -1.5, 1e300, Number.MIN_VALUE])],
  ["String", DataType.String, ["alpha", "", "\u00e9t\u00e9", null]],
  ["ByteString", DataType.ByteString, [Buffer.from("ab"), Buffer.alloc(0), null]],
  ["LocalizedText", DataType.LocalizedText,
    [new LocalizedText({ locale: "en", text: "one" }), new LocalizedText({ text: "two" })]],
  ["Variant", DataType.Variant,
    [new Variant({ dataType: DataType.Int32, value: 7 }), new Variant({ dataType: DataType.String, value: "x" })],
    "BaseDataType"],
  ["Empty", DataType.Int32, new Int32Array(0), "Int32"],
  // The other built-in types, each with two or three values, for tests that write arrays.
  ["SByte", DataType.SByte, Int8Array.from([-128, 0, 127])],
  ["Int16", DataType.Int16, Int16Array.from([-32768, 0, 32767])],
  ["UInt16", DataType.UInt16, Uint16Array.from([0, 1, 65535])],
  ["UInt32", DataType.UInt32, Uint32Array.from([0, 1, 4294967295])],
  ["Int64", DataType.Int64,
    [words(-1n & 0xffffffffffffffffn), words(0n), words(9223372036854775807n)]],
  ["Float", DataType.Float, Float32Array.from([0, -0.5, 3.5])],
  ["DateTime", DataType.DateTime,
    [new Date("2024-01-02T03:04:05.678Z"), new Date("1999-12-31T23:59:59Z")]],
  ["Guid", DataType.Guid,
    ["72962B91-FA75-4AE6-8D28-B404DC7DAF63", "00000000-0000-0000-0000-000000000001"]],
  ["XmlElement", DataType.XmlElement, ["<a>b</a>", "<c/>"]],
  ["NodeId", DataType.NodeId, [resolveNodeId("ns=1;s=Scalar.Double"), resolveNodeId("i=85")]],
  ["ExpandedNodeId", DataType.ExpandedNodeId,
    [new ExpandedNodeId(NodeId.NodeIdType.NUMERIC, 2258, 0),
     new ExpandedNodeId(NodeId.NodeIdType.STRING, "x", 1)]],
  ["StatusCode", DataType.StatusCode, [StatusCodes.Good, StatusCodes.BadTimeout]],
  ["QualifiedName", DataType.QualifiedName,
    [new QualifiedName({ namespaceIndex: 1, name: "one" }), new QualifiedName({ name: "two" })]],
  ["ExtensionObject", DataType.ExtensionObject,
    [new Range({ low: 0, high: 1 }), new Range({ low: -2, high: 2 })], "Range"],
  ["DataValue", DataType.DataValue,
    [new DataValue({ value: { dataType: DataType.Int32, value: 1 } }),
     new DataValue({ value: { dataType: DataType.String, value: "two" },
       statusCode: StatusCodes.UncertainInitialValue })]],
  ["DiagnosticInfo", DataType.DiagnosticInfo,
    [new DiagnosticInfo({ symbolicId: 1 }), new DiagnosticInfo({ additionalInfo: "two" })]],
  // 160,000 bytes of values: a ReadResponse that spans several 64 KiB chunks.
  ["Large", DataType.Double, Float64Array.from({ length: 20000 }, (_, i) => i * 0.5), "Double"],
];

function buildAddressSpace(addressSpace) {
  const ns = addressSpace.getOwnNamespace();
  if (ns.index !== 1) throw new Error(`own namespace has index ${ns.index}, expected 1`);
  const objects = addressSpace.rootFolder.objects;
  const rw = AccessLevelFlag.CurrentRead | AccessLevelFlag.CurrentWrite;
  const folder = (name, parent = objects) =>
    ns.addFolder(parent, { nodeId: `s=${name}`, browseName: name });

  const scalar = folder("Scalar");
  for (const [name, builtin, value, dataTypeName] of SCALARS) {
    const v = builtin === DataType.Variant
      ? new Variant({ dataType: DataType.Int32, value: 42 })
      : new Variant({ dataType: builtin, arrayType: VariantArrayType.Scalar, value });
    ns.addVariable({
      componentOf: scalar,
      nodeId: `s=Scalar.${name}`,
      browseName: name,
      dataType: dataTypeName ?? name,
      valueRank: -1,
      accessLevel: rw,
      userAccessLevel: rw,
      value: v,
    });
  }
  // Not writable: for tests of a refused Write.
  ns.addVariable({
    componentOf: scalar,
    nodeId: "s=ReadOnly.Int32",
    browseName: "ReadOnlyInt32",
    dataType: "Int32",
    accessLevel: AccessLevelFlag.CurrentRead,
    userAccessLevel: AccessLevelFlag.CurrentRead,
    value: new Variant({ dataType: DataType.Int32, value: 7 }),
  });

  const array = folder("Array");
  for (const [name, builtin, value, dataTypeName] of ARRAYS) {
    ns.addVariable({
      componentOf: array,
      nodeId: `s=Array.${name}`,
      browseName: name,
      dataType: dataTypeName ?? name,
      valueRank: 1,
      arrayDimensions: [0],
      accessLevel: rw,
      userAccessLevel: rw,
      value: new Variant({ dataType: builtin, arrayType: VariantArrayType.Array, value }),
    });
  }

  const matrix = folder("Matrix");
  ns.addVariable({
    componentOf: matrix,
    nodeId: "s=Matrix.Double",
    browseName: "Double",
    dataType: "Double",
    valueRank: 2,
    arrayDimensions: [3, 4],
    accessLevel: rw,
    userAccessLevel: rw,
    // Row-major: element [r][c] = r * 10 + c.
    value: new Variant({
      dataType: DataType.Double,
      arrayType: VariantArrayType.Matrix,
      dimensions: [3, 4],
      value: Float64Array.from({ length: 12 }, (_, k) => Math.floor(k / 4) * 10 + (k % 4)),
    }),
  });

  // A structure of a standard DataType that has strings, a NodeId, an array and a LocalizedText.
  const struct = folder("Struct");
  ns.addVariable({
    componentOf: struct,
    nodeId: "s=Struct.Argument",
    browseName: "Argument",
    dataType: "Argument",
    valueRank: -1,
    accessLevel: rw,
    userAccessLevel: rw,
    value: new Variant({
      dataType: DataType.ExtensionObject,
      value: new Argument({
        name: "level",
        dataType: resolveNodeId("i=11"),
        valueRank: 1,
        arrayDimensions: [5],
        description: new LocalizedText({ locale: "en", text: "fill level" }),
      }),
    }),
  });

  const methods = ns.addObject({ organizedBy: objects, nodeId: "s=Methods", browseName: "Methods" });
  const add = ns.addMethod(methods, {
    nodeId: "s=Methods/Add",
    browseName: "Add",
    inputArguments: [
      { name: "a", dataType: DataType.Double, description: { text: "first addend" } },
      { name: "b", dataType: DataType.Double, description: { text: "second addend" } },
    ],
    outputArguments: [{ name: "sum", dataType: DataType.Double, description: { text: "a + b" } }],
  });
  add.bindMethod((inputArguments, _context, callback) => {
    const [a, b] = inputArguments.map((v) => v.value);
    callback(null, {
      statusCode: StatusCodes.Good,
      outputArguments: [{ dataType: DataType.Double, value: a + b }],
    });
  });
  const concat = ns.addMethod(methods, {
    nodeId: "s=Methods/Concat",
    browseName: "Concat",
    inputArguments: [
      { name: "a", dataType: DataType.String },
      { name: "b", dataType: DataType.String },
    ],
    outputArguments: [
      { name: "joined", dataType: DataType.String },
      { name: "length", dataType: DataType.UInt32 },
    ],
  });
  concat.bindMethod((inputArguments, _context, callback) => {
    const joined = inputArguments.map((v) => v.value ?? "").join("");
    callback(null, {
      statusCode: StatusCodes.Good,
      outputArguments: [
        { dataType: DataType.String, value: joined },
        { dataType: DataType.UInt32, value: Buffer.byteLength(joined, "utf8") },
      ],
    });
  });

  // A counter incremented every 10 ms, reported on every change (minimumSamplingInterval 0), for
  // subscription tests that check every value arrives once and in order.
  const counter = ns.addVariable({
    organizedBy: objects,
    nodeId: "s=Counter",
    browseName: "Counter",
    dataType: "UInt32",
    minimumSamplingInterval: 0,
    accessLevel: AccessLevelFlag.CurrentRead,
    userAccessLevel: AccessLevelFlag.CurrentRead,
    value: new Variant({ dataType: DataType.UInt32, value: 0 }),
  });
  // The same count as a Double AnalogItem with EURange 0..1000, for percent deadbands (a percent
  // of the EURange's span: pct:0.45 lets every fifth value through).
  const analog = ns.addAnalogDataItem({
    organizedBy: objects,
    nodeId: "s=Analog",
    browseName: "Analog",
    definition: "ns=1;s=Counter as a Double",
    dataType: "Double",
    minimumSamplingInterval: 0,
    engineeringUnitsRange: { low: 0, high: 1000 },
    accessLevel: AccessLevelFlag.CurrentRead,
    userAccessLevel: AccessLevelFlag.CurrentRead,
    value: new Variant({ dataType: DataType.Double, value: 0 }),
  });
  let count = 0;
  setInterval(() => {
    count++;
    counter.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: count }));
    analog.setValueFromSource(new Variant({ dataType: DataType.Double, value: count }));
  }, 10).unref();

  // With --fast-counter, one that counts every millisecond (as often as Node's timers fire:
  // about 1,000 changes a second), for tests that a faster stream loses nothing either.
  if (opts.fastCounter) {
    const fast = ns.addVariable({
      organizedBy: objects,
      nodeId: "s=FastCounter",
      browseName: "FastCounter",
      dataType: "UInt32",
      minimumSamplingInterval: 0,
      accessLevel: AccessLevelFlag.CurrentRead,
      userAccessLevel: AccessLevelFlag.CurrentRead,
      value: new Variant({ dataType: DataType.UInt32, value: 0 }),
    });
    let fastCount = 0;
    setInterval(() => {
      fastCount++;
      fast.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: fastCount }));
    }, 1).unref();
  }

  // Counters of the services the peer served, so that tests can check what a client did.
  const stats = folder("Stats");
  ns.addVariable({
    componentOf: stats,
    nodeId: "s=Stats.BrowseNext",
    browseName: "BrowseNext",
    dataType: "UInt32",
    accessLevel: AccessLevelFlag.CurrentRead,
    userAccessLevel: AccessLevelFlag.CurrentRead,
    value: { get: () => new Variant({ dataType: DataType.UInt32, value: browseNextCount }) },
  });

  // A variable whose read takes --slow-read ms: a slow server, for tests that one server's slowness
  // delays no other.
  ns.addVariable({
    organizedBy: objects,
    nodeId: "s=Slow",
    browseName: "Slow",
    dataType: "Double",
    accessLevel: AccessLevelFlag.CurrentRead,
    userAccessLevel: AccessLevelFlag.CurrentRead,
    value: {
      timestamped_get: (callback) => {
        const answer = () =>
          callback(null, new DataValue({ value: { dataType: DataType.Double, value: 1.5 },
            statusCode: StatusCodes.Good, sourceTimestamp: new Date(), serverTimestamp: new Date() }));
        if (opts.slowReadMs > 0) setTimeout(answer, opts.slowReadMs);
        else answer();
      },
    },
  });

  if (opts.big) {
    const big = folder("Big");
    for (let i = 1; i <= 5000; i++) {
      const name = `Item${String(i).padStart(4, "0")}`;
      ns.addVariable({
        componentOf: big,
        nodeId: `s=Big/${name}`,
        browseName: name,
        dataType: "UInt32",
        value: new Variant({ dataType: DataType.UInt32, value: i }),
      });
    }
  }
}

// ---- service hooks --------------------------------------------------------------------------

// node-opcua limits the references per node only when the client asks (requestedMaxReferencesPerNode);
// a real server also has its own limit. node-opcua dispatches each request to this[`_on_${type}`],
// so an own property in front of the prototype's handler sees every request first.
let browseNextCount = 0;
if (opts.maxReferencesPerNode > 0) {
  const browse = server._on_BrowseRequest;
  server._on_BrowseRequest = function (message, channel) {
    const request = message.request;
    const max = opts.maxReferencesPerNode;
    if (!request.requestedMaxReferencesPerNode || request.requestedMaxReferencesPerNode > max) {
      request.requestedMaxReferencesPerNode = max;
    }
    return browse.call(this, message, channel);
  };
}
{
  const browseNext = server._on_BrowseNextRequest;
  server._on_BrowseNextRequest = function (message, channel) {
    if (!message.request.releaseContinuationPoints) browseNextCount++;
    return browseNext.call(this, message, channel);
  };
}

// ---- life cycle ----------------------------------------------------------------------------

let stopping = false;
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  // Never hang: whatever node-opcua does on shutdown, leave within 3 s.
  setTimeout(() => finish(code), 3000).unref();
  try {
    await server.shutdown(0);
  } catch (err) {
    process.stderr.write(`server.mjs: shutdown: ${err?.message ?? err}\n`);
  }
  finish(code);
}
function finish(code) {
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
  } catch {
    // best effort
  }
  process.exit(code);
}

process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
// SIGUSR2 drops every connection at once (a cable pulled, not a restart): each secure channel's
// socket is destroyed without CLO; sessions stay, and the reverse-connect loops re-dial.
process.on("SIGUSR2", () => {
  for (const endpoint of server.endpoints) {
    for (const channel of endpoint.getChannels()) {
      try {
        channel.abruptlyInterrupt();
      } catch {
        // a channel already being disposed has no socket left
      }
    }
  }
});
// Watch stdin only when it is a pipe or socket (a parent process): a background job whose stdin
// is /dev/null or a terminal must not stop at once.
try {
  const st = fs.fstatSync(0);
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on("end", () => shutdown(0));
    process.stdin.on("error", () => shutdown(0));
    process.stdin.resume();
  }
} catch {
  // no stdin at all
}

// node-opcua offers a UserName token on a None endpoint only when the password is encrypted with
// a policy the server also offers, and OPCUAServer does not pass its allowUnsecurePassword option
// through. With --user the peer adds the unencrypted UserName policy to its endpoints: uarc
// starts with SecurityPolicy None, and sends a clear-text password only when told to.
function allowUnsecurePasswords() {
  for (const endpoint of server.endpoints) {
    for (const description of endpoint.endpointDescriptions()) {
      const tokens = description.userIdentityTokens ?? [];
      if (tokens.some((t) => t.tokenType === UserTokenType.UserName && !t.securityPolicyUri)) continue;
      tokens.push(new UserTokenPolicy({
        policyId: "username_unsecure",
        tokenType: UserTokenType.UserName,
        securityPolicyUri: null,
      }));
      description.userIdentityTokens = tokens;
    }
  }
}

try {
  await server.initialize();
  if (opts.users.length > 0) allowUnsecurePasswords();
  if (opts.trustUser.length > 0) {
    await server.userCertificateManager.initialize();
    for (const file of opts.trustUser) {
      await server.userCertificateManager.trustCertificate(readCertificateFile(file));
    }
  }
  buildAddressSpace(server.engine.addressSpace);
  await server.start();
} catch (err) {
  process.stderr.write(`server.mjs: start failed: ${err?.stack ?? err}\n`);
  finish(1);
}

if (opts.certificateOut) {
  try {
    fs.writeFileSync(opts.certificateOut, server.getCertificate());
  } catch (err) {
    process.stderr.write(`server.mjs: --certificate-out: ${err?.message ?? err}\n`);
    finish(1);
  }
}

if (opts.eventsEvery > 0) {
  let tick = 0;
  setInterval(() => {
    tick++;
    server.raiseEvent("BaseEventType", {
      message: { dataType: DataType.LocalizedText, value: { text: `tick ${tick}` } },
      severity: { dataType: DataType.UInt16, value: 100 },
    });
  }, opts.eventsEvery).unref();
}

const started = {
  event: "started",
  endpoint_url: server.getEndpointUrl(),
  application_uri: opts.uri,
  pid: process.pid,
  startup_ms: Math.round(performance.now() - t0),
};
process.stdout.write(JSON.stringify(started) + "\n");
