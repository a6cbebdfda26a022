// uarc against a second, independent stack: open62541 1.5.7 (tests/peer62541, the program in
// PEER62541). Reads over SecurityPolicy None, every RSA policy and every ECC policy (the peer's
// EC certificates, our ephemeral EC one) in modes Sign and SignAndEncrypt, forward and with
// Reverse Connect (where `uarc listen` learns the server's
// certificate on the first dial), a client certificate whose URI is not urn:uarc:client
// (open62541 refuses a session whose ApplicationUri is not the client certificate's), and X509
// user identities: a user certificate the peer trusts logs in over every RSA case, forward and
// reverse, and EC user certificates under the nistP256/nistP384 policies, forward and reverse;
// one it does not trust is refused. UserName logins on secured channels (under ECC with an
// EccEncryptedSecret), forward and reverse, and on a None channel the password not sent (the peer
// gives no certificate to encrypt it for); a peer that trusts only listed client certificates.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runUarc, startListen, exitWithin, makeCertificate, startPeer62541 } from "./helpers.mjs";

const URI = "urn:o62-peer";
const NODE = "ns=1;s=Scalar.Double";
const PI = 3.141592653589793;
const RSA_CASES = [["None", null]];
for (const policy of ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]) {
  for (const mode of ["Sign", "SignAndEncrypt"]) RSA_CASES.push([policy, mode]);
}
const ECC_CASES = [];
for (const policy of ["ECC_nistP256", "ECC_nistP384", "ECC_brainpoolP256r1",
  "ECC_brainpoolP384r1"]) {
  for (const mode of ["Sign", "SignAndEncrypt"]) ECC_CASES.push([policy, mode]);
}
const CASES = [...RSA_CASES, ...ECC_CASES];
// The peers write their certificates into trustDir (--certificate-out), our --trust-list.
const securityArgs = (policy, mode) =>
  mode ? ["--security-policy", policy, "--security-mode", mode, "--trust-list", trustDir] : [];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-o62-"));
const trustDir = path.join(tmp, "trusted");
fs.mkdirSync(trustDir);
const passwordFile = path.join(tmp, "password");
const wrongFile = path.join(tmp, "wrong");
fs.writeFileSync(passwordFile, "secret\n");
fs.writeFileSync(wrongFile, "wrong\n");

const collector = makeCertificate(tmp, "collector-7", "urn:plant:collector-7");
const ownCertificate = ["--certificate", collector.cert, "--private-key", collector.key];
const alice = makeCertificate(tmp, "alice"); // a user the peer trusts
const mallory = makeCertificate(tmp, "mallory"); // one it does not
const asAlice = ["--user-certificate", alice.cert, "--user-private-key", alice.key];
// EC users the peer trusts, for the ECC token policies
const ecUsers = { ECC_nistP256: makeCertificate(tmp, "ec-alice", undefined, "prime256v1"),
  ECC_nistP384: makeCertificate(tmp, "ec-alice-384", undefined, "secp384r1") };
const asMallory = ["--user-certificate", mallory.cert, "--user-private-key", mallory.key];

let peer;
const listeners = new Map(); // "policy/mode" → uarc listen, one per case
let ownListener; // presents the collector-7 certificate
const x509Listeners = new Map(); // "policy/mode" → uarc listen logging in as alice
let malloryListener;
// Reverse Connect with identities: "policy/mode" → uarc listen logging in as an EC user of the
// policy's curve, or as alice with her password
const ecUserListeners = new Map();
const passwordListeners = new Map();
const EC_USER_REVERSE = [["ECC_nistP256", "SignAndEncrypt"], ["ECC_nistP384", "Sign"]];
const PASSWORD_REVERSE = [["Basic256Sha256", "SignAndEncrypt"],
  ["ECC_nistP256", "Sign"], ["ECC_brainpoolP384r1", "SignAndEncrypt"]];
const asUserWithPassword = (password) => ["--user", "alice", "--password-file", password];

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
  for (const [policy, mode] of [["None", null], ["Aes256_Sha256_RsaPss", "SignAndEncrypt"]]) {
    x509Listeners.set(`${policy}/${mode}`, await startListen(["--allow", URI,
      ...securityArgs(policy, mode), ...asAlice, "--read", NODE, "--count", "1"]));
  }
  malloryListener = await startListen(["--allow", URI, ...securityArgs("Basic256Sha256",
    "SignAndEncrypt"), ...asMallory, "--read", NODE, "--stay"]);
  for (const [policy, mode] of EC_USER_REVERSE) {
    const u = ecUsers[policy];
    ecUserListeners.set(`${policy}/${mode}`, await startListen(["--allow", URI,
      ...securityArgs(policy, mode), "--user-certificate", u.cert, "--user-private-key", u.key,
      "--read", NODE, "--count", "1"]));
  }
  for (const [policy, mode] of PASSWORD_REVERSE) {
    passwordListeners.set(`${policy}/${mode}`, await startListen(["--allow", URI,
      ...securityArgs(policy, mode),
      ...asUserWithPassword(passwordFile), "--read", NODE, "--count", "1"]));
  }
  const reverse = [...listeners.values(), ownListener, ...x509Listeners.values(), malloryListener,
    ...ecUserListeners.values(), ...passwordListeners.values()]
    .flatMap((l) => ["--reverse", l.url]);
  peer = await startPeer62541(URI, [...reverse, "--ecc", "--trust-user", alice.der,
    ...Object.values(ecUsers).flatMap((u) => ["--trust-user", u.der]),
    "--certificate-out", path.join(trustDir, "peer.der"),
    "--user", "alice:secret"]);
});

after(async () => {
  for (const l of listeners.values()) l.stop?.();
  ownListener?.stop?.();
  for (const l of x509Listeners.values()) l.stop?.();
  malloryListener?.stop?.();
  for (const l of [...ecUserListeners.values(), ...passwordListeners.values()]) l.stop?.();
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
    "Basic256Sha256", "--trust-list", trustDir, ...ownCertificate]);
  assert.equal((await r.exited).code, 0, r.describe());
  assert.equal(r.events[0]?.status, "Good", r.describe());

  const ev = await ownListener.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
  assert.equal(ev.status, "Good", ownListener.describe());
  assert.ok(!ownListener.events.some((e) => e.event === "error"), ownListener.describe());
});

for (const [policy, mode] of RSA_CASES) {
  const name = mode ? `${policy} ${mode}` : "None (the token policy names the signing policy)";
  test(`X509 user identity, forward, over ${name}`, async () => {
    const r = await run(["read", peer.endpointUrl, NODE, "--json", ...securityArgs(policy, mode),
      ...asAlice]);
    assert.equal((await r.exited).code, 0, r.describe());
    assert.equal(r.events[0]?.status, "Good", r.describe());
  });
}

for (const [key, l] of [["None/null", "None"], ["Aes256_Sha256_RsaPss/SignAndEncrypt",
  "Aes256_Sha256_RsaPss SignAndEncrypt"]]) {
  test(`X509 user identity over Reverse Connect, ${l}`, async () => {
    const listener = x509Listeners.get(key);
    const ev = await listener.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
    assert.equal(ev.status, "Good", listener.describe());
    assert.ok(!listener.events.some((e) => e.event === "error"), listener.describe());
  });
}

for (const [policy, mode] of ECC_CASES.filter(([p]) => ecUsers[p])) {
  test(`X509 user identity with an EC key, forward, over ${policy} ${mode}`, async () => {
    const u = ecUsers[policy];
    const r = await run(["read", peer.endpointUrl, NODE, "--json", ...securityArgs(policy, mode),
      "--user-certificate", u.cert, "--user-private-key", u.key]);
    assert.equal((await r.exited).code, 0, r.describe());
    assert.equal(r.events[0]?.status, "Good", r.describe());
  });
}

for (const [policy, mode] of EC_USER_REVERSE) {
  test(`X509 user identity with an EC key over Reverse Connect, ${policy} ${mode}`, async () => {
    const listener = ecUserListeners.get(`${policy}/${mode}`);
    const ev = await listener.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
    assert.equal(ev.status, "Good", listener.describe());
    const connected = listener.events.find((e) => e.event === "connected" && e.server_uri === URI);
    assert.equal(connected?.security_policy, policy, listener.describe());
    assert.ok(!listener.events.some((e) => e.event === "error"), listener.describe());
  });
}

test("an RSA user certificate under an ECC token policy is refused before it is sent",
  async () => {
    const r = await run(["read", peer.endpointUrl, NODE, "--json",
      ...securityArgs("ECC_nistP256", "Sign"), ...asAlice]);
    assert.equal(r.events[0]?.step, "ActivateSession", r.describe());
    assert.equal(r.events[0].status, "BadCertificateInvalid", r.describe());
  });

test("an untrusted user certificate is refused, forward and reverse", async () => {
  for (const security of [[], securityArgs("Basic256Sha256", "Sign")]) {
    const r = await run(["read", peer.endpointUrl, NODE, "--json", ...security, ...asMallory]);
    assert.notEqual((await r.exited).code, 0, r.describe());
    assert.equal(r.events[0]?.step, "ActivateSession", r.describe());
    assert.equal(r.events[0].status, "BadIdentityTokenRejected", r.describe());
  }
  const ev = await malloryListener.waitFor((e) => e.event === "error" && e.server_uri === URI,
    30000);
  assert.equal(ev.step, "ActivateSession", malloryListener.describe());
  assert.equal(ev.status, "BadIdentityTokenRejected", malloryListener.describe());
  assert.ok(!malloryListener.events.some((e) => e.event === "read"), malloryListener.describe());
});

test("UserName with the password encrypted for the server, on secured channels", async () => {
  for (const security of [securityArgs("Basic256Sha256", "SignAndEncrypt"),
    securityArgs("Aes256_Sha256_RsaPss", "Sign")]) {
    const ok = await run(["read", peer.endpointUrl, NODE, "--json", ...security,
      "--user", "alice", "--password-file", passwordFile]);
    assert.equal(ok.events[0]?.status, "Good", ok.describe());
  }
  const wrong = await run(["read", peer.endpointUrl, NODE, "--json",
    ...securityArgs("Aes128_Sha256_RsaOaep", "SignAndEncrypt"), "--user", "alice",
    "--password-file", wrongFile]);
  assert.equal(wrong.events[0]?.step, "ActivateSession", wrong.describe());
  // decrypted and compared: a wrong credential, not a malformed token
  assert.equal(wrong.events[0].status, "BadUserAccessDenied", wrong.describe());
});

test("UserName on ECC channels: the password as an EccEncryptedSecret for the server's " +
  "ephemeral key", async () => {
  for (const [policy, mode] of ECC_CASES) {
    const ok = await run(["read", peer.endpointUrl, NODE, "--json", ...securityArgs(policy, mode),
      "--user", "alice", "--password-file", passwordFile]);
    assert.equal(ok.events[0]?.status, "Good", ok.describe());
  }
  const wrong = await run(["read", peer.endpointUrl, NODE, "--json",
    ...securityArgs("ECC_nistP384", "Sign"), "--user", "alice", "--password-file", wrongFile]);
  assert.equal(wrong.events[0]?.step, "ActivateSession", wrong.describe());
  // decrypted and compared: a wrong credential, not a malformed token
  assert.equal(wrong.events[0].status, "BadUserAccessDenied", wrong.describe());
});

// open62541 names Basic256Sha256 for passwords on its None endpoint but returns its certificate in
// CreateSession only to a client that sent one; uarc sends none on a None channel, so there is no
// certificate to encrypt for: refused before the password leaves, not sent in clear.
test("UserName on a None channel: open62541 sends no certificate to encrypt for, the password " +
  "is not sent", async () => {
  const r = await run(["read", peer.endpointUrl, NODE, "--json", "--trust-list", trustDir,
    ...asUserWithPassword(passwordFile)]);
  assert.notEqual((await r.exited).code, 0, r.describe());
  assert.equal(r.events[0]?.step, "ActivateSession", r.describe());
  assert.equal(r.events[0].status, "BadSecurityChecksFailed", r.describe());
  assert.match(r.events[0].reason ?? "", /certificate in CreateSession is missing/, r.describe());
});

for (const [policy, mode] of PASSWORD_REVERSE) {
  const name = `${policy} ${mode}`;
  test(`UserName with an encrypted password over Reverse Connect, ${name}`, async () => {
    const listener = passwordListeners.get(`${policy}/${mode}`);
    const ev = await listener.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
    assert.equal(ev.status, "Good", listener.describe());
    const connected = listener.events.find((e) => e.event === "connected" && e.server_uri === URI);
    assert.equal(connected?.security_policy, policy, listener.describe());
    assert.ok(!listener.events.some((e) => e.event === "error"), listener.describe());
  });
}

test("a peer that trusts only listed client certificates: ours opens the channel, an unknown " +
  "one is refused at OPN", async () => {
  const strict = await startPeer62541("urn:o62-strict", ["--trust-client", collector.der,
    "--certificate-out", path.join(trustDir, "strict.der")]);
  try {
    const ok = await run(["read", strict.endpointUrl, NODE, "--json",
      ...securityArgs("Basic256Sha256", "SignAndEncrypt"), ...ownCertificate]);
    assert.equal(ok.events[0]?.status, "Good", ok.describe());
    const unknown = await run(["read", strict.endpointUrl, NODE, "--json",
      ...securityArgs("Basic256Sha256", "SignAndEncrypt")]); // an ephemeral certificate
    assert.notEqual((await unknown.exited).code, 0, unknown.describe());
    assert.equal(unknown.events[0]?.step, "OPN", unknown.describe());
    assert.match(unknown.events[0].status, /^Bad/, unknown.describe());
  } finally {
    await strict.stop();
  }
});
