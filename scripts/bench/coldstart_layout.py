#!/usr/bin/env python3
"""Profiles every Lambda function's cold start under callgrind and writes the linker script that lays that code out
together (scripts/coldstart-layout.sh runs it; see there for why).

Usage: coldstart_layout.py OUT.ld BINARY_DIR TEMPLATE EVENT_404 SQS_EVENT SCHEDULE_EVENT NAME...

For each NAME (a function of TEMPLATE, built unstripped in BINARY_DIR) it starts the binary under
`valgrind --tool=callgrind`, with the Runtime API emulator of scripts/bench-lambda.py on 127.0.0.1, and hands it the
first invocations a cold instance meets:
- an HTTP function: a GET of the first route template.yaml gives it (no credentials; `{...}` filled in), then the
  benchmark's request for a path no function serves;
- a queue consumer: an empty SQS batch; a scheduled function: the EventBridge schedule event.
Every function's DynamoDB endpoint is the emulator's empty stand-in, so a read finds nothing and a handler still
runs its store call. The run then ends the instance's next `next`, lambda_runtime returns and callgrind writes its
profile. Every function of the binary that ran (callgrind's `fn=` and `cfn=` names, intersected with the binary's
own text symbols) becomes one input-section pattern of the script, its legacy-mangled hash replaced by `*`: the
same pattern then names that function in an aarch64 build, whose hashes differ.
"""

import importlib.util
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

_spec = importlib.util.spec_from_file_location("bench_lambda", os.path.join(os.path.dirname(__file__), "..", "bench-lambda.py"))
bench_lambda = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_lambda)

LEGACY = re.compile(r"^(_ZN.*)17h[0-9a-f]{16}E$")
V0_HASHED = re.compile(r"(Cs|B)[0-9A-Za-z]*_")
UNIQUE_SUFFIX = re.compile(r"^(.+?)\.(?:llvm\.)?\d+$")
FUNCTION_BLOCK = re.compile(r"^  (\w+)Function:\n    Type: AWS::Serverless::Function\n(.*?)(?=^  \w+:\n|\Z)", re.M | re.S)


def kinds(template):
    """NAME -> ("http", first path) | ("sqs", None) | ("schedule", None), from template.yaml's functions."""
    found = {}
    for block in FUNCTION_BLOCK.finditer(template):
        body = block.group(2)
        code = re.search(r"CodeUri: functions/([\w-]+)", body)
        if not code:
            continue
        event = re.search(r"^          Type: (\w+)", body, re.M)
        kind = event.group(1) if event else None
        if kind == "HttpApi":
            path = re.search(r"Path: (\S+)", body).group(1)
            found[code.group(1)] = ("http", path)
        elif kind == "SQS":
            found[code.group(1)] = ("sqs", None)
        elif kind in ("Schedule", "ScheduleV2"):
            found[code.group(1)] = ("schedule", None)
    return found


def http_event(template_event, path):
    path = re.sub(r"\{[^}]+\}", "profile-1", path)
    return template_event.replace(b"/bench/not-a-route", path.encode())


def profile(binary, events, env, out_file):
    server = bench_lambda.Emulator(b"")
    child_env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out_file}", binary],
        env=child_env, stdout=subprocess.DEVNULL, stderr=stderr)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        deadline = time.monotonic() + 300
        for index, event in enumerate(events):
            server.event = event
            server.hand_out(1)
            with server.lock:
                while len(server.responses) <= index:
                    server.lock.wait(timeout=1)
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{binary} did not answer invocation {index}")
            _, ok, payload = server.responses[index]
            if not ok:
                raise RuntimeError(f"{binary} reported an error: {payload[:500]!r}")
        # The instance now waits for its next event. SIGTERM ends it there, as Lambda ends an instance, and callgrind
        # writes its profile on the way out; letting lambda_runtime return instead would profile the teardown too
        # (every client and router dropped), code no cold start runs.
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    except BaseException:
        process.kill()
        process.wait()
        stderr.seek(0)
        sys.stderr.write(stderr.read().decode(errors="replace")[-3000:])
        raise
    finally:
        server.shutdown()
        server.server_close()
    if not os.path.exists(out_file):
        raise RuntimeError(f"callgrind wrote no profile for {binary}")


def ran(profile_file):
    names = {}
    with open(profile_file, errors="replace") as handle:
        for line in handle:
            match = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if match and match.group(2):
                names[match.group(1)] = match.group(2)
    return set(names.values())


def text_symbols(binary):
    """The binary's function symbols and their sizes."""
    listing = subprocess.run(["nm", "--defined-only", "--print-size", binary], check=True, capture_output=True, text=True).stdout
    return {parts[3]: int(parts[1], 16) for parts in (line.split() for line in listing.splitlines()) if len(parts) == 4 and parts[2] in "tTwW"}


def pattern(symbol):
    """The input-section pattern for `symbol` on any target: a legacy name less its hash; a v0 name (the standard
    library's) with its crates' disambiguators and its back-references (offsets into the name, which a
    disambiguator of another length shifts) as wildcards; any other (C) name as it is. A Rust function's section
    is `.text.` and its name, or `.text.unlikely.` and its name where LLVM judged it cold (`#[cold]`, such as
    hashbrown's `reserve_rehash`, which every cold start runs): `.text.*` takes both."""
    # A local symbol LLVM renamed to keep it unique (`write_char.6402`, `….llvm.123`) has a number of this build's.
    unique = UNIQUE_SUFFIX.match(symbol)
    if unique:
        return pattern(unique.group(1)).rstrip("*") + "*"
    legacy = LEGACY.match(symbol)
    if legacy:
        return f".text.*{legacy.group(1)}17h*"
    if symbol.startswith("_R"):
        return ".text.*" + V0_HASHED.sub(lambda part: part.group(1) + "*", symbol)
    return f".text.{symbol}"


def main():
    out, binaries, template_file, event_404, sqs_event, schedule_event, *names = sys.argv[1:]
    with open(template_file) as handle:
        template = handle.read()
    with open(event_404, "rb") as handle:
        not_found = handle.read()
    with open(sqs_event, "rb") as handle:
        sqs = handle.read()
    with open(schedule_event, "rb") as handle:
        schedule = handle.read()
    empty_dynamodb = bench_lambda.EmptyDynamoDb()
    threading.Thread(target=empty_dynamodb.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{empty_dynamodb.server_address[1]}")
    functions = kinds(template)
    ran_by = {}  # pattern -> the functions whose cold start ran a function it names
    hot_bytes = {}  # pattern -> bytes of the functions it names that ran, over every binary
    named_bytes = {}  # pattern -> bytes of every function it names, over every binary
    work = tempfile.mkdtemp(prefix="coldstart-layout-")
    for name in names:
        if name not in functions:
            raise SystemExit(f"{template_file} gives functions/{name} no HttpApi, SQS or schedule event")
        kind, path = functions[name]
        events = {"http": lambda: [http_event(not_found, path), not_found], "sqs": lambda: [sqs], "schedule": lambda: [schedule]}[kind]()
        binary = os.path.join(binaries, name)
        started = time.monotonic()
        profile_file = os.path.join(work, f"{name}.callgrind")
        profile(binary, events, env, profile_file)
        symbols = text_symbols(binary)
        hot = ran(profile_file) & symbols.keys()
        for symbol, size in symbols.items():
            named = pattern(symbol)
            named_bytes[named] = named_bytes.get(named, 0) + size
            if symbol in hot:
                hot_bytes[named] = hot_bytes.get(named, 0) + size
                ran_by.setdefault(named, set()).add(name)
        print(f"{name}: {len(hot)} functions ran ({kind}, {time.monotonic() - started:.1f} s under callgrind)", file=sys.stderr)
    empty_dynamodb.shutdown()
    # The code most cold starts share comes first (the runtime, the clients' set-up, the request path every HTTP
    # function takes), then what fewer functions run, so that a function's cold start touches the front of the
    # section and its own few pages. A pattern that names mostly code that never ran (a generic function of which
    # one instance of hundreds ran, `<&T as Debug>::fmt` say) goes after all the others, so as not to spread them.
    def key(named):
        precise = hot_bytes[named] * 2 >= named_bytes[named]
        return (not precise, -len(ran_by[named]), named)
    order = sorted(ran_by, key=key)
    with open(out, "w") as handle:
        handle.write("/* Generated by scripts/coldstart-layout.sh from callgrind profiles of every Lambda function's init and first\n")
        handle.write("   invocations: do not edit. It gathers the functions a cold start runs into one output section placed before\n")
        handle.write("   .text, so that the cold start faults in a few contiguous pages instead of pages spread over the binary.\n")
        handle.write("   .cargo/config.toml passes it to the linker of the arm64 functions (-Wl,-T; GNU ld, and zig's lld under\n")
        handle.write("   cargo-lambda, both read INSERT). Crate hashes are wildcards, so the patterns hold on any target. The code\n")
        handle.write("   more functions ran comes first; patterns naming mostly code that never ran come last. */\n")
        handle.write("SECTIONS\n{\n  .text.coldstart :\n  {\n")
        group = None
        for named in order:
            imprecise, count, _ = key(named)
            if (imprecise, count) != group:
                group = (imprecise, count)
                what = "mostly code that never ran, some of it run by" if imprecise else "code run by"
                handle.write(f"    /* {what} {-count} of {len(names)} cold starts */\n")
            handle.write(f"    *({named})\n")
        handle.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"{out}: {len(order)} patterns from {len(names)} functions", file=sys.stderr)


if __name__ == "__main__":
    main()
