// The Worker's request and response conversions, imported by the wasm (functions/worker-host/src/glue.rs through
// wasm-bindgen, which copies this file beside its output). Each crosses the wasm boundary once with one string,
// where workers-rs' own conversions make a JavaScript call (and a string conversion) per header and per property.

// The request's method, URL and headers as one string: "METHOD\nURL\nname:value\n...". The Fetch standard's
// Headers refuse CR, LF and NUL in names and values and URLs hold none, so "\n" separates them unambiguously.
export function requestHead(request) {
  let head = request.method + "\n" + request.url;
  for (const [name, value] of request.headers) {
    head += "\n" + name + ":" + value;
  }
  return head;
}

// A response from its status, its headers as "name:value" lines joined by "\n" (empty for none), and its body
// (a view into the wasm memory; empty for none), copied here: the view is only good until the wasm runs again.
export function newResponse(status, head, body) {
  const headers = new Headers();
  if (head.length > 0) {
    for (const line of head.split("\n")) {
      const colon = line.indexOf(":");
      headers.append(line.slice(0, colon), line.slice(colon + 1));
    }
  }
  return new Response(body.length === 0 ? null : body.slice(), { status, headers });
}
