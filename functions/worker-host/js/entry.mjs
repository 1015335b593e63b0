// The Worker's JavaScript entry module: hands fetch, queue and scheduled events to the Rust exports made by
// `wasm-bindgen --target module`, and re-creates the wasm instance after a fatal error (a trap), as
// worker-build's shim does. It holds no logic of its own; build.sh copies it next to the wasm-bindgen output.
import { WorkerEntrypoint } from "cloudflare:workers";
import * as exports from "./index.js";

const initState = exports.__worker_init_state();

function checkReinitialize() {
  if (initState.criticalError) {
    console.error("Reinitializing the wasm instance after a fatal error");
    exports.__wbg_reset_state();
    initState.criticalError = false;
    initState.instanceId++;
  }
}

function markCritical(error) {
  if (error instanceof WebAssembly.RuntimeError) {
    console.error("Critical", error);
    initState.criticalError = true;
  }
}

addEventListener("error", (event) => markCritical(event.error));

async function call(name, arg, env, ctx) {
  checkReinitialize();
  try {
    return await exports[name](arg, env, ctx);
  } catch (error) {
    markCritical(error);
    throw error;
  }
}

export default class Storefront extends WorkerEntrypoint {
  fetch(request) {
    return call("fetch", request, this.env, this.ctx);
  }
  queue(batch) {
    return call("queue", batch, this.env, this.ctx);
  }
  scheduled(event) {
    return call("scheduled", event, this.env, this.ctx);
  }
}
