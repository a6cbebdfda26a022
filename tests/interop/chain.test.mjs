// Certificate chains and the server's identity: a server whose certificate is issued by an
// intermediate CA under a root CA (made here with OpenSSL). Against open62541 1.5.7
// (tests/peer62541, which sends its certificate alone): the root in the trust list and the
// intermediate in the issuers list connect, forward and reverse; without the intermediate the
// chain is incomplete; the intermediate alone in the trust list is an incomplete chain too
// (Part 4 §6.1.3: a chain ends at a self-signed certificate), with the root in the issuers list
// it is trusted; issuers alone trust nothing. Forward, the certificate's URI must be the
// endpoint's ApplicationUri and the URL's host one of its names. Against node-opcua 2.186.4
// (tests/peer), which sends the intermediate after its certificate: the root alone suffices.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runUarc, startListen, loadPeer, exitWithin, makeChain } from "./helpers.mjs";

const PEER62541 = process.env.PEER62541;
if (!PEER62541) throw new Error("PEER62541 is not set: run these tests through ctest");
const { startPeer: startNodePeer, startPeerProgram } = await loadPeer();

const URI = "urn:o62-chain";
const NODE = "ns=1;s=Scalar.Double";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-chain-"));
const pki = makeChain(tmp, "uarc chain server", URI);

/** A folder holding copies of `files`, for --trust-list or --issuer-list. */
function folder(name, ...files) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const f of files) fs.copyFileSync(f, path.join(dir, path.basename(f)));
  return dir;
}
const rootOnly = folder("root", pki.root);
const intermediateOnly = folder("intermediate", pki.intermediate);
const bothIssuers = folder("issuers", pki.root, pki.intermediate);
const empty = folder("empty");

const secured = ["--security-policy", "Basic256Sha256", "--security-mode", "SignAndEncrypt"];

function startPeer(uri, certificate, args = []) {
  return startPeerProgram(PEER62541, ["--uri", uri, "--reconnect-interval", "100",
    "--certificate", certificate, "--private-key", pki.key, ...args], { uri, startTimeoutMs: 20000 });
}

let leafPeer; // open62541: sends its certificate alone
let listener; // reverse: root trusted, intermediate in the issuers list

const read = async (peer, args) => {
  const r = runUarc(["read", peer.endpointUrl, NODE, "--json", ...secured, ...args]);
  await exitWithin(r, 30000);
  return r;
};
const expectGood = async (peer, args) => {
  const r = await read(peer, args);
  assert.equal((await r.exited).code, 0, r.describe());
  assert.equal(r.events[0]?.status, "Good", r.describe());
  return r;
};
const expectRefused = async (peer, args, status) => {
  const r = await read(peer, args);
  assert.notEqual((await r.exited).code, 0, r.describe());
  assert.equal(r.events[0]?.step, "OPN", r.describe());
  assert.equal(r.events[0].status, status, r.describe());
  return r;
};

before(async () => {
  listener = await startListen(["--allow", URI, ...secured, "--trust-list", rootOnly,
    "--issuer-list", pki.intermediate, "--read", NODE, "--count", "1"]);
  leafPeer = await startPeer(URI, pki.leaf, ["--reverse", listener.url]);
});

after(async () => {
  listener?.stop?.();
  await leafPeer?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("root trusted, intermediate in the issuers list: connects, forward and reverse", async () => {
  await expectGood(leafPeer, ["--trust-list", rootOnly, "--issuer-list", intermediateOnly]);
  await expectGood(leafPeer, ["--trust-list", rootOnly, "--issuer-list", pki.intermediate]);
  const ev = await listener.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
  assert.equal(ev.status, "Good", listener.describe());
  assert.ok(!listener.events.some((e) => e.event === "error"), listener.describe());
});

test("root trusted, intermediate nowhere: BadCertificateChainIncomplete", async () => {
  const r = await expectRefused(leafPeer, ["--trust-list", rootOnly],
    "BadCertificateChainIncomplete");
  assert.match(r.events[0].reason, /uarc chain server/, r.describe());
});

test("the intermediate alone in the trust list is an incomplete chain; with the root as an " +
  "issuer it is trusted", async () => {
  await expectRefused(leafPeer, ["--trust-list", intermediateOnly],
    "BadCertificateChainIncomplete");
  await expectGood(leafPeer, ["--trust-list", intermediateOnly, "--issuer-list", rootOnly]);
});

test("issuers trust nothing by themselves: BadCertificateUntrusted", async () => {
  await expectRefused(leafPeer, ["--trust-list", empty, "--issuer-list", bothIssuers],
    "BadCertificateUntrusted");
});

test("forward: a certificate whose URI is not the endpoint's ApplicationUri is refused, or " +
  "allowed with a warning", async () => {
  const other = await startPeer("urn:o62-other", pki.leaf);
  try {
    const trust = ["--trust-list", rootOnly, "--issuer-list", intermediateOnly];
    const r = await expectRefused(other, trust, "BadCertificateUriInvalid");
    assert.match(r.events[0].reason, /urn:o62-chain/, r.describe());
    assert.match(r.events[0].reason, /urn:o62-other/, r.describe());
    const allowed = await expectGood(other, [...trust, "--allow-uri-mismatch"]);
    assert.match(allowed.stderr(), /urn:o62-other/, allowed.describe());
  } finally {
    await other.stop();
  }
});

test("forward: the URL's host must be one of the certificate's names with --require-host-name",
  async () => {
    // the certificate names localhost and 127.0.0.1; the peer listens on 127.0.0.1
    const trust = ["--trust-list", rootOnly, "--issuer-list", intermediateOnly,
      "--require-host-name"];
    await expectGood(leafPeer, trust);
    await expectGood({ endpointUrl: leafPeer.endpointUrl.replace("127.0.0.1", "localhost") },
      trust);
  });

test("node-opcua sends the intermediate after its certificate: the root alone suffices",
  async () => {
    const nodePeer = await startNodePeer({ uri: "urn:node-chain", args: ["--secure", "--no-big",
      "--certificate", makeChain(tmp, "node chain server", "urn:node-chain").chainPem,
      "--private-key", path.join(tmp, "node chain server-leaf.key")] });
    try {
      const nodeRoot = folder("node-root", path.join(tmp, "node chain server-root.der"));
      await expectGood(nodePeer, ["--trust-list", nodeRoot]);
      // without the root the chain it sends is incomplete; with the root only as an issuer,
      // complete but trusted by nothing
      await expectRefused(nodePeer, ["--trust-list", empty], "BadCertificateChainIncomplete");
      await expectRefused(nodePeer, ["--trust-list", empty, "--issuer-list", nodeRoot],
        "BadCertificateUntrusted");
    } finally {
      await nodePeer.stop();
    }
  });
