// Argument errors are found before any network work: every URL, NodeId, type name and value on
// the command line is parsed first, and a bad one is a usage error (exit 2) that names it. The
// client commands get the URL of a plain TCP socket that counts connections (none may arrive);
// listen must not start listening. No OPC UA server is needed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { runUarc, exitWithin } from "./helpers.mjs";

let server;
let url;
let connections = 0;

before(async () => {
  server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `opc.tcp://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

async function usageError(args, stderrPattern) {
  const proc = runUarc(args);
  const { code } = await exitWithin(proc, 20000);
  assert.equal(code, 2, `exit 2 for ${args.join(" ")}\n${proc.describe()}`);
  assert.equal(proc.stdout(), "", `nothing on stdout for ${args.join(" ")}`);
  assert.match(proc.stderr(), stderrPattern, proc.describe());
  assert.equal(connections, 0, `no connection for ${args.join(" ")}`);
}

const BAD = "ns=1;x=bad";

for (const [name, args, pattern] of [
  ["read: a bad NodeId", () => ["read", url, BAD], /uarc read: NODEID: not a NodeId: "ns=1;x=bad"/],
  ["read: a bad NodeId after good ones", () => ["read", url, "i=2258", "i=2255", BAD, "--json"],
    /uarc read: NODEID: not a NodeId: "ns=1;x=bad"/],
  ["write: a bad NodeId", () => ["write", url, BAD, "Int32", "1"], /uarc write: NODEID: not a NodeId: "ns=1;x=bad"/],
  ["write: an unknown type", () => ["write", url, "i=2258", "Int33", "1"], /uarc write: .*Int33/],
  ["write: a bad value", () => ["write", url, "i=2258", "Byte", "256", "--json"], /uarc write: .*"256"/],
  ["browse: a bad NodeId", () => ["browse", url, BAD, "--recursive"], /uarc browse: NODEID: not a NodeId: "ns=1;x=bad"/],
  ["call: a bad object", () => ["call", url, BAD, "i=1"], /uarc call: OBJECTID: not a NodeId: "ns=1;x=bad"/],
  ["call: a bad method", () => ["call", url, "i=85", BAD, "Int32:1"], /uarc call: METHODID: not a NodeId: "ns=1;x=bad"/],
  ["call: an argument without a type", () => ["call", url, "i=85", "i=1", "7"], /uarc call: argument "7" is not TYPE:VALUE/],
  ["read: a URL that is not opc.tcp", () => ["read", "http://127.0.0.1:1/", "i=2258"],
    /uarc read: URL: not an opc.tcp URL: "http:\/\/127\.0\.0\.1:1\/"/],
  ["endpoints: a URL without a host", () => ["endpoints", "opc.tcp://:4840", "--json"],
    /uarc endpoints: URL: not an opc.tcp URL/],
  ["listen --read: a bad NodeId", () => ["listen", "--json", "--port", "0", "--allow", "urn:x", "--read", BAD],
    /uarc listen: --read: not a NodeId: "ns=1;x=bad"/],
  ["listen --browse: a bad NodeId", () => ["listen", "--port", "0", "--allow", "urn:x", "--read", "i=2258", `--browse=${BAD}`],
    /uarc listen: --browse: not a NodeId: "ns=1;x=bad"/],
]) {
  test(`${name}: exit 2 before any network work, naming the argument`, async () => {
    await usageError(args(), pattern);
  });
}
