// The Storefront Worker's product read written as a plain Hono Worker (JavaScript), the baseline that
// scripts/bench-workers.sh measures the release Storefront Worker against. It owns nothing else: no writes, no
// schema, no cache. Every request queries D1; nothing is kept between requests.
//
// It reads the Storefront's own D1 `items` table (shared/src/adapters/d1.rs), in the same layout
// (shared/src/catalog.rs):
// - GET /products/:id runs the adapter's point read verbatim (pk `PRODUCT#<id>`, sk `PRODUCT`, live rows only),
//   parses the stored JSON document and answers the product as the `product` function's `ProductView`: the row's
//   version and stock counter override the document's, timestamps in RFC 3339 as Rust's `time` writes them, and
//   the same `ETag` and `Cache-Control` headers. 400 for an id that cannot be a product id, 404 for an unknown one.
// The search (`GET /products?q=`) has no counterpart here: since the Storefront's search became an in-memory
// index with ranking, typos and facets (shared/src/domain/search.rs), a baseline would have to reimplement all
// of it; the search is benchmarked on its own by scripts/bench-search.sh.
// GET /health makes the same point read as the Storefront's `health` function, for the time to the first 200.
// It does only what this read needs: no If-None-Match.
import { Hono } from "hono";

const ID_PATTERN = /^[0-9A-Za-z_-]{1,64}$/;

const POINT_READ = `SELECT pk, sk, version, expires_at, data, counter FROM items
                 WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)`;

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

app.notFound((c) => problem(c, 404, "not_found", "no such route"));

export default app;
