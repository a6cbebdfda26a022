// Secured channels against node-opcua 2.186.4 (tests/peer/server.mjs --secure): reads over
// Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss in modes Sign and SignAndEncrypt
// with an ephemeral self-signed client certificate, forward and reverse; UserName logins with an
// encrypted password (secured or None channels, forward and reverse), X509 user identities (a
// trusted user certificate forward and reverse, over None too, an untrusted one refused),
// and Reverse Connect where the server's identity is tied to its certificate: a ReverseHello whose
// ServerUri is not the certificate's URI is refused once the channel is secured. With --trust-list,
// the server's certificate must validate against the folder's certificates before OPN. Without
// --server-certificate, `uarc listen` asks the server for it over its first dial (GetEndpoints on a
// None channel), checks its URI against the ReverseHello, and opens the secured session on the
// server's next dial. A certificate learned that way is trusted only by an explicit choice:
// --trust-list, --trust-store (trust on first use) or --accept-any-certificate.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { runUarc, startListen, loadPeer, rhe, exitWithin, makeCertificate } from "./helpers.mjs";

const { startPeer } = await loadPeer();

const URI = "urn:sec-peer";
const IMPOSTOR = "urn:sec-impostor";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "uarc-sec-"));
const certFile = path.join(tmp, "server.der");
const passwordFile = path.join(tmp, "password");
const wrongFile = path.join(tmp, "wrong");
const trustedDir = path.join(tmp, "trusted"); // gets the peer's certificate once it runs
const emptyTrustDir = path.join(tmp, "empty-trust-list");
const storeDir = path.join(tmp, "store"); // --trust-store of the forward reads, made by uarc
const x509StoreDir = path.join(tmp, "x509-store"); // --trust-store of the X509 reverse listener
const reverseStoreDir = path.join(tmp, "reverse-store");
fs.mkdirSync(trustedDir);
fs.mkdirSync(emptyTrustDir);
fs.writeFileSync(passwordFile, "secret\n");
// X509 user identities: the peer trusts alice's certificate, not mallory's.
const alice = makeCertificate(tmp, "alice");
const mallory = makeCertificate(tmp, "mallory");
const asAlice = ["--user-certificate", alice.cert, "--user-private-key", alice.key];
const asMallory = ["--user-certificate", mallory.cert, "--user-private-key", mallory.key];
fs.writeFileSync(wrongFile, "wrong\n");

let peer;
let listener;
let impostorListener;
let discoveringListener; // no --server-certificate: learns it on the peer's first dial
let discoveringImpostorListener;
let x509Listener; // Reverse Connect with alice's identity
let x509NoneListener; // the same over a None channel
let passwordListener; // Reverse Connect with alice's password, Aes128_Sha256_RsaOaep
let passwordNoneListener; // the same over a None channel
// "policy/mode" → Reverse Connect read, the modes the other listeners do not cover
// (Basic256Sha256 SignAndEncrypt: listener; Aes128_Sha256_RsaOaep SignAndEncrypt:
// passwordListener; Aes256_Sha256_RsaPss SignAndEncrypt: x509Listener)
const rsaListeners = new Map();
const RSA_REVERSE = [["Basic256Sha256", "Sign"], ["Aes128_Sha256_RsaOaep", "Sign"],
  ["Aes256_Sha256_RsaPss", "Sign"]];
const asAliceWithPassword = ["--user", "alice", "--password-file", passwordFile];
const run = async (args) => {
  const p = runUarc(args);
  await exitWithin(p, 30000);
  return p;
};

before(async () => {
  const discovering = ["--security-policy", "Basic256Sha256", "--security-mode", "SignAndEncrypt",
    "--read", "ns=1;s=Scalar.Double"];
  const secure = [...discovering, "--server-certificate", certFile];
  [listener, impostorListener, discoveringListener, discoveringImpostorListener, x509Listener] =
    await Promise.all([
      startListen(["--allow", URI, ...secure, "--count", "1"]),
      startListen(["--allow", IMPOSTOR, ...secure, "--stay"]),
      startListen(["--allow", URI, ...discovering, "--trust-store", reverseStoreDir, "--count",
        "1"]),
      startListen(["--allow", IMPOSTOR, ...discovering, "--accept-any-certificate", "--stay"]),
      startListen(["--allow", URI, "--security-policy", "Aes256_Sha256_RsaPss", "--trust-store",
        x509StoreDir, "--read", "ns=1;s=Scalar.Double", "--count", "1", ...asAlice]),
    ]);
  const read = ["--read", "ns=1;s=Scalar.Double", "--count", "1"];
  // a None channel: the token's signature and the password are for the pinned certificate
  const pinned = ["--server-certificate", certFile];
  [x509NoneListener, passwordListener, passwordNoneListener] = await Promise.all([
    startListen(["--allow", URI, ...pinned, ...read, ...asAlice]),
    startListen(["--allow", URI, "--security-policy", "Aes128_Sha256_RsaOaep", ...pinned, ...read,
      ...asAliceWithPassword]),
    startListen(["--allow", URI, ...pinned, ...read, ...asAliceWithPassword]),
  ]);
  for (const [policy, mode] of RSA_REVERSE) {
    rsaListeners.set(`${policy}/${mode}`, await startListen(["--allow", URI, "--security-policy",
      policy, "--security-mode", mode, ...pinned, ...read]));
  }
  peer = await startPeer({
    uri: URI,
    reverse: [listener.url, discoveringListener.url, x509Listener.url, x509NoneListener.url,
      passwordListener.url, passwordNoneListener.url, ...[...rsaListeners.values()].map((l) =>
        l.url)],
    args: ["--no-big", "--secure", "--certificate-out", certFile, "--user", "alice:secret",
      "--trust-user", alice.cert],
  });
});

after(async () => {
  listener?.stop?.();
  impostorListener?.stop?.();
  discoveringListener?.stop?.();
  discoveringImpostorListener?.stop?.();
  x509Listener?.stop?.();
  for (const l of [x509NoneListener, passwordListener, passwordNoneListener,
    ...rsaListeners.values()]) l?.stop?.();
  await peer?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

for (const policy of ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]) {
  for (const mode of ["Sign", "SignAndEncrypt"]) {
    test(`read over ${policy} ${mode} (server certificate found with GetEndpoints)`, async () => {
      const r = await run(["read", peer.endpointUrl, "ns=1;s=Scalar.Double", "--json",
        "--security-policy", policy, "--security-mode", mode, "--trust-store", storeDir]);
      assert.equal((await r.exited).code, 0, r.describe());
      assert.equal(r.events[0].status, "Good", r.describe());
      assert.equal(r.events[0].value, 3.141592653589793, r.describe());
    });
  }
}

test("--trust-store: the first certificate was recorded with a warning; a different one recorded " +
  "for the endpoint is refused before OPN until the operator replaces the file", async () => {
  const records = fs.readdirSync(storeDir);
  assert.equal(records.length, 1, records.join(" "));
  const record = path.join(storeDir, records[0]);
  const pem = fs.readFileSync(record, "utf8");
  assert.match(pem, new RegExp(`^# .*${peer.endpointUrl}`));
  const again = await run(["read", peer.endpointUrl, "i=2258", "--json", "--security-policy",
    "Basic256Sha256", "--trust-store", storeDir]);
  assert.equal((await again.exited).code, 0, again.describe());
  assert.doesNotMatch(again.stderr(), /first certificate seen/, again.describe());

  // the record now holds another certificate, as after a substitution on first use elsewhere
  const other = makeClientCertificate("urn:sec-peer");
  fs.copyFileSync(other[1], record);
  const refused = await run(["read", peer.endpointUrl, "i=2258", "--json", "--security-policy",
    "Basic256Sha256", "--trust-store", storeDir]);
  assert.equal((await refused.exited).code, 1, refused.describe());
  assert.equal(refused.events[0]?.step, "OPN", refused.describe());
  assert.equal(refused.events[0].status, "BadCertificateUntrusted", refused.describe());
  assert.match(refused.events[0].reason ?? "", /not the one recorded on first use/,
    refused.describe());

  // the operator removes the record: the next read is a first use, reported on stderr
  fs.rmSync(record);
  const first = await run(["read", peer.endpointUrl, "i=2258", "--security-policy",
    "Basic256Sha256", "--trust-store", storeDir]);
  assert.equal((await first.exited).code, 0, first.describe());
  assert.match(first.stderr(), /warning: trust: first certificate seen for opc\.tcp:/,
    first.describe());
});

test("a secured policy with no trust option is a usage error, before any connection", async () => {
  const r = await run(["read", peer.endpointUrl, "i=2258", "--security-policy", "Basic256Sha256"]);
  assert.equal((await r.exited).code, 2, r.describe());
  assert.match(r.stderr(), /--trust-list DIR, --trust-store DIR or --server-certificate FILE/,
    r.describe());
});

test("read over Basic256Sha256 with --server-certificate", async () => {
  const r = await run(["read", peer.endpointUrl, "ns=1;s=Scalar.Double", "--json",
    "--security-policy", "Basic256Sha256", "--server-certificate", certFile]);
  assert.equal(r.events[0]?.status, "Good", r.describe());
});

test("--trust-list holding the server's certificate: the read works", async () => {
  fs.copyFileSync(certFile, path.join(trustedDir, "peer.der"));
  const r = await run(["read", peer.endpointUrl, "ns=1;s=Scalar.Double", "--json",
    "--security-policy", "Basic256Sha256", "--trust-list", trustedDir]);
  assert.equal((await r.exited).code, 0, r.describe());
  assert.equal(r.events[0]?.status, "Good", r.describe());
});

test("an empty --trust-list: the server's certificate is untrusted, the connect fails at OPN",
  async () => {
    const r = await run(["read", peer.endpointUrl, "ns=1;s=Scalar.Double", "--json",
      "--security-policy", "Basic256Sha256", "--server-certificate", certFile,
      "--trust-list", emptyTrustDir]);
    assert.notEqual((await r.exited).code, 0, r.describe());
    assert.equal(r.events[0]?.step, "OPN", r.describe());
    assert.match(r.events[0]?.status ?? "", /^BadCertificate/, r.describe());
    assert.equal(r.events[0].status, "BadCertificateUntrusted", r.describe());
    assert.match(r.events[0].reason ?? "", /trust list/, r.describe());
  });

test("UserName with the password encrypted for the server", async () => {
  const ok = await run(["read", peer.endpointUrl, "i=2258", "--json", "--security-policy",
    "Basic256Sha256", "--trust-store", storeDir, "--user", "alice", "--password-file",
    passwordFile]);
  assert.equal(ok.events[0]?.status, "Good", ok.describe());
  assert.equal(ok.events[0].type, "DateTime");
  // the server decrypted it and compared: a wrong password is a wrong credential, not a
  // malformed token
  const wrong = await run(["read", peer.endpointUrl, "i=2258", "--json", "--security-policy",
    "Aes256_Sha256_RsaPss", "--trust-list", trustedDir, "--user", "alice", "--password-file",
    wrongFile]);
  assert.equal(wrong.events[0]?.step, "ActivateSession", wrong.describe());
  assert.equal(wrong.events[0].status, "BadUserAccessDenied", wrong.describe());
});

test("X509 user identity: a trusted user certificate logs in, an untrusted one is refused",
  async () => {
    // None channel: node-opcua's token policy names Basic256Sha256 for the signature
    const trust = ["--trust-store", storeDir];
    for (const security of [[], ["--security-policy", "Basic256Sha256", ...trust],
      ["--security-policy", "Aes128_Sha256_RsaOaep", "--security-mode", "Sign", ...trust],
      ["--security-policy", "Aes256_Sha256_RsaPss", ...trust]]) {
      const ok = await run(["read", peer.endpointUrl, "i=2258", "--json", ...security, ...asAlice]);
      assert.equal(ok.events[0]?.status, "Good", ok.describe());
    }
    for (const security of [[], ["--security-policy", "Basic256Sha256", ...trust]]) {
      const no = await run(["read", peer.endpointUrl, "i=2258", "--json", ...security,
        ...asMallory]);
      assert.notEqual((await no.exited).code, 0, no.describe());
      assert.equal(no.events[0]?.step, "ActivateSession", no.describe());
      assert.equal(no.events[0].status, "BadIdentityTokenRejected", no.describe());
    }
  });

test("X509 user identity over Reverse Connect (Aes256_Sha256_RsaPss)", async () => {
  const ev = await x509Listener.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
  assert.equal(ev.status, "Good", x509Listener.describe());
  assert.ok(!x509Listener.events.some((e) => e.event === "error"), x509Listener.describe());
});

/** Waits for the listener's read of the peer and checks its channel's SecurityPolicy. */
async function reverseRead(l, policy) {
  const ev = await l.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
  assert.equal(ev.status, "Good", l.describe());
  const connected = l.events.find((e) => e.event === "connected" && e.server_uri === URI);
  assert.equal(connected?.security_policy, policy, l.describe());
  assert.ok(!l.events.some((e) => e.event === "error" && e.server_uri === URI), l.describe());
}

test("X509 user identity over Reverse Connect on a None channel", () =>
  reverseRead(x509NoneListener, "None"));

test("UserName with the password encrypted for the server, over Reverse Connect", async () => {
  await reverseRead(passwordListener, "Aes128_Sha256_RsaOaep"); // SignAndEncrypt
  await reverseRead(passwordNoneListener, "None"); // encrypted under the token policy's
});

test("UserName on a None channel: the password encrypted under the token policy's " +
  "SecurityPolicy for the pinned certificate", async () => {
  const ok = await run(["read", peer.endpointUrl, "i=2258", "--json", "--server-certificate",
    certFile, ...asAliceWithPassword]);
  assert.equal(ok.events[0]?.status, "Good", ok.describe());
});

for (const [policy, mode] of RSA_REVERSE) {
  test(`Reverse Connect over ${policy} ${mode}`, () =>
    reverseRead(rsaListeners.get(`${policy}/${mode}`), policy));
}

test("Reverse Connect over Basic256Sha256 SignAndEncrypt", async () => {
  const ev = await listener.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
  assert.equal(ev.status, "Good", listener.describe());
  const connected = listener.events.find((e) => e.event === "connected" && e.server_uri === URI);
  assert.equal(connected?.security_policy, "Basic256Sha256", listener.describe());
});

// A relay dials `target`, announces itself as IMPOSTOR, then passes the bytes through to the real
// peer, whose certificate says urn:sec-peer. Returns a function that closes both sockets.
async function relayAsImpostor(target) {
  const upstream = net.connect(Number(new URL(peer.endpointUrl).port), "127.0.0.1");
  const down = net.connect(target.port, "127.0.0.1");
  for (const s of [upstream, down]) s.on("error", () => {}); // the listener may close first
  await Promise.all([new Promise((r) => upstream.once("connect", r)),
    new Promise((r) => down.once("connect", r))]);
  down.write(rhe(IMPOSTOR, peer.endpointUrl));
  down.pipe(upstream);
  upstream.pipe(down);
  return () => {
    down.destroy();
    upstream.destroy();
  };
}

test("an RHE claiming another ServerUri than the certificate's is refused once secured", async () => {
  const close = await relayAsImpostor(impostorListener);
  const ev = await impostorListener.waitFor((e) => e.event === "error" && e.server_uri === IMPOSTOR,
    20000);
  assert.equal(ev.status, "BadCertificateUriInvalid", impostorListener.describe());
  assert.match(ev.reason ?? "", new RegExp(`${URI}.*${IMPOSTOR}`), impostorListener.describe());
  assert.ok(!impostorListener.events.some((e) => e.event === "read"), impostorListener.describe());
  close();
});

test("Reverse Connect over Basic256Sha256 SignAndEncrypt without --server-certificate: the first " +
  "dial asks GetEndpoints, the next one reads", async () => {
  const l = discoveringListener;
  const ev = await l.waitFor((e) => e.event === "read" && e.server_uri === URI, 30000);
  assert.equal(ev.status, "Good", l.describe());
  assert.equal(ev.value, 3.141592653589793, l.describe());
  const at = (pred) => l.events.findIndex(pred);
  const discovered = at((e) => e.event === "discovered" && e.server_uri === URI);
  const connected = at((e) => e.event === "connected" && e.server_uri === URI);
  assert.ok(discovered >= 0 && connected > discovered, l.describe());
  assert.equal(l.events[discovered].security_policy, "Basic256Sha256", l.describe());
  assert.equal(l.events[discovered].security_mode, "SignAndEncrypt", l.describe());
  assert.equal(l.events[connected].security_policy, "Basic256Sha256", l.describe());
  // two dials: the discovery's, then the session's
  const accepted = l.events.filter((e) => e.event === "accepted" && e.server_uri === URI);
  assert.ok(accepted.length >= 2, l.describe());
  assert.ok(!l.events.some((e) => e.event === "error"), l.describe());
  assert.equal((await exitWithin(l, 10000)).code, 0, l.describe()); // --count 1
  // trust on first use, per ServerUri: the certificate is recorded and the operator warned
  const records = fs.readdirSync(reverseStoreDir);
  assert.equal(records.length, 1, records.join(" "));
  assert.match(records[0], /^urn_sec-peer-[0-9a-f]{8}\.pem$/);
  assert.match(l.stderr(), /warning: trust: first certificate seen for urn:sec-peer /, l.describe());
});

test("without --server-certificate, an RHE claiming another ServerUri than the certificate's is " +
  "refused at discovery", async () => {
  const l = discoveringImpostorListener;
  const close = await relayAsImpostor(l);
  const ev = await l.waitFor((e) => e.event === "error" && e.server_uri === IMPOSTOR, 20000);
  assert.equal(ev.status, "BadCertificateUriInvalid", l.describe());
  assert.equal(ev.step, "GetEndpoints", l.describe());
  assert.match(ev.reason ?? "", new RegExp(`${URI}.*${IMPOSTOR}`), l.describe());
  assert.ok(!l.events.some((e) => e.event === "discovered" || e.event === "connected" ||
    e.event === "read"), l.describe());
  close();
});

// Our own certificate with another URI than urn:uarc:client: the ApplicationDescription must carry
// the certificate's URI, or node-opcua refuses the session (BadCertificateUriInvalid).
function makeClientCertificate(uri) {
  const { cert, key } = makeCertificate(tmp, "other-client", uri);
  return ["--certificate", cert, "--private-key", key];
}

test("--certificate naming another ApplicationUri: the session uses the certificate's URI, " +
  "forward and reverse", async () => {
  const own = makeClientCertificate("urn:plant:collector-7");
  const r = await run(["read", peer.endpointUrl, "ns=1;s=Scalar.Double", "--json",
    "--security-policy", "Basic256Sha256", "--server-certificate", certFile, ...own]);
  assert.equal((await r.exited).code, 0, r.describe());
  assert.equal(r.events[0]?.status, "Good", r.describe());

  // a configured URI that is not the certificate's: a usage problem found before dialing
  const clash = await run(["read", peer.endpointUrl, "i=2258", "--json", "--security-policy",
    "Basic256Sha256", "--server-certificate", certFile, ...own,
    "--application-uri", "urn:uarc:client"]);
  assert.notEqual((await clash.exited).code, 0, clash.describe());
  assert.equal(clash.events[0]?.step, "connect", clash.describe());
  assert.equal(clash.events[0].status, "BadCertificateUriInvalid", clash.describe());
  assert.match(clash.events[0].reason ?? "", /urn:plant:collector-7/, clash.describe());

  // reverse: a second peer dials a listener that presents the same certificate
  const l = await startListen(["--allow", "urn:sec-peer-2", "--security-policy", "Basic256Sha256",
    "--accept-any-certificate", "--read", "ns=1;s=Scalar.Double", "--count", "1", ...own]);
  const second = await startPeer({
    uri: "urn:sec-peer-2", reverse: [l.url], args: ["--no-big", "--secure"],
  });
  try {
    const ev = await l.waitFor((e) => e.event === "read" && e.server_uri === "urn:sec-peer-2",
      30000);
    assert.equal(ev.status, "Good", l.describe());
    assert.ok(!l.events.some((e) => e.event === "error"), l.describe());
  } finally {
    l.stop?.();
    await second.stop();
  }
});
