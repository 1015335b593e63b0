"""The search benchmark's measurement, run by scripts/bench-search.sh once per host against a catalog seeded with
the generated fixture (10,000 products).

Usage: search.py BASE_URL HOST_LABEL SAMPLES WARMUP [--bust-cache]
With BENCH_EXPECT_INDEXED set, an index holding another number of products fails the run.

Five query shapes, each sent WARMUP times untimed, then SAMPLES times timed, one after the other over one
keep-alive connection (Python's http.client). Every answer is checked before it counts: status 200, a non-empty
page, the same `total` every time. The store items each search read come from the answer's Server-Timing header
(`search;desc="items=..,shards=..,indexed=.."`, written by the products function); an answer without it was served
from the Worker's KV listing cache (`x-cache: hit`) and read no index at all.

With --bust-cache every request carries `max_price=<10^9 + n>`, a price bound no product reaches, so the results
are the same but the Worker's listing cache (keyed by the raw query string) never has the answer: the search runs
on the index every time. Prints markdown table rows to stdout.
"""

import http.client
import json
import math
import os
import re
import sys
import time
import urllib.parse

SHAPES = [
    ("one word", "q=lamp%20"),
    ("prefix", "q=wal"),
    ("typo", "q=walnt%20"),
    ("three words", "q=walnut%20desk%20lamp"),
    ("filter only", "category=lighting&min_price=2000&sort=price_asc"),
]
TIMING = re.compile(r'search;desc="items=(\d+),shards=(\d+),indexed=(\d+)"')


def fail(message):
    sys.exit(f"bench-search: {message}")


def percentile(values, fraction):
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def main():
    base, label, samples, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    bust = "--bust-cache" in sys.argv[5:]
    expected = os.environ.get("BENCH_EXPECT_INDEXED")
    expected_indexed = int(expected) if expected else None
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    sent = 0

    def get(path):
        nonlocal connection
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                return response, body, (time.perf_counter() - started) * 1000
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    for name, query in SHAPES:
        times, reads, total, hits, indexed = [], [], None, 0, None
        for round_number in range(warmup + samples):
            sent += 1
            path = f"/products?{query}" + (f"&max_price={10**9 + sent}" if bust else "")
            response, body, elapsed_ms = get(path)
            if response.status != 200:
                fail(f"{label}: {response.status} to GET {path}: {body[:300]!r}")
            answer = json.loads(body)
            if not answer.get("items"):
                fail(f"{label}: GET {path} found nothing")
            if total is None:
                total = answer["total"]
            elif answer["total"] != total:
                fail(f"{label}: GET {path} counted {answer['total']} matches, earlier {total}")
            if round_number < warmup:
                continue
            times.append(elapsed_ms)
            timing = TIMING.search(response.getheader("server-timing") or "")
            if timing:
                reads.append(int(timing.group(1)))
                indexed = int(timing.group(3))
                if expected_indexed is not None and indexed != expected_indexed:
                    fail(f"{label}: the index holds {indexed} products, not the {expected_indexed} seeded")
            elif response.getheader("x-cache") == "hit":
                hits += 1
            else:
                fail(f"{label}: GET {path} has neither a Server-Timing search entry nor x-cache: hit")
        read_text = f"{percentile(reads, 0.5)} (max {max(reads)})" if reads else "(all from the KV cache)"
        cache_text = f"{hits} of {samples}" if not bust else "0 (busted)"
        print(f"| {label} | {name} | `{query}` | {percentile(times, 0.5):.2f} | {percentile(times, 0.99):.2f} | "
              f"{total} | {read_text} | {cache_text} | {indexed if indexed is not None else '-'} |")


if __name__ == "__main__":
    main()
