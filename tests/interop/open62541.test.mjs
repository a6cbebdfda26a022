// uarc against a second, independent stack: open62541 1.5.7 (tests/peer62541, the program in
// PEER62541). Reads over SecurityPolicy None and every RSA policy in modes Sign and
// SignAndEncrypt, forward and with Reverse Connect (where `uarc listen` learns the server's
// certificate on the first dial), and a client certificate whose URI is not urn:uarc:client:
// open62541 refuses a session whose ApplicationUri is not the client certificate's.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { runUarc, startListen, loadPeer, exitWithin } from "./helpers.mjs";

const PEER62541 = process.env.PEER62541;
if (!PEER62541) throw new Error("PEER62541 is not set: run these tests through ctest");
const { startPeerProgram } = await loadPeer();

const URI = "urn:o62-peer";
const NODE = "ns=1;s=Scalar.Double";
const PI = 3.141592653589793;
const CASES = [["None", null]];
for (const policy of ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]) {
  for (const mode of ["Sign", "SignAndEncrypt"]) CASES.push([policy, mode]);
}
const securityArgs = (policy, mode) =>
  mode ? ["--security-policy", policy, "--security-mode", mode] : [];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-o62-"));

/** Starts the open62541 peer; `args` are its own options (tests/peer62541/README.md). */
function startPeer62541(uri, args = []) {
  return startPeerProgram(PEER62541, ["--uri", uri, "--reconnect-interval", "100", ...args],
    { uri, startTimeoutMs: 20000 });
}

// A self-signed certificate and key (PEM) with subjectAltName URI `uri`.
function makeCertificate(name, uri) {
  const key = path.join(tmp, `${name}.key.pem`);
  const cert = path.join(tmp, `${name}.cert.pem`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
    "-out", cert, "-days", "30", "-subj", `/CN=${name}`,
    "-addext", `subjectAltName=URI:${uri},DNS:localhost`,
    "-addext", "keyUsage=digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment",
    "-addext", "extendedKeyUsage=clientAuth,serverAuth"], { stdio: "ignore" });
  return { key, cert };
}

const collector = makeCertificate("collector-7", "urn:plant:collector-7");
const ownCertificate = ["--certificate", collector.cert, "--private-key", collector.key];

let peer;
const listeners = new Map(); // "policy/mode" → uarc listen, one per case
let ownListener; // presents the collector-7 certificate

const run = async (args) => {
  const p = runUarc(args);
  await exitWithin(p, 30000);
  return p;
};

before(async () => {
  for (const [policy, mode] of CASES) {
    listeners.set(`${policy}/${mode}`, await startListen(["--allow", URI,
      ...securityArgs(policy, mode), "--read", NODE, "--count", "1"]));
  }
  ownListener = await startListen(["--allow", URI, ...securityArgs("Basic256Sha256",
    "SignAndEncrypt"), ...ownCertificate, "--read", NODE, "--count", "1"]);
  const reverse = [...listeners.values(), ownListener].flatMap((l) => ["--reverse", l.url]);
  peer = await startPeer62541(URI, reverse);
});

after(async () => {
  for (const l of listeners.values()) l.stop?.();
  ownListener?.stop?.();
  await peer?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

for (const [policy, mode] of CASES) {
  const name = mode ? `${policy} ${mode}` : "None";
  test(`forward read over ${name}`, async () => {
    const r = await run(["read", peer.endpointUrl, NODE, "--json", ...securityArgs(policy, mode)]);
    assert.equal((await r.exited).code, 0, r.describe());
    assert.equal(r.events[0]?.status, "Good", r.describe());
    assert.equal(r.events[0].value, PI, r.describe());
  });

  test(`Reverse Connect read over ${name}`, async () => {
    const l = listeners.get(`${policy}/${mode}`);
    const ev = await l.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
    assert.equal(ev.status, "Good", l.describe());
    assert.equal(ev.value, PI, l.describe());
    const connected = l.events.find((e) => e.event === "connected" && e.server_uri === URI);
    assert.equal(connected?.security_policy, policy, l.describe());
    assert.ok(!l.events.some((e) => e.event === "error"), l.describe());
    assert.equal((await exitWithin(l, 10000)).code, 0, l.describe()); // --count 1
  });
}

test("a client certificate naming urn:plant:collector-7: the session presents that URI, " +
  "forward and reverse", async () => {
  const r = await run(["read", peer.endpointUrl, NODE, "--json", "--security-policy",
    "Basic256Sha256", ...ownCertificate]);
  assert.equal((await r.exited).code, 0, r.describe());
  assert.equal(r.events[0]?.status, "Good", r.describe());

  const ev = await ownListener.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
  assert.equal(ev.status, "Good", ownListener.describe());
  assert.ok(!ownListener.events.some((e) => e.event === "error"), ownListener.describe());
});
