// The Storefront Worker's two catalog reads written as a plain Hono Worker (JavaScript), the baseline that
// scripts/bench-workers.sh measures the release Storefront Worker against. It owns nothing else: no writes, no
// schema, no cache. Every request queries D1; nothing is kept between requests.
//
// It reads the Storefront's own D1 `items` table (shared/src/adapters/d1.rs), in the same layout
// (shared/src/catalog.rs):
// - GET /products/:id runs the adapter's point read verbatim (pk `PRODUCT#<id>`, sk `PRODUCT`, live rows only),
//   parses the stored JSON document and answers the product as the `product` function's `ProductView`: the row's
//   version and stock counter override the document's, timestamps in RFC 3339 as Rust's `time` writes them, and
//   the same `ETag` and `Cache-Control` headers. 400 for an id that cannot be a product id, 404 for an unknown one.
// - GET /products?q=<words> runs the query the Rust search makes on a listing-cache miss: one page (101 rows) of
//   the longest query token's index partition (`TOKEN#<token>`, the adapter's query SQL verbatim), keeps the
//   entries whose tokens hold every query token, and answers the first `limit` (default 20) products in id order
//   as `{ items, next_cursor }`. The Rust search walks further pages when one is not enough and seals its cursor
//   with an HMAC; this one reads a single page (the demo catalog's partitions hold at most 35 entries) and its
//   cursor is the plain last id. It never uses the Storefront's KV listing cache: see the benchmark's header.
// GET /health makes the same point read as the Storefront's `health` function, for the time to the first 200.
// It does only what these reads need: no category or price filters, no If-None-Match.
import { Hono } from "hono";

const STOP_WORDS = new Set(["an", "and", "as", "at", "by", "for", "in", "of", "on", "or", "the", "to", "with"]);
const ID_PATTERN = /^[0-9A-Za-z_-]{1,64}$/;
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
// The Rust search asks the store for pages of 100 and over-fetches one row to know whether more follow.
const STORE_PAGE = 100;

const POINT_READ = `SELECT pk, sk, version, expires_at, data, counter FROM items
                 WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)`;
const PARTITION_QUERY = `SELECT pk, sk, version, expires_at, data, counter FROM items
                 WHERE pk = ?1 AND sk >= ?2 AND substr(sk, 1, length(?2)) = ?2
                   AND (?3 IS NULL OR sk > ?3)
                   AND (expires_at IS NULL OR expires_at > ?4)
                 ORDER BY sk LIMIT ?5`;

const nowSecs = () => Math.floor(Date.now() / 1000);

// RFC 3339 in UTC as the `time` crate writes it: the fraction of a second without trailing zeros, none if zero.
function rfc3339(millis) {
  return new Date(millis).toISOString().replace(/\.(\d*?)0*Z$/, (_, digits) => (digits ? `.${digits}Z` : "Z"));
}

function productView(product, version, counter) {
  return {
    id: product.id,
    sku: product.sku,
    name: product.name,
    description: product.description,
    category: product.category,
    price: { amount: product.price.amount, currency: product.price.currency },
    stock: counter === null || counter === undefined ? product.stock : Math.max(0, counter),
    low_stock_threshold: product.low_stock_threshold ?? 5,
    version,
    created_at: rfc3339(product.created_at),
    updated_at: rfc3339(product.updated_at),
  };
}

// The search tokens of a text, by the rules of shared/src/domain/search.rs: lower case, accents folded, split on
// anything that is not a letter or a digit, stop words and one-character words dropped, words cut to 32
// characters, a trailing `s` dropped from words of four or more characters not ending in `ss`.
function tokens(text) {
  const folded = text.toLowerCase().normalize("NFD").replace(/\p{M}/gu, "");
  const found = [];
  for (const word of folded.split(/[^\p{L}\p{N}]+/u)) {
    let token = [...word].slice(0, 32).join("");
    if ([...token].length < 2 || STOP_WORDS.has(token)) continue;
    if (token.length >= 4 && token.endsWith("s") && !token.endsWith("ss")) token = token.slice(0, -1);
    if (!found.includes(token)) found.push(token);
  }
  return found;
}

function problem(c, status, code, detail) {
  return c.json({ type: "about:blank", title: code, status, code, detail }, status, {
    "content-type": "application/problem+json",
  });
}

const app = new Hono();

// As the Storefront's `health` function: a point read of a key that never exists, proving D1 answers.
app.get("/health", async (c) => {
  try {
    await c.env.DB.prepare(POINT_READ).bind("HEALTH", "PROBE", nowSecs()).first();
  } catch {
    return problem(c, 503, "unavailable", "the store");
  }
  return c.json({ status: "ok", store: "ok" });
});

app.get("/products/:id", async (c) => {
  const id = c.req.param("id");
  if (!ID_PATTERN.test(id)) return problem(c, 400, "invalid_parameter", "id");
  const row = await c.env.DB.prepare(POINT_READ).bind(`PRODUCT#${id}`, "PRODUCT", nowSecs()).first();
  if (row === null) return problem(c, 404, "not_found", "no product has this id");
  const view = productView(JSON.parse(row.data), row.version, row.counter);
  return c.json(view, 200, { etag: `"${row.version}"`, "cache-control": "no-cache" });
});

app.get("/products", async (c) => {
  const words = tokens((c.req.query("q") ?? "").trim());
  if (words.length === 0) return problem(c, 400, "invalid_parameter", "q: this baseline serves word searches only");
  const limit = Number(c.req.query("limit") ?? DEFAULT_LIMIT);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) return problem(c, 400, "invalid_parameter", "limit");
  // The longest query token's partition, as `SearchRequest::source` picks it.
  const source = words.reduce((longest, word) => (word.length > longest.length ? word : longest));
  const { results } = await c.env.DB.prepare(PARTITION_QUERY)
    .bind(`TOKEN#${source}`, "", null, nowSecs(), STORE_PAGE + 1)
    .all();
  const items = [];
  let nextCursor;
  for (const [position, row] of results.slice(0, STORE_PAGE).entries()) {
    const entry = JSON.parse(row.data);
    if (words.every((word) => entry.tokens.includes(word))) {
      items.push(productView(entry.product, entry.product.version, null));
    }
    if (items.length === limit) {
      const complete = position + 1 === Math.min(results.length, STORE_PAGE) && results.length <= STORE_PAGE;
      if (!complete) nextCursor = row.sk;
      break;
    }
  }
  return c.json(nextCursor === undefined ? { items } : { items, next_cursor: nextCursor });
});

app.notFound((c) => problem(c, 404, "not_found", "no such route"));

export default app;
