// Shared helpers of the interop tests: run `uarc` and read its JSON Lines events, start the
// open62541 peer, relay (and cut) a connection, play a fake server on a raw socket. Paths come from the environment (set by tests/interop/CMakeLists.txt):
//   UARC_BIN  the uarc tool          PEER_DIR  tests/peer (server.mjs, peer.mjs, node_modules)
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const UARC_BIN = process.env.UARC_BIN;
export const PEER_DIR = process.env.PEER_DIR ?? path.resolve(here, "../peer");
if (!UARC_BIN) {
  throw new Error("UARC_BIN is not set: run these tests through ctest, or set UARC_BIN=/path/to/uarc");
}

/** startPeer from tests/peer/peer.mjs (loaded from PEER_DIR). */
export async function loadPeer() {
  return import(pathToFileURL(path.join(PEER_DIR, "peer.mjs")).href);
}

const live = new Set();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/**
 * Runs `uarc ARGS...` and collects its stdout as JSON Lines events.
 * Returns { child, events, chunks, stdout(), stderr(), exited, waitFor(pred, ms), waitCount(pred, n, ms), stop() }.
 */
export function runUarc(args, { stdin = "ignore" } = {}) {
  const child = spawn(UARC_BIN, args, { stdio: [stdin, "pipe", "pipe"] });
  live.add(child);
  const events = [];
  const chunks = [];
  const badLines = [];
  let stdout = "";
  let stderr = "";
  let pending = "";
  const waiters = new Set();

  const notify = () => {
    for (const w of waiters) w();
  };
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    chunks.push(chunk);
    stdout += chunk;
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        const ev = JSON.parse(line);
        ev._at = Date.now();
        events.push(ev);
      } catch {
        badLines.push(line);
      }
    }
    notify();
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on("close", (code, signal) => {
    live.delete(child);
    resolve({ code, signal });
    notify();
  }));
  let done = false;
  exited.then(() => { done = true; });

  const describe = () =>
    `uarc ${args.join(" ")}\n--- events:\n${events.map((e) => JSON.stringify(e)).join("\n")}` +
    `\n--- stderr:\n${stderr}`;

  // Resolves with the first `n` events matching `pred` (in arrival order).
  function waitCount(pred, n, ms = 15000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = events.filter(pred);
        if (found.length >= n) {
          cleanup();
          resolve(found.slice(0, n));
        } else if (done) {
          cleanup();
          reject(new Error(`uarc exited with ${found.length}/${n} matching events\n${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${ms} ms waiting for ${n} matching events\n${describe()}`));
      }, ms);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }

  return {
    child,
    args,
    events,
    chunks,
    badLines,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    describe,
    waitCount,
    waitFor: (pred, ms) => waitCount(pred, 1, ms).then((found) => found[0]),
    /** SIGTERM, SIGKILL 5 s later if needed; resolves with { code, signal }. */
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        const r = await exited;
        clearTimeout(timer);
        return r;
      }
      return exited;
    },
  };
}

/** Resolves with { code, signal } or rejects after `ms`. */
export function exitWithin(proc, ms, what = "uarc") {
  return Promise.race([
    proc.exited,
    new Promise((_, reject) => setTimeout(
      () => reject(new Error(`${what} did not exit within ${ms} ms\n${proc.describe?.() ?? ""}`)), ms).unref()),
  ]);
}

/** Starts `uarc listen --json --bind 127.0.0.1 --port PORT ...extra` and waits for `listening`. */
export async function startListen(extra = [], { port = 0 } = {}) {
  const proc = runUarc(["listen", "--json", "--bind", "127.0.0.1", "--port", String(port), ...extra]);
  const ev = await proc.waitFor((e) => e.event === "listening", 10000);
  const m = /^127\.0\.0\.1:(\d+)$/.exec(ev.address);
  if (!m) throw new Error(`unexpected listening address ${ev.address}\n${proc.describe()}`);
  proc.port = Number(m[1]);
  proc.url = `opc.tcp://127.0.0.1:${proc.port}`;
  return proc;
}

/** Starts the open62541 peer (PEER62541, tests/peer62541) as `--uri URI`, re-dialing 100 ms after
 * a reverse connection ends; `args` are its own options (tests/peer62541/README.md). */
export async function startPeer62541(uri, args = []) {
  const program = process.env.PEER62541;
  if (!program) throw new Error("PEER62541 is not set: run these tests through ctest");
  const { startPeerProgram } = await loadPeer();
  return startPeerProgram(program, ["--uri", uri, "--reconnect-interval", "100", ...args],
    { uri, startTimeoutMs: 20000 });
}

/**
 * A TCP relay on 127.0.0.1 to `port`: { port, url, accepted, swallow(), cut(ms), close() }.
 * `serverDials`: the server is the side that connects to the relay (Reverse Connect).
 * swallow() drops from then on whatever the server side sends (the client never sees those
 * responses, as when they die in a broken network); cut(ms) destroys every relayed pair of sockets
 * and for `ms` refuses new connections by closing them at once, then relays again.
 */
export async function relay(port, { serverDials = false } = {}) {
  const pairs = new Set();
  const r = { accepted: 0 };
  let refuseUntil = 0;
  let swallowing = false;
  const listening = net.createServer((inbound) => {
    if (Date.now() < refuseUntil) {
      inbound.destroy();
      return;
    }
    r.accepted++;
    const outbound = net.connect(port, "127.0.0.1");
    const pair = [inbound, outbound];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    for (const s of pair) {
      s.on("error", drop);
      s.on("close", drop);
    }
    const [server, client] = serverDials ? pair : [outbound, inbound];
    client.pipe(server);
    server.on("data", (chunk) => {
      if (swallowing) r.swallowed = (r.swallowed ?? 0) + chunk.length;
      else client.write(chunk);
    });
  });
  await new Promise((resolve) => listening.listen(0, "127.0.0.1", resolve));
  r.port = listening.address().port;
  r.url = `opc.tcp://127.0.0.1:${r.port}`;
  r.swallow = () => {
    swallowing = true;
  };
  r.cut = (ms = 0) => {
    refuseUntil = Date.now() + ms;
    swallowing = false;
    const n = pairs.size;
    for (const [a, b] of [...pairs]) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
    return n;
  };
  r.close = () => {
    r.cut();
    return new Promise((resolve) => listening.close(resolve));
  };
  return r;
}

// ---- UA-TCP bytes ---------------------------------------------------------------------------

export function uaString(s) {
  if (s === null) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(-1);
    return b;
  }
  const body = Buffer.isBuffer(s) ? s : Buffer.from(s, "utf8");
  const len = Buffer.alloc(4);
  len.writeInt32LE(body.length);
  return Buffer.concat([len, body]);
}

export function frame(type, body) {
  const header = Buffer.alloc(8);
  header.write(type, 0, "latin1");
  header.writeUInt32LE(8 + body.length, 4);
  return Buffer.concat([header, body]);
}

export const rhe = (serverUri, endpointUrl) =>
  frame("RHEF", Buffer.concat([uaString(serverUri), uaString(endpointUrl)]));

/** Parses an ERR message; throws if the bytes are not exactly one ERR frame. */
export function parseErr(buf) {
  if (buf.length < 16) throw new Error(`ERR too short: ${buf.toString("hex")}`);
  const type = buf.subarray(0, 4).toString("latin1");
  const size = buf.readUInt32LE(4);
  const status = buf.readUInt32LE(8);
  const len = buf.readInt32LE(12);
  const reason = len < 0 ? null : buf.subarray(16, 16 + len).toString("utf8");
  return { type, size, status, reasonLength: len, reason, total: buf.length };
}

/**
 * A fake server: connects to 127.0.0.1:port and records everything it receives.
 * Returns { socket, localPeer, received(), closed, write(buf) }.
 */
export function fakeServer(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const parts = [];
    const closed = new Promise((res) => socket.on("close", () => res(Buffer.concat(parts))));
    socket.on("data", (d) => parts.push(d));
    socket.on("error", () => {}); // ECONNRESET after uarc closes is fine; `closed` still resolves
    socket.once("connect", () => {
      resolve({
        socket,
        localPeer: `127.0.0.1:${socket.localPort}`,
        received: () => Buffer.concat(parts),
        closed,
        write: (b) => new Promise((res) => socket.write(b, res)),
      });
    });
    socket.once("error", reject);
  });
}

/**
 * Makes an RSA-2048 key and a self-signed certificate (30 days) with OpenSSL in `dir`: CN `name`,
 * subjectAltName URI `uri` (and DNS localhost) when given. Returns { cert, key, der } file names
 * (cert and key PEM, der the certificate as DER).
 */
/** An RSA-2048 certificate and key, or with `curve` (an OpenSSL curve name) an EC one. */
export function makeCertificate(dir, name, uri, curve) {
  const key = path.join(dir, `${name}.key.pem`);
  const cert = path.join(dir, `${name}.cert.pem`);
  const der = path.join(dir, `${name}.cert.der`);
  const newkey = curve ? ["-newkey", "ec", "-pkeyopt", `ec_paramgen_curve:${curve}`]
    : ["-newkey", "rsa:2048"];
  const usage = curve ? "keyUsage=digitalSignature,nonRepudiation,keyAgreement"
    : "keyUsage=digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment";
  execFileSync("openssl", ["req", "-x509", ...newkey, "-nodes", "-keyout", key,
    "-out", cert, "-days", "30", "-subj", `/CN=${name}`,
    ...(uri ? ["-addext", `subjectAltName=URI:${uri},DNS:localhost`] : []),
    "-addext", usage,
    "-addext", "extendedKeyUsage=clientAuth,serverAuth"], { stdio: "ignore" });
  execFileSync("openssl", ["x509", "-in", cert, "-outform", "der", "-out", der],
    { stdio: "ignore" });
  return { cert, key, der };
}

/**
 * Makes a CA chain with OpenSSL in `dir`: a self-signed root CA, an intermediate CA it issues, and
 * an application certificate the intermediate issues (CN `name`, subjectAltName URI `uri`, DNS
 * localhost, IP 127.0.0.1), RSA-2048, 30 days. Returns DER file names { root, intermediate, leaf,
 * chain (the leaf followed by the intermediate, as a server sends it), key (the leaf's, DER) },
 * and chainPem, keyPem: the chain and the key as PEM.
 */
export function makeChain(dir, name, uri) {
  const f = (n) => path.join(dir, `${name}-${n}`);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: "ignore" });
  const ca = ["-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("root.key"),
    "-out", f("root.pem"), "-days", "30", "-subj", `/CN=${name} root CA`, ...ca);
  const issue = (what, issuer, subject, extensions) => {
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f(`${what}.key`),
      "-out", f(`${what}.csr`), "-subj", subject, ...extensions);
    openssl("x509", "-req", "-in", f(`${what}.csr`), "-CA", f(`${issuer}.pem`),
      "-CAkey", f(`${issuer}.key`), "-CAcreateserial", "-days", "30",
      "-copy_extensions", "copyall", "-out", f(`${what}.pem`));
  };
  issue("intermediate", "root", `/CN=${name} intermediate CA`, ca);
  issue("leaf", "intermediate", `/CN=${name}`, [
    "-addext", `subjectAltName=URI:${uri},DNS:localhost,IP:127.0.0.1`,
    "-addext", "basicConstraints=critical,CA:FALSE",
    "-addext", "keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment",
    "-addext", "extendedKeyUsage=serverAuth,clientAuth"]);
  const out = {};
  for (const what of ["root", "intermediate", "leaf"]) {
    out[what] = f(`${what}.der`);
    openssl("x509", "-in", f(`${what}.pem`), "-outform", "der", "-out", out[what]);
  }
  out.key = f("leaf.key.der");
  openssl("pkcs8", "-topk8", "-nocrypt", "-in", f("leaf.key"), "-outform", "der", "-out", out.key);
  out.chain = f("chain.der");
  fs.writeFileSync(out.chain, Buffer.concat([fs.readFileSync(out.leaf),
    fs.readFileSync(out.intermediate)]));
  out.chainPem = f("chain.pem");
  fs.writeFileSync(out.chainPem, Buffer.concat([fs.readFileSync(f("leaf.pem")),
    fs.readFileSync(f("intermediate.pem"))]));
  out.keyPem = f("leaf.key");
  return out;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}
