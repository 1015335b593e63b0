// Where the Worker's time goes: a CPU profile of `wrangler dev` taken through its inspector (the DevTools
// protocol), while this script sends the same requests over and over. Used by scripts/profile-worker.sh.
// Usage: node profile-worker.mjs INSPECTOR_PORT WORKER_PORT PATHS_FILE REQUESTS OUT.cpuprofile
// Prints three tables: time by where the code comes from (the Worker's wasm, the bundled JavaScript, workerd's
// internal modules), and the wasm functions by inclusive and by self time (each sample counted once per
// function on its stack). Times are per request and inflated by the profiler itself (a sample every 50 µs):
// read them as shares, not as latencies. Node's WebSocket with an Origin header, which wrangler's inspector
// proxy requires of every client.
import { readFileSync, writeFileSync } from "node:fs";

const [inspectorPort, workerPort, pathsFile, requests, out] = process.argv.slice(2);
const count = Number(requests);
const paths = readFileSync(pathsFile, "utf8").split("\n").filter(Boolean);
if (!paths.length || !(count > 0)) throw new Error("usage: profile-worker.mjs INSPECTOR_PORT WORKER_PORT PATHS_FILE REQUESTS OUT");

const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
if (!targets.length) throw new Error("the inspector lists no Worker");
const socket = new WebSocket(targets[0].webSocketDebuggerUrl, { headers: { Origin: "http://localhost" } });
await new Promise((opened, failed) => {
  socket.addEventListener("open", opened);
  socket.addEventListener("error", () => failed(new Error("the inspector refused the connection")));
});
let lastId = 0;
const waiting = new Map();
socket.addEventListener("message", (message) => {
  const reply = JSON.parse(message.data);
  if (reply.id && waiting.has(reply.id)) {
    waiting.get(reply.id)(reply);
    waiting.delete(reply.id);
  }
});
const call = (method, params = {}) =>
  new Promise((answered) => {
    const id = ++lastId;
    waiting.set(id, answered);
    socket.send(JSON.stringify({ id, method, params }));
  });

async function send(index) {
  const path = paths[index % paths.length];
  const response = await fetch(`http://127.0.0.1:${workerPort}${path}`);
  await response.arrayBuffer();
  return response.status;
}

for (let index = 0; index < 50; index++) await send(index);
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 50 });
await call("Profiler.start");
const statuses = new Map();
for (let index = 0; index < count; index++) {
  const status = await send(index);
  statuses.set(status, (statuses.get(status) ?? 0) + 1);
}
const { result } = await call("Profiler.stop");
socket.close();
const profile = result.profile;
writeFileSync(out, JSON.stringify(profile));

const perRequestMs = (samples) => (((profile.endTime - profile.startTime) / 1000) * samples) / profile.samples.length / count;
const share = (samples) => `${((100 * samples) / profile.samples.length).toFixed(1).padStart(5)}%  ${perRequestMs(samples).toFixed(3)} ms`;
const isWasm = (node) => node.callFrame.url.startsWith("wasm://");
const wasmName = (node) => node.callFrame.functionName.replace(/::h[0-9a-f]{16}$/, "").slice(0, 150);
const origin = (node) => {
  const url = node.callFrame.url;
  if (isWasm(node)) return "the Worker's wasm";
  if (url.endsWith(".js") || url.endsWith(".mjs")) return `bundled JavaScript (${url.split("/").pop()})`;
  if (url) return url.split(":").slice(0, 2).join(":");
  return node.callFrame.functionName || "(unnamed)";
};
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parentOf = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
const origins = new Map();
const inclusive = new Map();
const self = new Map();
for (const node of profile.nodes) {
  const hits = node.hitCount ?? 0;
  if (!hits) continue;
  origins.set(origin(node), (origins.get(origin(node)) ?? 0) + hits);
  if (isWasm(node)) self.set(wasmName(node), (self.get(wasmName(node)) ?? 0) + hits);
  const seen = new Set();
  for (let id = node.id; id !== undefined; id = parentOf.get(id)) {
    const frame = byId.get(id);
    if (isWasm(frame) && !seen.has(wasmName(frame))) {
      seen.add(wasmName(frame));
      inclusive.set(wasmName(frame), (inclusive.get(wasmName(frame)) ?? 0) + hits);
    }
  }
}
const table = (title, entries, rows) => {
  console.log(`\n| ${title} | share of samples | ms per request (profiled) |\n| --- | ---: | ---: |`);
  for (const [name, hits] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
    const [percent, ms] = share(hits).trim().split(/\s+/);
    console.log(`| \`${name.replaceAll("|", "\\|")}\` | ${percent} | ${ms} |`);
  }
};
console.log(`${count} requests (statuses ${JSON.stringify(Object.fromEntries(statuses))}), ${profile.samples.length} samples over ${((profile.endTime - profile.startTime) / 1000).toFixed(0)} ms`);
table("where the code comes from", origins, 12);
table("wasm function, inclusive (its callees, JavaScript ones included)", inclusive, 30);
table("wasm function, self", self, 20);
// An open keep-alive connection or the inspector socket would keep node running.
process.exit(0);
