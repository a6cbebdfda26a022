// uarc monitor's data items against the node-opcua peer, per Part 4 §5.12: a queue that overflows
// marks the value next to the dropped ones (InfoBits Overflow, "overflow": true), a queue of one
// never does; absolute and percent deadbands (percent of the AnalogItem's EURange) let through
// only changes beyond them. The peer's ns=1;s=Counter and ns=1;s=Analog count +1 every 10 ms.
// And a stdout that cannot be written ends the run instead of acknowledging unwritten lines.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import { runUarc, loadPeer, UARC_BIN } from "./helpers.mjs";

const { startPeer } = await loadPeer();
const peer = await startPeer({ uri: "urn:peer-monitor-filters", args: ["--no-big"] });
after(() => peer.stop());

const isData = (e) => e.event === "data";

/** Runs uarc monitor until `count` data lines; returns them (and the run, for messages). */
async function monitor(args, count) {
  const uarc = runUarc(["monitor", peer.endpointUrl, ...args, "--json", "--count", String(count)]);
  const { code } = await uarc.exited;
  assert.equal(code, 0, uarc.describe());
  const data = uarc.events.filter(isData);
  assert.equal(data.length, count, uarc.describe());
  return { uarc, data };
}

test("a queue of 2 that overflows between publishes: the value after dropped ones carries the Overflow bit", async () => {
  // 500 ms between publishes, ~50 changes each time, 2 kept (the oldest discarded): the first
  // value delivered after values were dropped is marked, and only such a value.
  const { uarc, data } = await monitor(["ns=1;s=Counter", "--interval", "500", "--sampling", "0",
    "--queue", "2"], 12);
  let marked = 0;
  for (let i = 1; i < data.length; i++) {
    const dropped = data[i].value - data[i - 1].value > 1;
    assert.equal(data[i].overflow === true, dropped, `#${i}\n${uarc.describe()}`);
    if (dropped) assert.equal(data[i].status, "Good"); // the status code itself is still Good
    marked += dropped;
  }
  assert.ok(marked >= 2, uarc.describe());
});

test("a queue of 1 keeps only the newest value and never sets the Overflow bit", async () => {
  const { uarc, data } = await monitor(["ns=1;s=Counter", "--interval", "200", "--sampling", "0",
    "--queue", "1"], 5);
  assert.deepEqual(data.filter((e) => "overflow" in e), [], uarc.describe());
  assert.ok(data.some((e, i) => i > 0 && e.value - data[i - 1].value > 1), uarc.describe());
});

test("a queue large enough: every value, none marked", async () => {
  const { uarc, data } = await monitor(["ns=1;s=Counter", "--interval", "200", "--sampling", "0",
    "--queue", "1000"], 60);
  assert.deepEqual(data.filter((e) => "overflow" in e), [], uarc.describe());
  for (let i = 1; i < data.length; i++) assert.equal(data[i].value, data[i - 1].value + 1, uarc.describe());
});

/** Each reported value exceeds the last reported one by more than the deadband: with a counter
 * that steps by 1 and every change sampled, exactly `step` apart. */
function assertSteps(data, step, describe) {
  for (let i = 1; i < data.length; i++) {
    assert.equal(data[i].value - data[i - 1].value, step, `#${i}\n${describe()}`);
  }
}

test("--deadband abs:4.5: a change is reported only once it exceeds 4.5 from the last reported", async () => {
  const { uarc, data } = await monitor(["ns=1;s=Counter", "--interval", "100", "--sampling", "0",
    "--queue", "1000", "--deadband", "abs:4.5"], 12);
  assertSteps(data, 5, uarc.describe);
});

test("--deadband pct:0.45 on an AnalogItem with EURange 0..1000: 4.5 units, every fifth value", async () => {
  const { uarc, data } = await monitor(["ns=1;s=Analog", "--interval", "100", "--sampling", "0",
    "--queue", "1000", "--deadband", "pct:0.45"], 12);
  assert.equal(data[0].type, "Double");
  assertSteps(data, 5, uarc.describe);
});

test("--deadband pct on a variable without EURange: the server refuses the item, the run goes on", async () => {
  const uarc = runUarc(["monitor", peer.endpointUrl, "ns=1;s=Counter", "ns=1;s=Analog",
    "--interval", "100", "--sampling", "0", "--queue", "100", "--deadband", "pct:1", "--json"]);
  try {
    const refused = await uarc.waitFor((e) => e.event === "item" && e.node === "ns=1;s=Counter", 20000);
    assert.match(refused.status, /^Bad/, uarc.describe());
    const accepted = await uarc.waitFor((e) => e.event === "item" && e.node === "ns=1;s=Analog", 20000);
    assert.equal(accepted.status, "Good", uarc.describe());
    await uarc.waitCount((e) => isData(e) && e.node === "ns=1;s=Analog", 3, 20000);
  } finally {
    await uarc.stop();
  }
  assert.deepEqual(uarc.events.filter((e) => isData(e) && e.node === "ns=1;s=Counter"), []);
});

test("a stdout that cannot be written (/dev/full): the run stops with status 1 instead of going on", async () => {
  const full = fs.openSync("/dev/full", "w");
  const child = spawn(UARC_BIN, ["monitor", peer.endpointUrl, "ns=1;s=Counter", "--json",
    "--interval", "100", "--sampling", "0", "--queue", "100"], { stdio: ["ignore", full, "pipe"] });
  fs.closeSync(full);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => { stderr += d; });
  const timer = setTimeout(() => child.kill("SIGKILL"), 20000);
  const [code] = await new Promise((resolve) => child.on("close", (...r) => resolve(r)));
  clearTimeout(timer);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /writing to stdout failed/);
});
