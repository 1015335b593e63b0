#!/usr/bin/env bash
# The Workers benchmark (a command, not a test): the release Storefront Worker (Rust, wasm) against a Hono Worker
# (JavaScript, scripts/bench/hono/) doing the same D1 reads, side by side in one run, both under `wrangler dev` on
# 127.0.0.1 with the wrangler and workerd of scripts/workers-tools.sh.
#
# What it measures, for each Worker:
# - p50 and p99 of `GET /products/{id}` (the catalog's ids in turn), with the ratio Storefront/Hono; requests alternate between the two Workers request by request (which goes first swaps
#   every round), each Worker over one keep-alive connection (Python's http.client), after $BENCH_WARMUP rounds
#   of warm-up, $BENCH_SAMPLES samples per cell. Every response is checked before it counts: status 200 and the
#   very product asked for (the whole body, which must equal the other Worker's).
# - p50 and p99 of `GET /bench/not-a-route`, a 404 problem document on both with no storage: the fixed cost of one
#   request through each runtime and its framework, so that the rows above can be read as that plus the storage work.
# - the time from starting `wrangler dev` to the first 200 of `GET /health` (one D1 point read on both), polled
#   every 50 ms. The Workers start one after the other, so neither start competes with the other for the CPUs.
# - the size of the release wasm (target/worker-host/release/index_bg.wasm), raw and gzipped (-9).
#
# The same data: both Workers bind the Storefront's production D1 database (binding DB, the same database_id) and
# run with the same `--persist-to` folder, so wrangler dev opens one SQLite file for both, each in its own
# workerd. Checked each run: the Hono Worker is started before the catalog exists, the Storefront Worker then
# seeds its demo catalog through its housekeeping cron trigger (`/__scheduled`, DEMO_SEED=true given with
# `--var`, as scripts/test-workers.sh seeds it), and every product's body from the Hono Worker must equal the
# Storefront Worker's. That works because workerd keeps D1 in an ordinary SQLite file in WAL mode with its
# shared-memory file, which two processes can open at once; copying the seeded file to a second persist folder was
# not needed, and was not tried.
#
# Caches, said plainly: `GET /products/{id}` reads D1 on every request in both Workers. The search has no row
# here: the Storefront's search ranks, forgives typos and counts facets on an in-memory index, which a baseline
# would have to reimplement whole; scripts/bench-search.sh measures it on every host.
#
# The Storefront Worker runs from a copy of wrangler.toml without its [build] section, so that wrangler does not
# run build.sh (and cargo) at start and the time to the first 200 covers wrangler and workerd only, as for Hono;
# this script runs build.sh itself first, unless BENCH_SKIP_BUILD=1 (then the release Worker must already be in
# target/worker-host/release). `hono` ($HONO_VERSION in scripts/lib.sh) is installed once from npm into
# ${STOREFRONT_TOOLS:-~/.cache/storefront}/bench/hono, never into the repository. Wrangler's fetch of
# `Request.cf` from the internet is switched off (CLOUDFLARE_CF_FETCH_ENABLED=false), and so are its metrics
# (WRANGLER_SEND_METRICS=false); every request of the benchmark goes to 127.0.0.1.
#
# Writes a markdown section to stdout and to ${1:-target/bench-workers.md} (git ignores target/).
# BENCH_SAMPLES (default 500) and BENCH_WARMUP (default 50) tune the run. BENCH_STREAK (default 1) sends that many
# requests in a row to one Worker before the other's turn: what a Worker does after its response (the Storefront
# writes its request line then; under `wrangler dev` each console call is a line workerd writes to wrangler, which
# parses it and appends it to its own log file) lands on whichever request comes next, which with a streak of 1 is
# often the other Worker's; with a longer streak each Worker bears its own.
#
# wrangler's DevTools inspector is detached from both Workers (BENCH_INSPECTOR=0, the default), as in production,
# where nothing inspects a Worker. Attached (`wrangler dev`'s default, BENCH_INSPECTOR=1), it makes every console
# call of a Worker a DevTools protocol message to wrangler too, on top of the log line workerd writes to wrangler
# anyway: one such call per request (the Storefront's request line) took its `GET /products/{id}` p50 from
# 1.12-1.19x to 1.37-1.44x Hono's (who logs nothing) with BENCH_STREAK=25. The switch is the one wrangler and Miniflare read
# to leave the inspector to VS Code's JavaScript debugger (`wrangler_inspector` in scripts/lib.sh); after each start
# the script checks that the inspector port is closed (or, with BENCH_INSPECTOR=1, open), so a wrangler that stopped
# honouring it fails the run instead of measuring the other way.
#
# wrangler's local observability is off for both Workers too (BENCH_LOCAL_OBSERVABILITY=0, the default), as in
# production, where Workers Logs and traces are collected outside the Worker's process. Since wrangler 4.16x,
# `wrangler dev` attaches a trace collector to every Worker by default and stores each invocation's trace and log
# lines in a SQLite file of its own (state/v3/observability/miniflare-wobs-trace-store, one file for both Workers
# here): per request, about 16 page writes and 2 fsyncs in the Worker's own workerd process. That is about 1.2-1.4 ms
# added to every request of either Worker, the same for both, which pulls their ratio towards 1: with it on, the
# product read measured 1.08-1.15x Hono's; with it off, 1.27-1.34x, in the same hour (PERFORMANCE.md). The switch is
# wrangler's X_LOCAL_OBSERVABILITY; after the run the script checks that the trace store was (with
# BENCH_LOCAL_OBSERVABILITY=1) or was not written, so a wrangler that stops honouring it fails the run.
#
# wrangler's own debug log, a file to which it appends every line it prints or receives from a Worker, is off too
# (BENCH_WRANGLER_LOG_FILE=0, the default; WRANGLER_WRITE_LOGS=false; 1 keeps wrangler's default): it is wrangler's,
# not the runtime's, and in production nothing writes it. The Storefront's request line cost wrangler's Node process
# about a millisecond of CPU with it (about half without), on the 2 CPUs both Workers share: the product read
# measured 1.27x Hono without it against 1.32-1.34x with it, in the same hour. After the run the script checks that
# the log folder was (or was not) written.
#
# After the latency rounds, each Worker in turn gets BENCH_CPU_SAMPLES (default 1000) product reads and as many 404s in a
# row, alone, and the report gives the CPU time each request cost its `workerd` process (the Worker, Miniflare's entry
# and proxy workers and D1, in one process) and the rest of its `wrangler dev` process group (wrangler's Node, which
# receives and parses every console line), from the kernel's per-thread run times (/proc/PID/task/*/schedstat)
# before and after. That is each Worker's own cost, which the other Worker's load does not blur: runs of one build
# differ by a few percent, where the latency ratio moves by ±0.03x. Requests in a row also put what a Worker does
# after its response (the Storefront's request line) inside the next request's time, so those latencies are not
# the budget's; the alternating rounds are.
#
# BENCH_RUST_FLOOR=1 (a diagnostic) measures, in the Storefront's place, the Rust floor: the Hono baseline's product
# read as the smallest workers-rs Worker, with no Storefront code, built as the Storefront Worker is
# (scripts/bench/rust-floor/). The Storefront Worker still runs, to seed the catalog and to give the bodies every
# answer is checked against. Its ratio to Hono is what workers-rs and wasm-bindgen alone cost a request here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

out="${1:-target/bench-workers.md}"
mkdir -p "$(dirname "$out")"
samples="${BENCH_SAMPLES:-500}"
cpu_samples="${BENCH_CPU_SAMPLES:-1000}"
warmup="${BENCH_WARMUP:-50}"
streak="${BENCH_STREAK:-1}"
inspector="${BENCH_INSPECTOR:-0}"
observability="${BENCH_LOCAL_OBSERVABILITY:-0}"
floor="${BENCH_RUST_FLOOR:-0}"
log_file="${BENCH_WRANGLER_LOG_FILE:-0}"
release="$PWD/target/worker-host/release"
[[ "$samples" =~ ^[1-9][0-9]*$ && "$warmup" =~ ^[0-9]+$ && "$streak" =~ ^[1-9][0-9]*$ && "$cpu_samples" =~ ^[1-9][0-9]*$ ]] \
  || die "BENCH_SAMPLES, BENCH_WARMUP, BENCH_STREAK and BENCH_CPU_SAMPLES must be whole numbers"
[[ "$inspector" == 0 || "$inspector" == 1 ]] || die "BENCH_INSPECTOR must be 0 (detached, the default) or 1 (attached)"
[[ "$observability" == 0 || "$observability" == 1 ]] || die "BENCH_LOCAL_OBSERVABILITY must be 0 (off, the default) or 1 (wrangler's default, on)"
[[ "$log_file" == 0 || "$log_file" == 1 ]] || die "BENCH_WRANGLER_LOG_FILE must be 0 (off, the default) or 1 (wrangler's default, on)"
[[ "$floor" == 0 || "$floor" == 1 ]] || die "BENCH_RUST_FLOOR must be 0 (the Storefront, the default) or 1 (the Rust floor in its place)"
(( samples % streak == 0 )) || die "BENCH_SAMPLES ($samples) must be a multiple of BENCH_STREAK ($streak)"

for tool in python3 curl gzip awk setsid; do
  command -v "$tool" >/dev/null || die "$tool not found: the benchmark needs it"
done

run=$(mktemp -d -t storefront-bench-workers.XXXXXX)
groups=()
# Every process started here is a process group of its own (setsid): wrangler, its workerd and helpers go together.
cleanup() {
  local group
  for group in "${groups[@]}"; do
    kill -TERM -- "-$group" 2>/dev/null || true
  done
  for group in "${groups[@]}"; do
    for _ in $(seq 50); do kill -0 -- "-$group" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$group" 2>/dev/null || true
  done
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/workers-tools.sh
# shellcheck source=/dev/null
source "$STOREFRONT_TOOLS/workers-env.sh"
export XDG_CONFIG_HOME="$run/xdg" WRANGLER_SEND_METRICS=false WRANGLER_LOG_PATH="$run/wrangler-logs" \
  CLOUDFLARE_CF_FETCH_ENABLED=false NO_COLOR=1 FORCE_COLOR=0
if [[ "$observability" == 0 ]]; then export X_LOCAL_OBSERVABILITY=false; else export X_LOCAL_OBSERVABILITY=true; fi
if [[ "$log_file" == 0 ]]; then export WRANGLER_WRITE_LOGS=false; else export WRANGLER_WRITE_LOGS=true; fi
mkdir -p "$XDG_CONFIG_HOME" "$WRANGLER_LOG_PATH"
wrangler_inspector "$inspector"

hono_modules=$(hono_node_modules)

if [[ "${BENCH_SKIP_BUILD:-0}" == "1" ]]; then
  say "BENCH_SKIP_BUILD=1: using the release Worker already built in $release"
else
  say "building the release Worker"
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" bash functions/worker-host/build.sh
fi
[[ -f "$release/entry.mjs" && -f "$release/index_bg.wasm" ]] || die "no release Worker in $release (run functions/worker-host/build.sh)"

# The Storefront's own configuration, less [build], with its paths made absolute for a file in the run folder.
mkdir -p "$run/storefront"
wrangler_config_without_build "$run/storefront/wrangler.toml"
grep -q "^main = \"$release/entry.mjs\"$" "$run/storefront/wrangler.toml" || die "wrangler.toml's main is not target/worker-host/release/entry.mjs"
# The docs Worker it reaches on its DOCS binding, run beside it by the same `wrangler dev` as when deployed (no API
# request reaches it; it is here so that the Storefront runs as configured).
mkdir -p "$run/docs"
wrangler_config_without_build "$run/docs/wrangler.toml" functions/docs/wrangler.toml
if [[ "$floor" == 1 ]]; then
  say "building the Rust floor Worker (scripts/bench/rust-floor)"
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" bash scripts/bench/rust-floor/build.sh
  mkdir -p "$run/floor"
  # The Hono baseline's configuration (same compatibility date, same D1 binding and database), with the floor as main.
  sed -e 's/^name = .*/name = "storefront-bench-rust-floor"/' -e "s#^main = .*#main = \"$PWD/target/worker-host/rust-floor/entry.mjs\"#" \
    scripts/bench/hono/wrangler.toml >"$run/floor/wrangler.toml"
  grep -q "^main = \"$PWD/target/worker-host/rust-floor/entry.mjs\"$" "$run/floor/wrangler.toml" || die "could not point the floor's wrangler.toml at its build"
fi
# The Hono Worker runs from a copy beside a link to the cached node_modules, so that wrangler's bundler finds hono
# and writes its .wrangler folder into the run folder, not into scripts/bench/hono.
mkdir -p "$run/hono"
cp scripts/bench/hono/index.js scripts/bench/hono/wrangler.toml "$run/hono/"
ln -s "$hono_modules" "$run/hono/node_modules"

housekeeping_cron=$(housekeeping_cron)
printf 'STOREFRONT_SECRET=%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$run/dev.vars"
chmod 600 "$run/dev.vars"
state="$run/state"

show_logs() {
  local name
  for name in storefront hono; do
    [[ -f "$run/$name.log" ]] && { printf -- '--- %s wrangler log (last lines) ---\n' "$name" >&2; tail -30 "$run/$name.log" >&2; }
  done
  return 0
}

# start_worker NAME PORT ARGS...: starts `wrangler dev` in its own process group and sets first_200_ms to the
# milliseconds from its start to the first 200 of GET /health. Not run in a subshell, so that `groups` keeps the pid.
first_200_ms=""
start_worker() {
  local name=$1 port=$2 started_ns status inspector_port
  shift 2
  inspector_port=$(free_port "$port")
  started_ns=$(date +%s%N)
  (cd "$run/$name" && exec setsid "$WRANGLER_BIN" dev --config "$run/$name/wrangler.toml" --ip 127.0.0.1 --port "$port" \
    --inspector-ip 127.0.0.1 --inspector-port "$inspector_port" --persist-to "$state" --test-scheduled \
    --show-interactive-dev-session=false --log-level warn "$@") >"$run/$name.log" 2>&1 &
  groups+=($!)
  for _ in $(seq 2400); do
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/health" || true)
    if [[ "$status" == "200" ]]; then
      first_200_ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
      check_wrangler_inspector "$name" "$inspector_port"
      return 0
    fi
    kill -0 "${groups[-1]}" 2>/dev/null || { show_logs; die "wrangler dev for the $name Worker exited"; }
    sleep 0.05
  done
  show_logs
  die "no 200 from the $name Worker's GET /health within 120 s"
}

storefront_port=$(free_port)
say "starting the Storefront Worker (release) on 127.0.0.1:$storefront_port"
start_worker storefront "$storefront_port" --config "$run/docs/wrangler.toml" --env-file "$run/dev.vars" --var DEMO_SEED:true
storefront_first_ms=$first_200_ms
hono_port=$(free_port "$storefront_port")
say "starting the Hono Worker on 127.0.0.1:$hono_port (same persist folder, same D1 database_id)"
start_worker hono "$hono_port"
hono_first_ms=$first_200_ms
measured_port=$storefront_port
measured_group=${groups[0]} hono_group=${groups[1]}
if [[ "$floor" == 1 ]]; then
  floor_port=$(free_port "$hono_port")
  say "starting the Rust floor Worker on 127.0.0.1:$floor_port (same persist folder, same D1 database_id)"
  start_worker floor "$floor_port"
  storefront_first_ms=$first_200_ms
  measured_port=$floor_port
  measured_group=${groups[-1]}
fi
ours_label=$([[ "$floor" == 1 ]] && echo "Rust floor" || echo "Storefront")

say "seeding the demo catalog through the Storefront Worker's housekeeping cron trigger"
curl -sS --fail --max-time 300 -o /dev/null "http://127.0.0.1:$storefront_port/__scheduled?cron=${housekeeping_cron// /+}" \
  || { show_logs; die "the Storefront Worker's scheduled event failed"; }

say "measuring: $warmup warm-up rounds, then $samples samples per cell, alternating Storefront and Hono"
# Anything else busy on the machine shows in the figures; the load average before and after is reported with them.
load_before=$(cut -d' ' -f1 /proc/loadavg)
python3 - "$storefront_port" "$hono_port" "$samples" "$warmup" "$streak" "$measured_port" "$ours_label" \
  "$measured_group" "$hono_group" "$cpu_samples" >"$run/table.md" <<'EOF' || { show_logs; die "the measurement failed"; }
import glob, http.client, json, math, sys, time, urllib.parse

storefront_port, hono_port, samples, warmup, streak, measured_port = (int(argument) for argument in sys.argv[1:7])
# The Worker measured against Hono: the Storefront, or the Rust floor in its place (BENCH_RUST_FLOOR=1).
ours_label = sys.argv[7]
# The process groups of the two `wrangler dev` runs (each started with setsid), and the CPU phase's length.
measured_group, hono_group, cpu_samples = (int(argument) for argument in sys.argv[8:11])


def fail(message):
    sys.exit(f"bench-workers: {message}")


class Client:
    """One keep-alive connection to a Worker; it is opened again only if the Worker closes it (counted)."""

    def __init__(self, name, port):
        self.name, self.port, self.connection, self.opened = name, port, None, 0

    def get(self, path):
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.connection.connect()
                self.opened += 1
            try:
                started = time.perf_counter()
                self.connection.request("GET", path)
                response = self.connection.getresponse()
                body = response.read()
                elapsed_ms = (time.perf_counter() - started) * 1000
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A connection the Worker closed while idle: reopened outside the timing, the request sent again.
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.connection.close()
                self.connection = None
            return response.status, response.headers, body, elapsed_ms


storefront, hono = Client("storefront", storefront_port), Client("hono", hono_port)


def json_200(client, path):
    status, headers, body, _ = client.get(path)
    if status != 200:
        fail(f"{client.name} answered {status} to GET {path}: {body[:300]!r}")
    return json.loads(body), headers


# Every product id, from the Storefront Worker's listing (setup, not timed).
ids, cursor = [], None
while True:
    page, _ = json_200(storefront, "/products?limit=100" + (f"&cursor={urllib.parse.quote(cursor, safe='')}" if cursor else ""))
    ids += [item["id"] for item in page["items"]]
    cursor = page.get("next_cursor")
    if not cursor:
        break
if not ids:
    fail("the catalog is empty after seeding")

# The same data: every product the Hono Worker reads must equal, whole, the Storefront Worker's.
expected = {}
for product_id in ids:
    ours, _ = json_200(storefront, f"/products/{product_id}")
    theirs, _ = json_200(hono, f"/products/{product_id}")
    if ours.get("id") != product_id or ours != theirs:
        fail(f"the Workers disagree on product {product_id}:\n  storefront {ours}\n  hono       {theirs}")
    expected[product_id] = ours
# The Worker measured in the Storefront's place, if another, answers each product as the Storefront does (checked
# above the timing with the Storefront's own answers), and is measured over a connection of its own.
if measured_port != storefront_port:
    storefront = Client("storefront", measured_port)
    for product_id in ids:
        floor_view, _ = json_200(storefront, f"/products/{product_id}")
        if floor_view != expected[product_id]:
            fail(f"the {ours_label} Worker disagrees with the Storefront on product {product_id}:\n  {floor_view}\n  {expected[product_id]}")

def check_product(client, product_id):
    def check(status, headers, body):
        if status != 200:
            fail(f"{client.name} answered {status} to GET /products/{product_id}: {body[:300]!r}")
        if json.loads(body) != expected[product_id]:
            fail(f"{client.name} answered another body to GET /products/{product_id}: {body[:300]!r}")
    return check


def check_not_found(client, path):
    def check(status, headers, body):
        if status != 404 or json.loads(body).get("code") != "not_found":
            fail(f"{client.name} answered {status} to GET {path}, not a not_found problem document: {body[:300]!r}")
    return check


rows = ["product", "unrouted"]
times = {(row, client.name): [] for row in rows for client in (storefront, hono)}


def request_of(client, row, index):
    """The path of `row`'s request number `index` (product ids in turn) and the check of its answer."""
    if row == "product":
        product_id = ids[index % len(ids)]
        return f"/products/{product_id}", check_product(client, product_id)
    return "/bench/not-a-route", check_not_found(client, "/bench/not-a-route")


def round_trip(index, record):
    """One round: each row's requests to both Workers, `streak` in a row to each; who goes first swaps every round."""
    order = (storefront, hono) if index % 2 == 0 else (hono, storefront)
    for row in rows:
        for client in order:
            for turn in range(streak):
                path, check = request_of(client, row, index * streak + turn)
                status, headers, body, elapsed_ms = client.get(path)
                check(status, headers, body)
                if record:
                    times[(row, client.name)].append(elapsed_ms)


for index in range(warmup):
    round_trip(index, record=False)
for index in range(samples // streak):
    round_trip(warmup + index, record=True)


def percentile(values, fraction):
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


labels = {
    "product": f"GET /products/{{id}} ({len(ids)} ids in turn; D1 point read on both)",
    "unrouted": "GET /bench/not-a-route (a 404 problem document; no storage on either): the fixed cost of a request",
}
print(f"| request | {ours_label} p50 ms | {ours_label} p99 ms | Hono p50 ms | Hono p99 ms | {ours_label}/Hono p50 | {ours_label}/Hono p99 |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for row in rows:
    ours, theirs = times[(row, "storefront")], times[(row, "hono")]
    p50s, p99s = (percentile(ours, 0.50), percentile(theirs, 0.50)), (percentile(ours, 0.99), percentile(theirs, 0.99))
    print(f"| {labels[row]} | {p50s[0]:.2f} | {p99s[0]:.2f} | {p50s[1]:.2f} | {p99s[1]:.2f} | {p50s[0] / p50s[1]:.2f} | {p99s[0] / p99s[1]:.2f} |")
print()
checked = sum(len(values) for values in times.values())
print(f"All {checked} timed responses (and {warmup * streak * len(rows) * 2} warm-up ones) were the status and body asked for; "
      f"connections opened: {ours_label} {storefront.opened}, Hono {hono.opened}.")


def group_processes(group):
    """pid -> command name of every process in the process group `group`."""
    found = {}
    for stat_file in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat_file) as handle:
                stat = handle.read()
        except OSError:
            continue  # gone since the listing
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[2]) == group:
            found[int(stat_file.split("/")[2])] = name
    return found


def cpu_ns(pids):
    """The time on a CPU, in nanoseconds, of every thread of `pids` (the first field of each thread's schedstat)."""
    total = 0
    for pid in pids:
        for schedstat in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            try:
                with open(schedstat) as handle:
                    total += int(handle.read().split()[0])
            except OSError:
                pass  # a thread that ended since the listing
    return total


def cpu_per_request(client, group, row):
    """`cpu_samples` requests of `row` in a row to one Worker: microseconds of CPU per request of its `workerd`
    processes and of the rest of its process group."""
    processes = group_processes(group)
    workerd = [pid for pid, name in processes.items() if name == "workerd"]
    rest = [pid for pid, name in processes.items() if name != "workerd"]
    if not workerd:
        fail(f"no workerd process in the process group of the {client.name} Worker's wrangler dev ({group}): {processes}")
    before = (cpu_ns(workerd), cpu_ns(rest))
    for index in range(cpu_samples):
        path, check = request_of(client, row, index)
        status, headers, body, _ = client.get(path)
        check(status, headers, body)
    after = (cpu_ns(workerd), cpu_ns(rest))
    return tuple((end - start) / cpu_samples / 1000 for start, end in zip(before, after))


cpu = {(row, client.name): cpu_per_request(client, group, row)
       for client, group in ((storefront, measured_group), (hono, hono_group)) for row in rows}
print()
print(f"CPU time per request, {cpu_samples} requests in a row to one Worker at a time after the rounds above (every answer checked), "
      "from the kernel's run time of every thread (/proc/PID/task/*/schedstat): of the Worker's `workerd` process (the Worker, "
      "Miniflare's entry and proxy workers and D1, in one process) and of the rest of its `wrangler dev` process group "
      "(wrangler's Node, which receives and parses every console line, and whatever else it does meanwhile: now and then "
      "about 0.2 ms a request even for a Worker that writes no line).")
print()
print(f"| request | {ours_label} workerd µs | Hono workerd µs | {ours_label}/Hono workerd | {ours_label} rest of wrangler dev µs | Hono rest of wrangler dev µs |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for row in rows:
    ours, theirs = cpu[(row, "storefront")], cpu[(row, "hono")]
    print(f"| {labels[row].split(' (')[0]} | {ours[0]:.0f} | {theirs[0]:.0f} | {ours[0] / theirs[0]:.2f} | {ours[1]:.0f} | {theirs[1]:.0f} |")
EOF

load_after=$(cut -d' ' -f1 /proc/loadavg)
# The local trace store is where wrangler keeps what its local observability collects: written only while it is on.
trace_store=$(find "$state" -path '*observability*' -name '*.sqlite' 2>/dev/null | head -n1)
if [[ "$observability" == 0 && -n "$trace_store" ]]; then
  die "wrangler wrote its local trace store ($trace_store) although X_LOCAL_OBSERVABILITY=false: it no longer honours the switch"
elif [[ "$observability" == 1 && -z "$trace_store" ]]; then
  die "wrangler's local observability was asked for (BENCH_LOCAL_OBSERVABILITY=1) but wrote no trace store under $state"
fi
# wrangler's debug log: a file in WRANGLER_LOG_PATH only while it is on.
if [[ "$log_file" == 0 && -n "$(ls -A "$WRANGLER_LOG_PATH")" ]]; then
  die "wrangler wrote its debug log into $WRANGLER_LOG_PATH although WRANGLER_WRITE_LOGS=false: it no longer honours the switch"
elif [[ "$log_file" == 1 && -z "$(ls -A "$WRANGLER_LOG_PATH")" ]]; then
  die "wrangler's debug log was asked for (BENCH_WRANGLER_LOG_FILE=1) but nothing was written into $WRANGLER_LOG_PATH"
fi
wasm="$release/index_bg.wasm"
[[ "$floor" == 0 ]] || wasm="$PWD/target/worker-host/rust-floor/index_bg.wasm"
wasm_raw=$(stat -c %s "$wasm")
wasm_gz=$(gzip -9 -c "$wasm" | wc -c)
node_version=$(node --version)
workerd_version=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$STOREFRONT_TOOLS/npm/node_modules/workerd/package.json" | head -n1)
wrangler_version=$("$WRANGLER_BIN" --version 2>/dev/null | tail -n1)
{
  if [[ "$floor" == 1 ]]; then
    echo "## Workers: the Rust floor (workers-rs, no Storefront code) against a Hono Worker (JavaScript) on one D1 database"
  else
    echo "## Workers: the release Storefront Worker (Rust) against a Hono Worker (JavaScript) on one D1 database"
  fi
  echo
  echo "wrangler $wrangler_version (workerd $workerd_version) on Node $node_version, hono $HONO_VERSION; both Workers under \`wrangler dev\` on 127.0.0.1 with one \`--persist-to\` folder (one D1 SQLite file); $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')."
  if [[ "$inspector" == 0 ]]; then
    echo "wrangler's DevTools inspector detached from both Workers, as nothing inspects a Worker in production (BENCH_INSPECTOR=0; each Worker's console output still goes to wrangler, as workerd's structured log lines)."
  else
    echo "wrangler's DevTools inspector attached to both Workers (BENCH_INSPECTOR=1): every console call is a DevTools protocol message to wrangler too."
  fi
  if [[ "$observability" == 0 ]]; then
    echo "wrangler's local observability off for both Workers, as Workers Logs and traces are collected outside the Worker in production (BENCH_LOCAL_OBSERVABILITY=0, X_LOCAL_OBSERVABILITY=false; checked: no local trace store was written)."
  else
    echo "wrangler's local observability on (BENCH_LOCAL_OBSERVABILITY=1, its default): every request of either Worker stores its trace and log lines in a local SQLite file, in the Worker's own process."
  fi
  if [[ "$log_file" == 0 ]]; then
    echo "wrangler's own debug log file off (BENCH_WRANGLER_LOG_FILE=0, WRANGLER_WRITE_LOGS=false; checked: none was written): wrangler still receives and parses every console line of both Workers."
  else
    echo "wrangler's own debug log file on (BENCH_WRANGLER_LOG_FILE=1, its default): wrangler appends every console line it receives from a Worker to a file."
  fi
  [[ "$floor" == 0 ]] || echo "**Diagnostic run: the Rust floor (scripts/bench/rust-floor, workers-rs with no Storefront code) measured in the Storefront's place (BENCH_RUST_FLOOR=1); the Storefront Worker seeded the catalog and gave the bodies checked.**"
  echo "Requests alternate between the Workers $streak at a time (BENCH_STREAK) over one keep-alive connection each, after $warmup warm-up rounds; $samples samples per cell."
  echo "One-minute load average before the measurement $load_before, after it $load_after."
  echo
  cat "$run/table.md"
  echo
  echo "| wrangler dev start to the first 200 (GET /health, one D1 point read) | $ours_label | Hono |"
  echo "| --- | ---: | ---: |"
  echo "| started one after the other, polled every 50 ms | $storefront_first_ms ms | $hono_first_ms ms |"
  echo
  echo "Release wasm (${wasm#"$PWD/"}): $wasm_raw bytes raw, $wasm_gz bytes gzipped (-9)."
} >"$run/report.md"
tee "$out" <"$run/report.md"
echo "written to $out" >&2
