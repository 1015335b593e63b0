#!/usr/bin/env python3
"""Joins the benchmark sections into one markdown report and adds what each request costs.

Usage: report.py LAMBDA_MD WORKERS_MD LOCAL_MD MEMORY_MB [SEARCH_MD] > REPORT_MD

The sections are the files scripts/bench-lambda.sh, scripts/bench-workers.sh, scripts/bench-local.sh and (when given)
scripts/bench-search.sh wrote in the same run; they are copied as they are. The cost table reads its durations from them: nothing here is typed in
by hand except the published prices below. MEMORY_MB is the functions' MemorySize in template.yaml.
"""

import datetime
import math
import os
import subprocess
import sys

# Published prices, as read on the date below from the providers' pricing pages.
PRICES_READ = "2026-12-03"
# AWS Lambda, arm64, US East (N. Virginia), https://aws.amazon.com/lambda/pricing/ : per request and per GB-second
# (the first 7.5 billion GB-seconds of a month). Lambda bills the duration rounded up to the millisecond, and bills
# a cold start's init phase as duration too.
LAMBDA_PER_MILLION_REQUESTS = 0.20
LAMBDA_ARM64_PER_GB_SECOND = 0.0000133334
# Amazon API Gateway HTTP APIs, US East (N. Virginia), https://aws.amazon.com/api-gateway/pricing/ : per million
# requests (the first 300 million of a month). Every HTTP function is behind it; the queue and schedule functions are not.
HTTP_API_PER_MILLION_REQUESTS = 1.00
# Cloudflare Workers, Standard usage model on the Workers Paid plan, https://developers.cloudflare.com/workers/platform/pricing/ :
# per million requests and per million CPU milliseconds beyond the plan's monthly inclusion (10 million requests,
# 30 million CPU milliseconds, for $5 a month); D1, https://developers.cloudflare.com/d1/platform/pricing/ , per
# million rows read beyond 25 billion a month.
WORKERS_PER_MILLION_REQUESTS = 0.30
WORKERS_PER_MILLION_CPU_MS = 0.02
D1_PER_MILLION_ROWS_READ = 0.001

# The functions that are not behind the HTTP API.
NOT_HTTP = {"hello-world", "jobs", "order-events", "privacy", "sales-report", "checkout-sweep", "outbox-relay"}
# The reference binaries of scripts/bench-lambda.sh, measured beside the functions but not priced.
BASELINES = {"hello-world", "hello-dynamodb"}


def tables(path):
    """Every markdown table of a file, as lists of rows of cells (header first, separator dropped)."""
    found, current = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line.startswith("|"):
                cells = [cell.strip() for cell in line.strip("|").split("|")]
                if not all(set(cell) <= set("-: ") for cell in cells):
                    current.append(cells)
            elif current:
                found.append(current)
                current = []
    if current:
        found.append(current)
    return found


def column(header, starts):
    for index, name in enumerate(header):
        if name.startswith(starts):
            return index
    raise SystemExit(f"report.py: no column starting with {starts!r} in {header}")


def number(text):
    return float(text.rstrip("x").replace(",", ""))


def lambda_cost(duration_ms, memory_mb):
    """Dollars per million invocations of this duration: requests plus duration billed by the millisecond."""
    billed_ms = max(1, math.ceil(duration_ms))
    return billed_ms, LAMBDA_PER_MILLION_REQUESTS + 1_000_000 * memory_mb / 1024 * billed_ms / 1000 * LAMBDA_ARM64_PER_GB_SECOND


def lambda_rows(path, memory_mb):
    rows = []
    priced = set()
    for table in tables(path):
        header = table[0]
        if header[0] != "function":
            continue
        warm, total = column(header, "warm invocation ms"), column(header, "cold total ms")
        for row in table[1:]:
            name = row[0]
            # The baselines cost nothing of ours; a function measured in two tables is priced from the first.
            if name in BASELINES or name in priced:
                continue
            priced.add(name)
            billed, per_million = lambda_cost(number(row[warm]), memory_mb)
            cold_billed, cold_cost = lambda_cost(number(row[total]), memory_mb)
            http = name.split(" ")[0] not in NOT_HTTP
            with_api = f"{per_million + HTTP_API_PER_MILLION_REQUESTS:.4f}" if http else "(no HTTP API)"
            rows.append(f"| Lambda `{name}` | {number(row[warm]):.3f} | {billed} | {per_million:.4f} | {with_api} | "
                        f"{cold_billed} | {cold_cost - LAMBDA_PER_MILLION_REQUESTS:.4f} |")
    return rows


def short(label):
    """A row label up to its first explanation."""
    return label.split(" (")[0].split(":")[0].strip()


def worker_tables(path):
    """The Workers section's comparison rows: (label, Storefront p50, Hono p50)."""
    rows = []
    for table in tables(path):
        header = table[0]
        if "Storefront p50 ms" not in header or "Hono p50 ms" not in header:
            continue
        ours, theirs = header.index("Storefront p50 ms"), header.index("Hono p50 ms")
        rows += [(row[0], number(row[ours]), number(row[theirs])) for row in table[1:]]
    if not rows:
        raise SystemExit(f"report.py: {path} holds no Storefront/Hono table")
    return rows


def worker_rows(path):
    """Each Worker's p50 of each request, priced with the p50 as an upper bound of its CPU time."""
    rows = []
    for label, ours, theirs in worker_tables(path):
        for name, duration in (("Storefront", ours), ("Hono", theirs)):
            per_million = WORKERS_PER_MILLION_REQUESTS + duration * WORKERS_PER_MILLION_CPU_MS + D1_PER_MILLION_ROWS_READ
            rows.append(f"| Workers {name}: {short(label)} | {duration:.2f} (p50 wall) | at most {duration:.2f} CPU ms | "
                        f"{per_million:.4f} | (none needed) | (none) | (none) |")
    return rows


def budgets(lambda_md, workers_md):
    """The budgets of issue 12, judged on this run's figures."""
    lines = []
    first = next(table for table in tables(lambda_md) if table[0][0] == "function")
    header = first[0]
    ratio = column(header, "cold total vs")
    over = [f"{row[0]} {row[ratio]}" for row in first[1:] if row[0] != "hello-world" and number(row[ratio]) > 1.3]
    lines.append(f"- Every Lambda function's cold total at most 1.3x the hello-world's: "
                 f"{'met' if not over else 'NOT met, over: ' + ', '.join(over)}.")
    read = next(table for table in tables(lambda_md) if table[0][0] == "function" and any(row[-1] == "(script)" for row in table[1:]))
    python = next(row for row in read[1:] if row[-1] == "(script)")
    python_ratio = number(python[column(read[0], "cold total vs")])
    store = next((table for table in tables(lambda_md) if table[0][0] == "function" and table[1][0] == "hello-dynamodb"), None)
    if store:
        store_ratio = column(store[0], "cold total vs")
        lines.append("- (Beside the budget: the functions that call DynamoDB on every invocation, cold total against "
                     "`hello-dynamodb`, the hello-world plus one SDK `GetItem`: "
                     + ", ".join(f"{row[0]} {row[store_ratio]}" for row in store[1:] if row[0] != "hello-dynamodb") + ".)")
    lines.append(f"- The Python function's cold total at least 20x the Rust product function's: "
                 f"{'met' if python_ratio >= 20 else 'NOT met'} ({python_ratio:.2f}x).")
    # The table's own ratio, computed from the unrounded p50s (the p50 columns are rounded to 0.01 ms).
    workers = next(table for table in tables(workers_md) if "Storefront/Hono p50" in table[0])
    product = next(row for row in workers[1:] if row[0].startswith("GET /products/{id}"))
    product_ratio = number(product[column(workers[0], "Storefront/Hono p50")])
    floor = next((table for table in tables(workers_md) if "Rust floor/Hono p50" in table[0]), None)
    lines.append(f"- The Worker's `GET /products/{{id}}` p50 at most 1.1x Hono's: "
                 f"{'met' if product_ratio <= 1.1 else 'NOT met'} ({product_ratio:.2f}x).")
    if floor:
        ratio = column(floor[0], "Rust floor/Hono p50")
        lines.append("- (Beside the budget: the Rust floor, the smallest workers-rs Worker doing the same read, against Hono, p50: "
                     + ", ".join(f"{short(row[0])} {row[ratio]}x" for row in floor[1:]) + ".)")
    return lines


def main():
    lambda_md, workers_md, local_md, memory_mb = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    search_md = sys.argv[5] if len(sys.argv) > 5 else None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print("# Storefront benchmark report")
    print()
    print(f"Run {now} at commit `{commit}`{' (with uncommitted changes)' if dirty else ''}, on {os.cpu_count()} cores of {cpu}.")
    print("Every figure below comes from this one run of `scripts/bench.sh`; all servers listened on 127.0.0.1.")
    for title, path in (("Lambda (scripts/bench-lambda.sh)", lambda_md), ("Workers (scripts/bench-workers.sh)", workers_md),
                        ("Local host (scripts/bench-local.sh)", local_md), ("Search (scripts/bench-search.sh)", search_md)):
        if path is None:
            continue
        print()
        print(f"## {title}")
        print()
        with open(path, encoding="utf-8") as handle:
            # A part's own headings go one level down, under this report's heading for the part.
            print("\n".join("#" + line if line.startswith("#") else line for line in handle.read().strip().splitlines()))
    print()
    print("## Cost per million requests")
    print()
    print(f"Prices as published on {PRICES_READ}: Lambda arm64 in US East (N. Virginia) ${LAMBDA_PER_MILLION_REQUESTS:.2f} per million requests "
          f"and ${LAMBDA_ARM64_PER_GB_SECOND:.10f} per GB-second, billed by the millisecond, at the template's {memory_mb} MB; API Gateway HTTP API "
          f"${HTTP_API_PER_MILLION_REQUESTS:.2f} per million; Workers Paid (Standard) ${WORKERS_PER_MILLION_REQUESTS:.2f} per million requests and "
          f"${WORKERS_PER_MILLION_CPU_MS:.2f} per million CPU milliseconds beyond the $5 plan's inclusions; D1 ${D1_PER_MILLION_ROWS_READ} per million rows read.")
    print("A Lambda function's warm duration is the table's median warm invocation (the handler with no storage call for the first table's "
          "functions, one DynamoDB Local read for the product read); a Worker's CPU time is taken as its p50 wall time under `wrangler dev`, "
          "an upper bound (its D1 wait is not CPU). Free tiers are left out.")
    print()
    print("| function | measured ms | billed ms | $ per million requests | with API Gateway | cold total billed ms | duration $ per million cold starts |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in lambda_rows(lambda_md, memory_mb) + worker_rows(workers_md):
        print(row)
    print()
    print("## Budgets")
    print()
    for line in budgets(lambda_md, workers_md):
        print(line)


if __name__ == "__main__":
    main()
