// Start and stop the test peer (server.mjs) from a test. No node-opcua import here, so a test
// process loads only what it uses.
//
//   const peer = await startPeer({ uri: "urn:peer-a", reverse: ["opc.tcp://127.0.0.1:4843"] });
//   peer.endpointUrl; peer.started; peer.stderr(); await peer.stop();
//
// Every peer started here is also killed when the test process exits, and its stdin is a pipe,
// so the peer stops by itself if this process dies.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import readline from "node:readline";
import fs from "node:fs";
import os from "node:os";

export const PEER_DIR = path.dirname(fileURLToPath(import.meta.url));
export const SERVER = path.join(PEER_DIR, "server.mjs");

const live = new Set();
// The peers' temporary folders (certificate stores) go under one folder of this process, removed
// on exit: a peer killed with SIGKILL cannot remove its own.
let tmpRoot;
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
  if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
});

export async function startPeer({ uri, reverse = [], reconnectDelay = 100, maxReconnectDelay = 400,
  connectionTimeout, args = [], startTimeoutMs = 60000 } = {}) {
  const argv = [SERVER, "--uri", uri, "--reconnect-delay", String(reconnectDelay),
    "--max-reconnect-delay", String(maxReconnectDelay)];
  if (connectionTimeout !== undefined) argv.push("--connection-timeout", String(connectionTimeout));
  for (const url of reverse) argv.push("--reverse", url);
  argv.push(...args);
  return startPeerProgram(process.execPath, argv, { uri, startTimeoutMs });
}

/**
 * Starts any peer program that follows this one's contract (one JSON `started` line on stdout,
 * exit when stdin closes), such as the open62541 peer (tests/peer62541): `command argv...`.
 * Returns what startPeer returns.
 */
export async function startPeerProgram(command, argv, { uri, startTimeoutMs = 60000 } = {}) {
  tmpRoot ??= fs.mkdtempSync(path.join(os.tmpdir(), "uarc-peers-"));
  const child = spawn(command, argv, {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODEOPCUA_LOG_LEVEL: process.env.NODEOPCUA_LOG_LEVEL ?? "3", TMPDIR: tmpRoot },
  });
  live.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => {
    live.delete(child);
    resolve({ code, signal });
  }));

  const started = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      reject(new Error(`peer ${uri} did not start within ${startTimeoutMs} ms; stderr:\n${stderr}`));
    }, startTimeoutMs);
    rl.once("line", (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line));
      } catch (err) {
        reject(new Error(`peer ${uri} printed a line that is not JSON: ${line}`));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`peer ${uri} exited (code ${code}, signal ${signal}) before starting; stderr:\n${stderr}`));
    });
  }).catch((err) => {
    child.kill("SIGKILL");
    throw err;
  });

  return {
    child,
    started,
    endpointUrl: started.endpoint_url,
    uri,
    exited,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}
