#!/usr/bin/env bash
# The AWS tier of the tests: template checks (cfn-lint, `sam validate --lint`, and the checks those two do not
# make), the DynamoDB and SQS adapters' contract suites against DynamoDB Local and moto, and the end-to-end
# scenarios through `cargo lambda watch` (the Lambda binaries on the emulators: catalog, bad input, accounts, admin
# writes, commerce, MCP with the official Python SDK, schemathesis on /openapi.json and /docs in headless Chromium,
# with a login's time measured and the watcher's log checked for every password, token and key
# the scenarios used, and the privacy jobs and order events the scenarios' requests published checked on moto's
# privacy and orders queues), plus `cargo lambda invoke` with the event files in events/ (the outbox relay function,
# on an event seeded into the outbox, and the checkout sweep function included), and the jobs function's partial
# batch failures and redrive on moto. Everything listens on 127.0.0.1;
# nothing reaches AWS. It never skips a step:
# a missing tool is installed (scripts/aws-emulators.sh) or the run fails. Emulators and the watcher are
# stopped by PID on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

started=$(now_ms)
log=$(mktemp -t storefront-aws-tests.XXXXXX)
state="${STOREFRONT_AWS_STATE:-$PWD/.cache/aws}"
export STOREFRONT_AWS_STATE="$state"
mkdir -p "$state"
watch_pid=""
jobs_watch_pid=""
stop_watcher() {
  local pid=$1
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    # SIGINT lets cargo-lambda stop the function processes it started.
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
}
event_source_pids=()
cleanup() {
  for pid in "${event_source_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_watcher "$watch_pid"
  stop_watcher "$jobs_watch_pid"
  scripts/aws-emulators.sh stop || true
  # This run's secret and the passwords and tokens the scenarios noted are of no use afterwards; the logs stay.
  rm -f "$state/secrets.log" "$state/secrets.txt" "$state/watch.env"
  # The tier's test output was tallied at its end and is in this run's own output too.
  rm -f "$log"
  # The markers with which the order-events function's test fault (STOREFRONT_FAULT_CRASH_ORDERS=crash-) crashed
  # once per order, in the functions' temporary folder: each run's orders are new, so no later run needs them.
  rm -f "${TMPDIR:-/tmp}"/storefront-fault-crashed-crash-*
}
trap cleanup EXIT

# No process started here may look for credentials anywhere but these dummy keys.
export AWS_ACCESS_KEY_ID=storefrontlocal AWS_SECRET_ACCESS_KEY=storefrontlocal AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0

say "AWS tools (installed once into $STOREFRONT_TOOLS/aws)"
scripts/aws-emulators.sh install all
tools="$STOREFRONT_TOOLS/aws"
export PATH="$tools/venv-lambda/bin:$PATH"

# The MCP Python SDK, schemathesis and Chromium for the mcp:: and api_contract:: scenarios.
eval "$(scripts/api-clients.sh env)"

say "template.yaml: cfn-lint, sam validate --lint, and the project's own checks"
"$tools/venv-sam/bin/cfn-lint" template.yaml
"$tools/venv-sam/bin/sam" validate --lint --template template.yaml --region us-east-1
"$tools/venv-sam/bin/python" - <<'EOF'
# Checks cfn-lint and sam validate do not make: Refs inside serverless functions, env names against the code,
# least privilege, queue timeouts against consumer timeouts, batch sizes, and schedules against timeouts.
import pathlib, re, sys, tomllib
from cfnlint.decode import decode
template, matches = decode("template.yaml")
if matches:
    sys.exit(f"template.yaml does not parse: {matches}")
resources, parameters = template["Resources"], template.get("Parameters", {})
globals_fn = template.get("Globals", {}).get("Function", {})
problems = []
def refs(node, path):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and not value.startswith("AWS::"):
                if value not in resources and value not in parameters:
                    problems.append(f"{path}: !Ref {value} names nothing")
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                if target not in resources:
                    problems.append(f"{path}: !GetAtt {target} names nothing")
            refs(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            refs(value, f"{path}[{index}]")
refs(template.get("Globals", {}), "Globals")
refs(resources, "Resources")
functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
# The variables each config struct of lambda_host reads, by name (its consts, character for character).
lambda_rs = pathlib.Path("functions/lambda-host/src/lib.rs").read_text()
consts = dict(re.findall(r'pub const ([A-Z_]+): &str = "([A-Z_]+)";', lambda_rs))
config_reads = {}
for struct in ("HttpConfig", "JobsConfig", "RelayConfig", "SweepConfig", "ConsumerConfig", "ReportConfig", "AwsConfig", "PaymentsConfig"):
    body = re.search(r"impl " + struct + r" \{\n(.*?)\n\}\n", lambda_rs, re.S)
    if not body:
        sys.exit(f"functions/lambda-host/src/lib.rs has no impl {struct}")
    config_reads[struct] = [consts[c] for c in re.findall(r"(?:required|optional)\(([A-Z_]+)\)", body.group(1))]
# The mail settings of the job functions that mail (fn mail_settings; the first admin's name is auth.rs's).
mail_body = re.search(r"fn mail_settings\(\).*?\n\}\n", lambda_rs, re.S)
mail_reads = [consts.get(c, c) for c in re.findall(r"optional\((?:auth::)?([A-Z_]+)\)", mail_body.group(0))] if mail_body else []
if set(mail_reads) != {"STOREFRONT_MAIL_FROM", "STOREFRONT_ADMIN_EMAIL", "STOREFRONT_ALERTS_TO"}:
    sys.exit(f"could not read fn mail_settings of functions/lambda-host/src/lib.rs: {mail_reads}")
# The functions that need no store read nothing (run_static_http).
config_reads["StaticConfig"] = []
for struct in ("HttpConfig", "JobsConfig", "RelayConfig", "SweepConfig", "ConsumerConfig", "ReportConfig"):
    body = re.search(r"impl " + struct + r" \{\n(.*?)\n\}\n", lambda_rs, re.S).group(1)
    for part in ("AwsConfig", "PaymentsConfig"):
        if f"{part}::from_env()" in body:
            config_reads[struct] += config_reads[part]
    if "mail_settings()" in body:
        config_reads[struct] += mail_reads
payment_vars = {"STOREFRONT_PAYMENTS", "STRIPE_SECRET_KEY", "STRIPE_API_BASE"}
if (not {"TABLE_NAME", "STOREFRONT_SECRET", "PRIVACY_QUEUE_URL", "ORDERS_QUEUE_URL"} <= set(config_reads["HttpConfig"])
        or "JOBS_QUEUE_URL" not in config_reads["JobsConfig"]
        or not {"TABLE_NAME", "PRIVACY_QUEUE_URL", "ORDERS_QUEUE_URL"} <= set(config_reads["RelayConfig"])
        or not {"TABLE_NAME", "ORDERS_QUEUE_URL"} | payment_vars <= set(config_reads["SweepConfig"])
        or not payment_vars <= set(config_reads["HttpConfig"])):
    sys.exit(f"could not read the config consts of functions/lambda-host/src/lib.rs: {config_reads}")
entries = {"run_http": "HttpConfig", "auth::run_account_http": "HttpConfig", "run_mcp_http": "HttpConfig", "run_static_http": "StaticConfig", "run_jobs": "JobsConfig",
           "run_outbox_relay": "RelayConfig", "run_checkout_sweep": "SweepConfig",
           "run_order_events": "ConsumerConfig", "run_privacy": "ConsumerConfig", "run_sales_report": "ReportConfig"}
http_entries = ("run_http", "auth::run_account_http", "run_mcp_http", "run_static_http")
scheduled_entries = ("run_outbox_relay", "run_checkout_sweep", "run_sales_report")
# The queue a consumer entry reads (its URL and its dead-letter queue's); the other consumer's are not its.
consumer_queues = {"run_order_events": {"ORDERS_QUEUE_URL", "ORDERS_DEAD_LETTER_QUEUE_URL"},
                   "run_privacy": {"PRIVACY_QUEUE_URL", "PRIVACY_DEAD_LETTER_QUEUE_URL"}}
# The outbox topics and the variable naming each one's queue (shared::outbox::Topic, lambda_host's consts).
topic_queues = {"privacy": "PRIVACY_QUEUE_URL", "orders": "ORDERS_QUEUE_URL"}
# Least privilege, exactly: per function crate, the DynamoDB actions its code paths make and the outbox topics whose
# events it commits and publishes (so it is given those queues' URLs and may send to them, and to no other queue).
# shared/src/adapters/dynamodb.rs calls GetItem, BatchGetItem (a search's page), PutItem, DeleteItem, Query and TransactWriteItems. IAM has no action
# for a transaction as a whole: each of its items needs its own action, a Put PutItem, a Delete DeleteItem, an Add
# (the bounded counter update of stock and discount uses) UpdateItem, a Check ConditionCheckItem. Publishing an event
# removes it from the outbox (DeleteItem). A new function fails this check until it has a row here.
expected_access = {
    "health": ({"GetItem"}, set()),
    "products": ({"GetItem", "BatchGetItem", "Query", "PutItem"}, set()),
    "product": ({"GetItem", "Query", "PutItem", "DeleteItem"}, set()),
    "register": ({"PutItem"}, set()),
    "login": ({"GetItem", "PutItem"}, set()),
    "refresh": ({"GetItem", "PutItem"}, set()),
    "logout": ({"GetItem", "PutItem"}, set()),
    "me": ({"GetItem", "PutItem", "Query", "DeleteItem"}, {"privacy"}),
    # Carts (commerce::carts): every change is a versioned put of the cart item; pricing reads products and the code.
    "cart": ({"GetItem", "PutItem"}, set()),
    # Discounts (commerce::discounts): a put conditional on absence, and the DISCOUNTS partition listed.
    "discounts": ({"GetItem", "Query", "PutItem"}, set()),
    # The checkout (commerce::checkout): idempotency record and sandbox charge (get, put), the reservation and its
    # settlement (transactions of puts, deletes and counter adds), a refund of a charge on a released order (the
    # sandbox ledger queried), order.created published.
    "checkout": ({"GetItem", "Query", "PutItem", "DeleteItem", "UpdateItem"}, {"orders"}),
    # Orders: the lists queried, one order read; a cancel refunds (sandbox ledger queried, charge put) and restocks
    # (counter adds) in one transaction with the order and order.cancelled, which is then published.
    "orders": ({"GetItem", "Query", "PutItem", "DeleteItem", "UpdateItem"}, {"orders"}),
    # The sandbox ledger, read only.
    "payments": ({"GetItem", "Query"}, set()),
    # The sweep (Commerce::sweep): the unsettled list queried, each order completed or released as the checkout does.
    "checkout-sweep": ({"GetItem", "Query", "PutItem", "DeleteItem", "UpdateItem"}, {"orders"}),
    # The sales report (sales::Sales): a closed report read, the day's counters queried.
    "reports": ({"GetItem", "Query"}, set()),
    "jobs": (set(), set()),
    # Order events (jobs::orders): the buyer, the products, the counters (created by a conditional put, then atomic
    # adds in one transaction with the event's marker), low-stock records, the record of each sent mail.
    "order-events": ({"GetItem", "PutItem", "DeleteItem", "UpdateItem"}, set()),
    # Privacy (jobs::privacy): the user's orders, sessions, idempotency records and exports queried; the export
    # stored; the account marked exported; everything an erasure removes deleted, the orders rewritten.
    "privacy": ({"GetItem", "Query", "PutItem", "DeleteItem"}, set()),
    # The daily report (jobs::reports): the day's counters queried, the closed report and its mail's record put.
    "sales-report": ({"GetItem", "Query", "PutItem"}, set()),
    "outbox-relay": ({"Query", "DeleteItem"}, {"privacy", "orders"}),
    # The document and the docs page touch no data.
    "openapi": (set(), set()),
    "docs": (set(), set()),
    # MCP's tools run the products, product, cart, checkout and orders routers: together, what those need.
    "mcp": ({"GetItem", "BatchGetItem", "Query", "PutItem", "DeleteItem", "UpdateItem"}, {"orders"}),
}
# The functions that call the payment provider: they are given the provider's settings, and they alone have a
# cargo feature `stripe` (forwarding to lambda-host's), so no other binary can carry Stripe's HTTPS client.
takes_payments = {"checkout", "orders", "checkout-sweep", "mcp"}
# The account functions' entry, lambda_host::auth::run_account_http, also reads AuthEnv (first admin, login
# allowance, and the Argon2id costs under the names of shared/src/adapters/argon2.rs, which every host shares).
auth_rs = pathlib.Path("functions/lambda-host/src/auth.rs").read_text()
argon2_rs = pathlib.Path("shared/src/adapters/argon2.rs").read_text()
auth_consts = dict(re.findall(r'pub const ([A-Z0-9_]+): &str = "([A-Z0-9_]+)";', auth_rs + argon2_rs))
auth_body = re.search(r"impl AuthEnv \{\n(.*?)\n\}\n", auth_rs, re.S)
if not auth_body:
    sys.exit("functions/lambda-host/src/auth.rs has no impl AuthEnv")
auth_reads = [auth_consts[c] for c in re.findall(r"(?:required|optional)\(([A-Z0-9_]+)\)", auth_body.group(1))]
argon2_names = {"STOREFRONT_ARGON2_MEMORY_KIB", "STOREFRONT_ARGON2_ITERATIONS", "STOREFRONT_ARGON2_PARALLELISM"}
if set(auth_reads) != {"STOREFRONT_ADMIN_EMAIL", "STOREFRONT_LOGIN_ATTEMPTS_PER_CLIENT"} | argon2_names:
    sys.exit(f"could not read the config consts of functions/lambda-host/src/auth.rs: {auth_reads}")
# The Argon2 parameters' defaults are the code's defaults (OWASP's), so a stack deployed with defaults hashes as
# every other host does.
code_default = re.search(r"Self \{ memory_kib: ([0-9_]+), iterations: ([0-9_]+), parallelism: ([0-9_]+) \}", argon2_rs)
if not code_default:
    sys.exit("shared/src/adapters/argon2.rs: could not read Argon2Settings::default()")
for parameter, value in zip(("Argon2MemoryKiB", "Argon2Iterations", "Argon2Parallelism"), code_default.groups()):
    if str(parameters.get(parameter, {}).get("Default")) != value.replace("_", ""):
        problems.append(f"parameter {parameter}: its default must be the code's, {value.replace('_', '')}")
write_actions = re.compile(r"dynamodb:(Put|Delete|Update|BatchWrite|TransactWrite|\*)")
env_names = set(globals_fn.get("Environment", {}).get("Variables", {}))
# The SDK's partition file: set from the layer's path in the `aws` partition only, and the layer on every function.
partition_var = globals_fn.get("Environment", {}).get("Variables", {}).get("SMITHY_CLIENT_SDK_CUSTOM_PARTITION")
partition_const = re.search(r'pub const AWS_PARTITION_FILE: &str = "([^"]+)";', lambda_rs)
layer = resources.get("SdkPartitionLayer", {})
layer_dir = pathlib.Path(layer.get("Properties", {}).get("ContentUri", "-"))
if not partition_const or partition_var != {"Fn::If": ["InAwsPartition", partition_const.group(1), {"Ref": "AWS::NoValue"}]}:
    problems.append(f"Globals: SMITHY_CLIENT_SDK_CUSTOM_PARTITION must be lambda_host::AWS_PARTITION_FILE in the aws partition only, not {partition_var}")
elif not (layer_dir / pathlib.PurePosixPath(partition_const.group(1)).name).is_file() or not partition_const.group(1).startswith("/opt/"):
    problems.append(f"SdkPartitionLayer: {layer_dir} must hold {partition_const.group(1)} (a layer's files are under /opt)")
if globals_fn.get("Layers") != [{"Ref": "SdkPartitionLayer"}]:
    problems.append(f"Globals: every function needs the layer SdkPartitionLayer, not {globals_fn.get('Layers')}")
topic_queue_resources = {}
for name, function in functions.items():
    props = function["Properties"]
    crate = pathlib.Path(props["CodeUri"])
    main = crate / "src" / "main.rs"
    if not main.is_file():
        problems.append(f"{name}: {main} does not exist")
        continue
    expected = "".join(part.capitalize() for part in crate.name.split("-")) + "Function"
    if name != expected:
        problems.append(f"{name}: the logical id of crate {crate.name} must be {expected}")
    if function.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
        problems.append(f"{name}: BuildMethod must be rust-cargolambda")
    # main.rs is wiring: it hands over to lambda_host, whose config structs name every variable read.
    entry = re.search(r"lambda_host::(" + "|".join(entries) + r")\(", main.read_text())
    if not entry:
        problems.append(f"{name}: {main} calls none of lambda_host::{', '.join(entries)}")
        continue
    read = list(config_reads[entries[entry.group(1)]])
    if entry.group(1) == "auth::run_account_http":
        read += auth_reads
    if entry.group(1) in consumer_queues:
        others = set().union(*consumer_queues.values()) - consumer_queues[entry.group(1)]
        read = [value for value in read if value not in others]
        for value in consumer_queues[entry.group(1)]:
            if value not in props.get("Environment", {}).get("Variables", {}):
                problems.append(f"{name}: consumes its queue but is not given {value}")
    lib = (crate / "src" / "lib.rs").read_text() if (crate / "src" / "lib.rs").is_file() else ""
    if crate.name not in expected_access:
        problems.append(f"{name}: crate {crate.name} has no row in this check's expected_access table")
        continue
    expected_actions, topics = expected_access[crate.name]
    # A function reads a topic's queue URL only to publish the outbox events it commits: one that commits none of
    # that topic's must not be given it (nor the right to send), one that does must be. The relay needs them all.
    if entry.group(1) == "run_outbox_relay" and topics != set(topic_queues):
        problems.append(f"{name}: the outbox relay must publish every topic, not only {sorted(topics)}")
    if entry.group(1) in http_entries and "publish_committed" in lib and not topics:
        problems.append(f"{name}: its router publishes committed events, but its expected_access row names no topic")
    for topic, variable in topic_queues.items():
        if topic not in topics and variable in read and variable not in consumer_queues.get(entry.group(1), set()):
            read.remove(variable)
    if crate.name not in takes_payments:
        read = [value for value in read if value not in payment_vars]
    # Only the MCP function's entry hands the allowed browser origins to its router.
    if entry.group(1) != "run_mcp_http":
        read = [value for value in read if value != "STOREFRONT_MCP_ALLOWED_ORIGINS"]
    features = tomllib.loads((crate / "Cargo.toml").read_text()).get("features", {})
    if (crate.name in takes_payments) != ("lambda-host/stripe" in features.get("stripe", [])):
        problems.append(f"{name}: crate {crate.name} must have a feature stripe forwarding to lambda-host/stripe exactly when it takes payments")
    # The sandbox ledger exists only with the sandbox as the provider (with Stripe its route is the $default 404).
    if crate.name == "payments" and function.get("Condition") != "UsesSandbox":
        problems.append(f"{name}: the sandbox ledger function must be deployed only under the condition UsesSandbox")
    names = env_names | set(props.get("Environment", {}).get("Variables", {}))
    for value in read:
        # Lambda itself sets AWS_*; DEMO_SEED is for local runs only.
        if not value.startswith("AWS_") and value != "DEMO_SEED" and value not in names:
            problems.append(f"{name}: lambda_host reads {value} for it, which the template does not set")
    # lambda_http reads the first, the AWS SDK the second.
    for value in names - set(read) - {"AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "SMITHY_CLIENT_SDK_CUSTOM_PARTITION"}:
        problems.append(f"{name}: the template sets {value}, which the function never reads")
    statements = [s for p in props.get("Policies", []) if isinstance(p, dict) for s in p.get("Statement", [])]
    actions = [a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    if any(isinstance(p, str) or "DynamoDBCrudPolicy" in p for p in props.get("Policies", [])):
        problems.append(f"{name}: use explicit least-privilege statements, not managed or CRUD policies")
    # A function whose router serves only GET is read-only; one that serves a write method may write.
    reads_only = entry.group(1) in http_entries and not re.search(r"\b(post|put|delete|patch)\(", lib)
    if reads_only and any(write_actions.match(a) for a in actions):
        problems.append(f"{name}: a read-only function has write actions {actions}")
    if "dynamodb:TransactWriteItems" in actions:
        # IAM knows no TransactWriteItems action: each item of a transaction is governed by its own action.
        problems.append(f"{name}: grants dynamodb:TransactWriteItems, which IAM does not know; grant each item's action")
    granted = {a.split(":", 1)[1] for a in actions if a.startswith("dynamodb:")}
    if granted != expected_actions:
        problems.append(f"{name}: grants DynamoDB {sorted(granted)}, its code paths need exactly {sorted(expected_actions)}")
    if len(actions) != len(set(actions)):
        problems.append(f"{name}: grants an action twice: {actions}")
    # A queue a function may send to is one whose URL it is given; a publisher may send to the privacy queue and
    # remove the events it published from the outbox (the relay also reads the outbox).
    env = {**globals_fn.get("Environment", {}).get("Variables", {}), **props.get("Environment", {}).get("Variables", {})}
    given = {value["Ref"] for value in env.values() if isinstance(value, dict) and "Ref" in value}
    sends_to = set()
    for statement in statements:
        statement_actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in statement_actions:
            if action.startswith("sqs:"):
                for target in targets:
                    queue = target.get("Fn::GetAtt", [None])[0] if isinstance(target, dict) else None
                    if queue not in given:
                        problems.append(f"{name}: {action} on {target}, a queue whose URL the function is not given")
                    sends_to.add(queue)
    for topic in sorted(topics):
        queue = env.get(topic_queues[topic], {})
        queue = queue.get("Ref") if isinstance(queue, dict) else None
        if queue not in sends_to or "sqs:SendMessage" not in actions:
            problems.append(f"{name}: publishes {topic} events but may not sqs:SendMessage to {topic_queues[topic]}'s queue")
        elif resources.get(queue, {}).get("Type") != "AWS::SQS::Queue":
            problems.append(f"{name}: {topic_queues[topic]} names {queue}, which is not a queue")
        else:
            topic_queue_resources.setdefault(queue, set()).add(topic)
    if topics and "DeleteItem" not in expected_actions:
        problems.append(f"{name}: publishes outbox events but may not remove them from the outbox (DeleteItem)")
    timeout = props.get("Timeout", globals_fn.get("Timeout", 3))
    if entry.group(1) in scheduled_entries and not any(e["Type"] == "Schedule" for e in props.get("Events", {}).values()):
        problems.append(f"{name}: {entry.group(1)} runs on no Schedule event")
    for event_name, event in props.get("Events", {}).items():
        if event["Type"] == "Schedule":
            rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", event["Properties"]["Schedule"])
            if re.fullmatch(r"cron\(\d+ \d+ \* \* \? \*\)", event["Properties"]["Schedule"]):
                # Daily at a fixed UTC time.
                rate = re.fullmatch(r"(1) (day)", "1 day")
            if not rate:
                problems.append(f"{name}.{event_name}: schedule {event['Properties']['Schedule']} is not a rate() this check reads")
            elif timeout >= int(rate.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[rate.group(2).rstrip("s")]:
                problems.append(f"{name}.{event_name}: the timeout ({timeout} s) is not under the schedule's period, so runs overlap")
            continue
        if event["Type"] != "SQS":
            continue
        event_props = event["Properties"]
        queue = resources.get(event_props["Queue"]["Fn::GetAtt"][0], {}).get("Properties", {})
        if queue.get("VisibilityTimeout", 30) < 6 * timeout:
            problems.append(f"{name}.{event_name}: queue visibility timeout under six times the function timeout")
        batch = event_props.get("BatchSize", 10)
        if not 1 <= batch <= (10 if queue.get("FifoQueue") else 10000):
            problems.append(f"{name}.{event_name}: batch size {batch} is out of range")
        if "ReportBatchItemFailures" not in event_props.get("FunctionResponseTypes", []):
            problems.append(f"{name}.{event_name}: partial batch failures are not reported")
missing_rows = set(expected_access) - {pathlib.Path(f["Properties"]["CodeUri"]).name for f in functions.values()}
if missing_rows:
    problems.append(f"expected_access names crates the template deploys as no function: {sorted(missing_rows)}")
# Each topic has one queue, shared by every function that publishes it. shared::adapters::sqs sends only to FIFO
# queues, each event with its id as the deduplication id (so content-based deduplication must stay off), and no
# topic queue has a consumer yet, so each keeps its messages for SQS's maximum, 14 days.
by_topic = {}
for queue, queue_topics in topic_queue_resources.items():
    for topic in queue_topics:
        by_topic.setdefault(topic, set()).add(queue)
    properties = resources[queue].get("Properties", {})
    if properties.get("FifoQueue") is not True:
        problems.append(f"{queue}: the {'/'.join(sorted(queue_topics))} queue must be FIFO")
    if properties.get("ContentBasedDeduplication") in (True, "true"):
        problems.append(f"{queue}: content-based deduplication must stay off (events carry their own deduplication id)")
    if properties.get("MessageRetentionPeriod") != 1209600:
        problems.append(f"{queue}: nothing consumes it yet, so it must keep messages for 14 days (1209600 s)")
for topic in topic_queues:
    if len(by_topic.get(topic, set())) != 1:
        problems.append(f"the {topic} topic must have exactly one queue, not {sorted(by_topic.get(topic, set()))}")
for name, queue in resources.items():
    if queue["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" not in queue.get("Properties", {}):
        if not any(r.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn", {}).get("Fn::GetAtt", [None])[0] == name
                   for r in resources.values() if r["Type"] == "AWS::SQS::Queue"):
            problems.append(f"{name}: a queue without a dead-letter queue")
table = [r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
if len(table) != 1 or table[0]["Properties"].get("TimeToLiveSpecification", {}).get("AttributeName") != "expires_at":
    problems.append("the template must hold one table with TTL on expires_at")
# CargoLambda.toml's watch router must route what the HTTP API routes, to the same functions.
import tomllib
router = tomllib.loads(pathlib.Path("CargoLambda.toml").read_text())["watch"]["router"]
api_routes = {}
for name, function in functions.items():
    for event in function["Properties"].get("Events", {}).values():
        if event["Type"] == "HttpApi":
            path = event["Properties"]["Path"]
            path = "/{*rest}" if path == "$default" else path
            api_routes[path] = pathlib.Path(function["Properties"]["CodeUri"]).name
if router != api_routes:
    problems.append(f"CargoLambda.toml [watch.router] {router} differs from template.yaml's HTTP API routes {api_routes}")
if problems:
    sys.exit("template.yaml:\n  " + "\n  ".join(problems))
print(f"template.yaml: {len(functions)} functions, own checks passed")
EOF

say "the cold-start linker script links with this machine's cc and with zig for aarch64, as cargo-lambda links"
# .cargo/config.toml hands functions/lambda-host/coldstart.ld to the arm64 deploy build's linker, which no other
# tier runs: a script either linker refused would break `sam build`. A C `main` stands in for the functions'
# (rustc's `main` is C too, and the script names it): it must land in .text.coldstart with both.
layout_check="$state/coldstart-layout"
mkdir -p "$layout_check"
printf 'int main(void) { return 0; }\n' >"$layout_check/main.c"
for linker in "cc" "python-zig cc -target aarch64-linux-gnu"; do
  $linker -ffunction-sections -O1 "$layout_check/main.c" -o "$layout_check/main" -Wl,-T,functions/lambda-host/coldstart.ld \
    || die "$linker refused functions/lambda-host/coldstart.ld"
  python3 - "$layout_check/main" "$linker" <<'EOF' || die "$linker did not lay out main by functions/lambda-host/coldstart.ld"
import re, subprocess, sys
binary, linker = sys.argv[1], sys.argv[2]
sections = subprocess.run(["readelf", "-SW", binary], check=True, capture_output=True, text=True).stdout
found = re.search(r"\] \.text\.coldstart\s+PROGBITS\s+([0-9a-f]+)\s+\S+\s+([0-9a-f]+)", sections)
symbols = subprocess.run(["nm", binary], check=True, capture_output=True, text=True).stdout
main = re.search(r"^([0-9a-f]+) T main$", symbols, re.M)
if not found or not main:
    sys.exit(f"{linker}: no .text.coldstart section or no main in the linked program")
start, size = int(found.group(1), 16), int(found.group(2), 16)
if not start <= int(main.group(1), 16) < start + size:
    sys.exit(f"{linker}: main is outside .text.coldstart")
print(f"{linker}: main in .text.coldstart ({size} bytes)")
EOF
done

say "DynamoDB Local and moto (SQS) on 127.0.0.1"
scripts/aws-emulators.sh start
eval "$(scripts/aws-emulators.sh env)"

# create_fifo_queues NAME MAX_RECEIVE [ATTRIBUTE=VALUE...]: a fresh FIFO queue and its FIFO dead-letter queue on
# moto, like template.yaml's (redrive after MAX_RECEIVE receives), with these extra attributes on the queue;
# prints "QUEUE_URL DEAD_LETTER_QUEUE_URL", both checked to be on 127.0.0.1.
create_fifo_queues() {
  local urls queue dlq
  urls=$("$tools/venv-moto/bin/python" - "$@" <<'PY'
import json, os, sys, uuid
import boto3
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], region_name=os.environ["AWS_REGION"])
name, max_receive = f"{sys.argv[1]}-{uuid.uuid4().hex[:12]}", sys.argv[2]
extra = dict(argument.split("=", 1) for argument in sys.argv[3:])
dlq = sqs.create_queue(QueueName=f"{name}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
queue = sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true", **extra, "RedrivePolicy": redrive})
print(queue["QueueUrl"], dlq)
PY
) || die "moto did not create the $1 queues"
  read -r queue dlq <<<"$urls"
  [[ "$queue" == http://127.0.0.1:* && "$dlq" == http://127.0.0.1:* ]] || die "moto returned queue URLs off 127.0.0.1: $urls"
  echo "$queue $dlq"
}

say "contract suites: DynamoItemStore on DynamoDB Local, SqsJobQueue and SqsJobSender on moto, the outbox relay and the checkout sweep on both"
run_tests "$log" -- cargo test -p shared --features aws,local,testkit --lib -- adapters::dynamodb adapters::sqs jobs:: --nocapture
run_tests "$log" -- cargo test -p lambda-host --features aws,testkit --lib -- --nocapture
if grep -q "SKIPPED" "$log"; then
  die "an AWS contract suite was skipped although the emulators run"
fi

say "Stripe as the payment provider on Lambda (feature stripe of lambda-host, checkout, orders and checkout-sweep)"
# scripts/test lints the workspace without features, and the scenarios below run the sandbox, so the Stripe wiring is
# linted and unit-tested here: the provider chosen from STOREFRONT_PAYMENTS, its key required, and a build without the
# feature refusing to start (the adapter itself is tested against localstripe by scripts/test-stripe.sh).
cargo clippy -p lambda-host -p checkout -p orders -p checkout-sweep --all-targets --features aws,stripe -- -D warnings
run_tests "$log" -- cargo test -p lambda-host --features aws,stripe --lib -- tests::the_payment_provider tests::a_build_with

say "end-to-end scenarios through cargo lambda watch"
port=$(free_port)
# A fresh random master secret per run (hex text; the functions derive their keys from the text's bytes, and the
# scenarios take the hex of those bytes). The first admin is this run's env file's; the per-client login allowance
# is large because every scenario logs in from 127.0.0.1.
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret_hex=$(printf '%s' "$secret" | od -An -tx1 | tr -d ' \n')
admin_email=admin@scenarios.test
secrets_log="$state/secrets.log"
: >"$secrets_log"
chmod 600 "$secrets_log"
e2e_table="storefront-e2e-$(date +%s)"
# The privacy and orders queues as template.yaml has them (FIFO, dead-letter queue after 5 receives, 14 days'
# retention), with a visibility timeout of 5 s instead of 180 so that a retried event comes back within a scenario.
# Every function under the watcher gets their URLs: the me, checkout and orders functions publish the events they
# commit right away, and the privacy and order-events functions consume them, driven by tests/src/bin/sqs-event-source.rs
# (Lambda's event source mapping, which cargo lambda watch does not have).
# (Assigned first: a failure inside a command substitution fed straight to `read` would not stop the script.)
queues=$(create_fifo_queues privacy 5 MessageRetentionPeriod=1209600 VisibilityTimeout=5)
read -r privacy_queue_url privacy_dlq_url <<<"$queues"
echo "privacy queue on moto: $privacy_queue_url (dead letters: $privacy_dlq_url)"
queues=$(create_fifo_queues orders 5 MessageRetentionPeriod=1209600 VisibilityTimeout=5)
read -r orders_queue_url orders_dlq_url <<<"$queues"
echo "orders queue on moto: $orders_queue_url (dead letters: $orders_dlq_url)"
# The shop's sender, a verified SES identity on moto (as on AWS, where the template's MailFrom must be one).
mail_from=shop@storefront.test
"$tools/venv-moto/bin/python" - "$mail_from" <<'PY' || die "moto did not verify the sender"
import os, sys
import boto3
ses = boto3.client("sesv2", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], region_name=os.environ["AWS_REGION"])
ses.create_email_identity(EmailIdentity=sys.argv[1])
PY
(umask 077; cat >"$state/watch.env" <<EOF
TABLE_NAME=$e2e_table
PRIVACY_QUEUE_URL=$privacy_queue_url
PRIVACY_DEAD_LETTER_QUEUE_URL=$privacy_dlq_url
ORDERS_QUEUE_URL=$orders_queue_url
ORDERS_DEAD_LETTER_QUEUE_URL=$orders_dlq_url
STOREFRONT_MAIL_FROM=$mail_from
AWS_ENDPOINT_URL_SESV2=$AWS_ENDPOINT_URL_SQS
STOREFRONT_SECRET=$secret
STOREFRONT_ADMIN_EMAIL=$admin_email
STOREFRONT_LOGIN_ATTEMPTS_PER_CLIENT=10000
DEMO_SEED=true
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_REGION=$AWS_REGION
AWS_EC2_METADATA_DISABLED=true
AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB
AWS_ENDPOINT_URL_SQS=$AWS_ENDPOINT_URL_SQS
AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true
SMITHY_CLIENT_SDK_CUSTOM_PARTITION=$PWD/functions/lambda-host/layer/aws-partition.json
AWS_LAMBDA_LOG_LEVEL=info
STOREFRONT_SWEEP_GRACE_SECS=1
STOREFRONT_FAULT_POISON_ORDERS=poison-
STOREFRONT_FAULT_CRASH_ORDERS=crash-
EOF
)
# The routes of template.yaml's HTTP API come from the repository's CargoLambda.toml (checked above). With
# --ignore-changes an edit elsewhere in the working tree during the run does not rebuild and restart a function
# mid-scenario (which once left a scenario waiting on a function that never came back). Lambda serves concurrent
# requests from separate instances; with --concurrency 4 the watcher does too (up to 4 processes per function, each
# with its own state and payment breaker), so the commerce races run across processes on one table, as deployed.
cargo lambda watch -A 127.0.0.1 -P "$port" --ignore-changes --concurrency 4 --env-file "$state/watch.env" --features aws >"$state/watch.log" 2>&1 &
watch_pid=$!
t0=$(now_ms)
# Each function compiles on its first request; the products function seeds the demo catalog at its cold start,
# so it goes first and alone. A GET to a POST-only route is enough to build and start its function (405), and an
# anonymous request to a signed-in route enough for the commerce functions (401).
warm_paths=(/products /health /products/00000000000000000000000000000000 /auth/register /auth/login /auth/refresh /auth/logout /me
  /cart /discounts /checkout /orders /payments/sandbox/charges /reports/sales /openapi.json /docs /mcp)
for path in "${warm_paths[@]}"; do
  answered=""
  for _ in $(seq 1 600); do
    kill -0 "$watch_pid" 2>/dev/null || { tail -30 "$state/watch.log" >&2; die "cargo lambda watch exited"; }
    # Any HTTP status counts: the watcher answers once the function is built and started.
    if curl -s -o /dev/null --max-time 600 "http://127.0.0.1:$port$path"; then answered=1; break; fi
    sleep 1
  done
  [[ -n "$answered" ]] || { tail -30 "$state/watch.log" >&2; die "cargo lambda watch did not answer $path"; }
done
wait_for_url "http://127.0.0.1:$port/health" 60 || { tail -30 "$state/watch.log" >&2; die "the health function does not answer 200"; }
echo "cargo lambda watch: the functions of ${#warm_paths[@]} routes built, started and warm after $(( $(now_ms) - t0 )) ms"

# invoke_until_built FUNCTION EVENT_FILE: invokes one of the watcher's functions with an event file and prints its
# answer, retrying while the watcher builds it (the first invoke compiles it; cargo lambda invoke fails until then).
invoke_until_built() {
  local function=$1 event=$2 answer
  for _ in $(seq 1 60); do
    kill -0 "$watch_pid" 2>/dev/null || { tail -30 "$state/watch.log" >&2; die "cargo lambda watch exited"; }
    if answer=$(cargo lambda invoke "$function" -A 127.0.0.1 -P "$port" --data-file "$event" --output-format json 2>"$state/invoke.err"); then
      echo "$answer"
      return 0
    fi
    sleep 5
  done
  cat "$state/invoke.err" >&2
  tail -30 "$state/watch.log" >&2
  die "cargo lambda invoke $function never answered"
}
# The checkout sweep is scheduled, not routed, so an invoke warms it; before the scenarios no order is reserved. The
# watcher gives it a grace of 1 s (STOREFRONT_SWEEP_GRACE_SECS) instead of 120, so that after the scenarios every
# order they left reserved is due (see below); nothing else reads that setting.
answer=$(invoke_until_built checkout-sweep events/schedule.json)
echo "events/schedule.json (checkout sweep, before the scenarios) -> $answer"
python3 -c 'import json, sys
assert json.loads(sys.argv[1]) == {"paid": 0, "released": 0, "failed": 0}, sys.argv[1]' "$answer" \
  || die "the checkout sweep settled orders before any checkout ran"
# The event source mappings of template.yaml (OrderEventsFunction on OrdersQueue, PrivacyFunction on PrivacyQueue),
# driven against the watcher; each logs what it delivered, for the checks below.
cargo build -p tests --bin sqs-event-source
for mapping in "orders order-events $orders_queue_url" "privacy privacy $privacy_queue_url"; do
  read -r name function queue_url <<<"$mapping"
  : >"$state/$name-deliveries.jsonl"  # this run's deliveries only (the state folder outlives a run)
  "${CARGO_TARGET_DIR:-target}/debug/sqs-event-source" "$queue_url" "http://127.0.0.1:$port/2015-03-31/functions/$function/invocations" \
    "$state/$name-deliveries.jsonl" 2>"$state/$name-event-source.err" &
  event_source_pids+=($!)
done
# --nocapture shows what the scenarios measure, such as the checkout race's latency line.
# schemathesis generates no request body that is not UTF-8 here: cargo lambda watch cannot carry one in an API
# Gateway event (API Gateway base64-encodes it) and answers 500 itself without running the function
# (tests/clients/st_hooks.py).
STOREFRONT_SCHEMATHESIS_UTF8_BODIES_ONLY=1 \
STOREFRONT_BASE_URL="http://127.0.0.1:$port" STOREFRONT_SECRET="$secret_hex" STOREFRONT_ADMIN_EMAIL="$admin_email" \
  STOREFRONT_SECRETS_LOG="$secrets_log" STOREFRONT_MAIL_SINK="moto:$AWS_ENDPOINT_URL_SQS" \
  STOREFRONT_STORE_SCAN="dynamodb:$AWS_ENDPOINT_URL_DYNAMODB#$e2e_table" \
  STOREFRONT_HOST_LOG="$state/watch.log" STOREFRONT_METRICS_FORMAT=emf \
  run_tests "$log" -- cargo test -p tests --test it -- catalog:: bad_input:: auth:: admin:: commerce:: after_sale:: mcp:: api_contract:: host_log:: --nocapture

say "the me, checkout and orders functions published every event they committed, and left nothing in the outbox"
# DELETE /me and POST /me/export commit their job into the outbox, and the me function publishes it right after the
# commit: the scenarios make both requests, so both kinds reached the privacy queue (and its consumer). A paid checkout commits
# order.created and a cancellation order.cancelled, published to the orders queue by the checkout and orders
# functions the same way. So nothing is left in the outbox for the relay.
"$tools/venv-moto/bin/python" - "$state/privacy-deliveries.jsonl" "$e2e_table" <<'EOF' | tee -a "$log"
import collections, json, os, sys
import boto3
deliveries, table = sys.argv[1], sys.argv[2]
dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"], region_name=os.environ["AWS_REGION"])
# What the privacy queue carried, as its event source delivered it to the privacy function.
jobs = {}
for line in open(deliveries):
    delivery = json.loads(line)
    jobs[delivery["message_id"]] = json.loads(delivery["body"])
kinds = collections.Counter(job.get("type") for job in jobs.values())
assert kinds["privacy.export"] >= 1 and kinds["privacy.erase"] >= 1, f"the privacy queue holds {dict(kinds)}"
assert set(kinds) <= {"privacy.export", "privacy.erase"}, f"the privacy queue holds {dict(kinds)}"
assert all(set(job) == {"type", "user_id", "requested_at"} for job in jobs.values()), list(jobs.values())[:3]
left = dynamodb.query(TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "OUTBOX"}},
                      Select="COUNT", ConsistentRead=True)["Count"]
assert left == 0, f"{left} events were left in the outbox although the privacy and orders queues were up"
print(f"privacy queue: {kinds['privacy.export']} export and {kinds['privacy.erase']} erase jobs published by the me function; the outbox is empty")
print("test result: ok. 1 passed; 0 failed")
EOF
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "the me function did not publish the privacy jobs it committed"
"$tools/venv-moto/bin/python" - "$state/orders-deliveries.jsonl" "$secrets_log" "$admin_email" <<'EOF' | tee -a "$log"
import collections, json, os, re, sys
deliveries, secrets_log, admin_email = sys.argv[1], sys.argv[2], sys.argv[3]
# What the orders queue carried, as its event source delivered it to the order-events function.
events = {}
for line in open(deliveries):
    delivery = json.loads(line)
    events[delivery["message_id"]] = delivery["body"]
bodies = [json.loads(body) for body in events.values()]
kinds = collections.Counter(body.get("type") for body in bodies)
assert kinds["order.created"] >= 1 and kinds["order.cancelled"] >= 1, f"the orders queue holds {dict(kinds)}"
assert set(kinds) <= {"order.created", "order.cancelled"}, f"the orders queue holds {dict(kinds)}"
# Every order placed through POST /checkout carries its request's W3C traceparent (shared::telemetry).
fields = {"type", "event_id", "order_id", "user_id", "lines", "subtotal", "discount", "total", "at", "traceparent"}
assert all(set(body) == fields for body in bodies), [sorted(body) for body in bodies if set(body) != fields][:3]
assert all(re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", body["traceparent"]) for body in bodies), [body["traceparent"] for body in bodies][:3]
assert all(body["event_id"] == f"{body['type']}-{body['order_id']}" for body in bodies), bodies[:3]
# An event names the order and its user, never an e-mail address, a password or a token.
secrets = [line.strip() for line in open(secrets_log) if line.strip()] + [admin_email]
leaked = [body for body in events.values() if "@" in body or any(secret in body for secret in secrets)]
assert not leaked, f"an order event carries an e-mail address or a secret: {leaked[:1]}"
print(f"orders queue: {kinds['order.created']} order.created and {kinds['order.cancelled']} order.cancelled events published by the checkout and orders functions")
print("test result: ok. 1 passed; 0 failed")
EOF
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "the checkout and orders functions did not publish the order events they committed"

say "invariant 4 on Lambda: a poison order event reaches the orders DLQ after maxReceiveCount, a malformed one at once"
# The order-events function (a debug build, which reads the test fault STOREFRONT_FAULT_POISON_ORDERS=poison-) fails
# every event of an order whose id starts with poison-; the queue's redrive policy (5 receives, 5 s apart here) must
# move it to the dead-letter queue, while a malformed message is copied there by the function at once and an
# ordinary event sent in the same breath is handled once and deleted.
"$tools/venv-moto/bin/python" - "$orders_queue_url" "$orders_dlq_url" "$state/orders-deliveries.jsonl" "$state/watch.log" <<'EOF' | tee -a "$log"
import json, os, sys, time, uuid
import boto3
queue, dlq, deliveries, watch_log = sys.argv[1:5]
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], region_name=os.environ["AWS_REGION"])
run = uuid.uuid4().hex[:12]
def event(order_id):
    return json.dumps({"type": "order.created", "event_id": f"order.created-{order_id}", "order_id": order_id, "user_id": f"u-{run}",
                       "lines": [], "subtotal": {"amount": 0, "currency": "EUR"}, "discount": None,
                       "total": {"amount": 0, "currency": "EUR"}, "at": int(time.time() * 1000)})
bodies = {"poison": event(f"poison-{run}"), "malformed": json.dumps({"type": "order.created", "run": run}), "ordinary": event(f"ordinary-{run}")}
for kind, body in bodies.items():
    sqs.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId=f"{kind}-{run}", MessageDeduplicationId=f"{kind}-{run}")
dead = []
deadline = time.time() + 180
while time.time() < deadline:
    dead = [m["Body"] for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])]
    if bodies["poison"] in dead and bodies["malformed"] in dead:
        break
    time.sleep(1)
assert bodies["poison"] in dead, f"the poison event never reached the dead-letter queue: {dead}"
assert bodies["malformed"] in dead, f"the malformed message never reached the dead-letter queue: {dead}"
assert bodies["ordinary"] not in dead, "the ordinary event was dead-lettered"
delivered = [json.loads(line)["body"] for line in open(deliveries)]
counts = {kind: delivered.count(body) for kind, body in bodies.items()}
assert counts == {"poison": 5, "malformed": 1, "ordinary": 1}, f"deliveries: {counts} (the poison 5 times, the others once)"
log = open(watch_log).read().splitlines()
named = [line for line in log if f"order.created-poison-{run}" in line and "test fault" in line]
assert named, "no log line names the poison event and the reason it failed"
print(f"orders DLQ: the poison event after exactly 5 deliveries, the malformed one after 1; the ordinary one handled once; {len(named)} log lines name the poison and its reason")
print("test result: ok. 1 passed; 0 failed")
EOF
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "a poison order event did not reach the dead-letter queue as invariant 4 says"

say "invariant 3 on Lambda: the order-events function crashes mid-batch, and every effect still happens once"
# The order-events function (a debug build, which reads the test fault STOREFRONT_FAULT_CRASH_ORDERS=crash-) fails
# its whole invocation right after handling the first delivery of each event of an order whose id starts with
# crash-, as a crash would: SQS delivers the batch again after the visibility timeout. Two such events, for a real
# account and in a currency of their own, must each be delivered more than once, yet each confirmation is in moto's
# SES once and the day's report counts two orders.
admin_password=$(sed -n 's/^const ADMIN_PASSWORD: &str = "\(.*\)";$/\1/p' tests/it/admin.rs)
[[ -n "$admin_password" ]] || die "cannot read ADMIN_PASSWORD from tests/it/admin.rs"
ADMIN_PASSWORD="$admin_password" "$tools/venv-moto/bin/python" - "http://127.0.0.1:$port" "$orders_queue_url" "$state/orders-deliveries.jsonl" "$admin_email" "$secrets_log" <<'EOF' | tee -a "$log"
import json, os, random, string, sys, time, urllib.error, urllib.request, uuid
import boto3
base, queue, deliveries, admin_email, secrets_log = sys.argv[1:6]
def call(method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)
run = uuid.uuid4().hex[:12]
email, password = f"crash-{run}@example.com", f"crash-password-{run}"
with open(secrets_log, "a") as log:
    log.write(password + "\n")
user = call("POST", "/auth/register", {"email": email, "password": password})
for attempt in range(10):
    try:
        admin = call("POST", "/auth/login", {"email": admin_email, "password": os.environ["ADMIN_PASSWORD"]})["access_token"]
        break
    except urllib.error.HTTPError as error:  # 429: the scenarios spent the admin's login allowance; it refills
        if error.code != 429 or attempt == 9:
            raise
        time.sleep(int(error.headers.get("retry-after", "10")) + 1)
with open(secrets_log, "a") as log:
    log.write(admin + "\n")
currency = "".join(random.choice(string.ascii_uppercase) for _ in range(3))
at = int(time.time() * 1000)
def event(order_id, units):
    price = {"amount": 700, "currency": currency}
    line = {"product_id": f"p-{run}", "sku": f"CRASH-{run}", "name": "Crash lamp", "unit_price": price, "quantity": units,
            "line_total": {"amount": 700 * units, "currency": currency}}
    total = {"amount": 700 * units, "currency": currency}
    return json.dumps({"type": "order.created", "event_id": f"order.created-{order_id}", "order_id": order_id, "user_id": user["id"],
                       "lines": [line], "subtotal": total, "discount": None, "total": total, "at": at})
orders = {f"crash-{run}-1": 1, f"crash-{run}-2": 2}
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], region_name=os.environ["AWS_REGION"])
for order_id, units in orders.items():
    sqs.send_message(QueueUrl=queue, MessageBody=event(order_id, units), MessageGroupId=order_id, MessageDeduplicationId=order_id)
def mails():
    with urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL_SQS"] + "/moto-api/data.json", timeout=30) as response:
        records = json.load(response).get("ses", {}).get("RawMessage", [])
    records = records if isinstance(records, list) else list(records.values())
    return [record.get("raw_data", "") for record in records]
def confirmations(order_id):
    return sum(1 for raw in mails() if f"order {order_id} confirmed" in raw)
deadline = time.time() + 120
while time.time() < deadline and not all(confirmations(order_id) for order_id in orders):
    time.sleep(1)
time.sleep(8)  # longer than the queue's visibility timeout: a second delivery would have sent its mail by now
counts = {order_id: confirmations(order_id) for order_id in orders}
assert counts == {order_id: 1 for order_id in orders}, f"confirmations after the crash: {counts}"
delivered = [json.loads(line)["body"] for line in open(deliveries)]
redelivered = {order_id: sum(1 for body in delivered if json.loads(body).get("order_id") == order_id) for order_id in orders}
assert all(count >= 2 for count in redelivered.values()), f"the crash did not make SQS deliver again: {redelivered}"
day = time.strftime("%Y-%m-%d", time.gmtime(at / 1000))
report = call("GET", f"/reports/sales?date={day}", token=admin)
totals = [t for t in report["totals"] if t["currency"] == currency]
assert len(totals) == 1 and (totals[0]["orders"], totals[0]["units"], totals[0]["revenue"]["amount"]) == (2, 3, 2100), f"the report counts {totals}"
print(f"crash mid-batch: the events were delivered {redelivered} times; each confirmation is in SES once and the report counts 2 orders, 3 units")
print("test result: ok. 1 passed; 0 failed")
EOF
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "an effect of an order event was not exactly once across a crash (invariant 3)"

say "login timing under cargo lambda watch (debug build, Argon2id at OWASP's parameters)"
python3 - "http://127.0.0.1:$port" "$secrets_log" <<'EOF'
import json, sys, time, urllib.error, urllib.request, uuid
base, secrets_log = sys.argv[1], sys.argv[2]
def call(path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    return status, payload, (time.perf_counter() - started) * 1000
email, password = f"timing-{uuid.uuid4().hex[:12]}@example.com", f"timing-{uuid.uuid4().hex}"
with open(secrets_log, "a") as log:
    log.write(password + "\n")
status, _, register_ms = call("/auth/register", {"email": email, "password": password})
assert status == 201, f"register answered {status}"
samples = []
for _ in range(3):  # the per-account allowance is a burst of 5
    status, payload, ms = call("/auth/login", {"email": email, "password": password})
    assert status == 200, f"login answered {status}"
    tokens = json.loads(payload)
    with open(secrets_log, "a") as log:
        log.write(tokens["access_token"] + "\n" + tokens["refresh_token"] + "\n")
    samples.append(ms)
samples.sort()
print(f"register: {register_ms:.0f} ms; login (warm, 3 runs): median {samples[1]:.0f} ms, min {samples[0]:.0f} ms, max {samples[2]:.0f} ms")
EOF

say "no password, token or key in cargo lambda watch's log"
grep -v '^$' "$secrets_log" >"$state/secrets.txt" || true
printf '%s\n%s\n' "$secret" "$secret_hex" >>"$state/secrets.txt"
secrets_count=$(wc -l <"$state/secrets.txt")
(( secrets_count >= 20 )) || die "the scenarios noted only $secrets_count passwords and tokens in STOREFRONT_SECRETS_LOG"
grep -q "signed in" "$state/watch.log" || die "cargo lambda watch's log holds no login line: the check below would prove nothing"
if grep -qFf "$state/secrets.txt" "$state/watch.log"; then
  grep -noFf "$state/secrets.txt" "$state/watch.log" | cut -c1-60 | head -5 >&2
  die "a password, token or key used by the scenarios appears in cargo lambda watch's log"
fi
echo "neither the master secret nor any of $secrets_count passwords, tokens and keys appears in cargo lambda watch's log ($(wc -l <"$state/watch.log") lines)"
echo "test result: ok. 1 passed; 0 failed" >>"$log"

say "cargo lambda invoke with the event files in events/"
for event in events/apigw-v2-health.json events/apigw-rest-v1-health-prod-stage.json; do
  answer=$(cargo lambda invoke health -A 127.0.0.1 -P "$port" --data-file "$event" --output-format json)
  echo "$event -> $answer"
  python3 -c 'import json, sys
answer = json.loads(sys.argv[1])
assert answer["statusCode"] == 200, answer
assert json.loads(answer["body"]) == {"status": "ok", "store": "ok"}, answer
print("test result: ok. 1 passed; 0 failed")' "$answer" | tee -a "$log"
done

say "the outbox relay function under cargo lambda watch, invoked with events/schedule.json"
# The watcher above serves every binary with one environment, so the relay works on the scenarios' table and privacy
# queue. The first invoke builds it and finds the outbox empty; then one event is seeded into the outbox, and the next
# invoke must publish exactly that event to the privacy queue and leave the outbox empty.
relay_event=events/schedule.json
answer=$(invoke_until_built outbox-relay "$relay_event")
echo "$relay_event (empty outbox) -> $answer"
python3 -c 'import json, sys
assert json.loads(sys.argv[1]) == {"published": 0, "failed": 0, "more": False}, sys.argv[1]' "$answer" \
  || die "the outbox relay found events in an outbox the me function should have emptied"
# One event, laid out as shared::outbox::Event::write and shared::adapters::dynamodb write it: partition OUTBOX, sort
# key "<20-digit commit milliseconds>#<event id>", version 1, and the event as JSON text in `data`.
seeded=$("$tools/venv-moto/bin/python" - "$e2e_table" <<'EOF'
import json, os, sys, time, uuid
import boto3
dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"], region_name=os.environ["AWS_REGION"])
millis = int(time.time() * 1000)
user = f"u-relay-{uuid.uuid4().hex[:12]}"
body = json.dumps({"type": "privacy.export", "user_id": user, "requested_at": millis}, separators=(",", ":"))
event = {"id": f"privacy.export.{user}.{millis}", "topic": "privacy", "body": body, "committed_at": millis}
item = {"pk": {"S": "OUTBOX"}, "sk": {"S": f"{millis:020d}#{event['id']}"}, "version": {"N": "1"}, "data": {"S": json.dumps(event)}}
dynamodb.put_item(TableName=sys.argv[1], Item=item, ConditionExpression="attribute_not_exists(pk)")
print(body)
EOF
) || die "could not seed the outbox"
answer=$(cargo lambda invoke outbox-relay -A 127.0.0.1 -P "$port" --data-file "$relay_event" --output-format json) \
  || { tail -30 "$state/watch.log" >&2; die "cargo lambda invoke outbox-relay failed"; }
echo "$relay_event (one event seeded) -> $answer"
"$tools/venv-moto/bin/python" - "$answer" "$seeded" "$state/privacy-deliveries.jsonl" "$e2e_table" <<'EOF' | tee -a "$log"
import json, os, sys, time
import boto3
answer, seeded, deliveries, table = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
assert answer == {"published": 1, "failed": 0, "more": False}, f"the relay answered {answer}"
dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"], region_name=os.environ["AWS_REGION"])
# The privacy queue's event source hands the relayed job to the privacy function (which finds no such account and
# acks it): the job must show up in what the queue delivered, once.
for _ in range(60):
    delivered = [json.loads(line)["body"] for line in open(deliveries)]
    if seeded in delivered:
        break
    time.sleep(0.5)
assert delivered.count(seeded) == 1, f"the privacy queue delivered the seeded job {delivered.count(seeded)} times"
left = dynamodb.query(TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "OUTBOX"}},
                      Select="COUNT", ConsistentRead=True)["Count"]
assert left == 0, f"{left} events are still in the outbox after the relay published them"
print("outbox relay: the seeded event was published to the privacy queue (and delivered once) and removed from the outbox")
print("test result: ok. 1 passed; 0 failed")
EOF
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "the outbox relay did not publish the seeded event"

say "the checkout sweep function under cargo lambda watch, invoked with events/schedule.json"
# A checkout whose payment keeps timing out answers 503 and leaves its order reserved, listed in the PENDING_ORDERS
# partition (shared::commerce::orders) for a retry or the sweep; the scenarios make such checkouts. With the watcher's
# grace of 1 s every one of them is due now: the sweep must settle exactly those (complete the ones the sandbox
# charged, release the others), say so, and leave the unsettled list empty.
unsettled_count() {
  "$tools/venv-moto/bin/python" - "$e2e_table" <<'EOF'
import os, sys
import boto3
dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"], region_name=os.environ["AWS_REGION"])
print(dynamodb.query(TableName=sys.argv[1], KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "PENDING_ORDERS"}},
                     Select="COUNT", ConsistentRead=True)["Count"])
EOF
}
unsettled=$(unsettled_count) || die "could not read the unsettled orders"
answer=$(cargo lambda invoke checkout-sweep -A 127.0.0.1 -P "$port" --data-file events/schedule.json --output-format json) \
  || { tail -30 "$state/watch.log" >&2; die "cargo lambda invoke checkout-sweep failed"; }
echo "events/schedule.json ($unsettled orders unsettled) -> $answer"
left=$(unsettled_count) || die "could not read the unsettled orders"
again=$(cargo lambda invoke checkout-sweep -A 127.0.0.1 -P "$port" --data-file events/schedule.json --output-format json) \
  || { tail -30 "$state/watch.log" >&2; die "cargo lambda invoke checkout-sweep failed"; }
python3 - "$answer" "$unsettled" "$left" "$again" <<'EOF' | tee -a "$log"
import json, sys
answer, unsettled, left, again = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
assert set(answer) == {"paid", "released", "failed"}, f"the sweep answered {answer}"
# lambda_host::SWEEP_MAX_PER_RUN is 100; the scenarios leave far fewer.
assert 1 <= unsettled <= 100, f"{unsettled} orders were unsettled: the scenarios' timed-out checkout should have left one, and at most 100 are swept a run"
assert answer["failed"] == 0 and answer["paid"] + answer["released"] == unsettled, f"{unsettled} orders were due, the sweep answered {answer}"
assert left == 0, f"{left} orders are still unsettled after the sweep"
assert again == {"paid": 0, "released": 0, "failed": 0}, f"a second run found more to settle: {again}"
print(f"checkout sweep: the {unsettled} reserved orders the scenarios left were settled ({answer['paid']} paid, {answer['released']} released); a second run found nothing")
print("test result: ok. 1 passed; 0 failed")
EOF
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "the checkout sweep did not settle the orders left reserved"

say "the jobs function (SQS consumer) under cargo lambda watch, with the test-only job kind (feature testkit)"
# Queues on moto like template.yaml's (FIFO, dead-letter queue, redrive), with a short visibility timeout and
# receive count so that the redrive test takes seconds.
max_receive=3
queues=$(create_fifo_queues jobs "$max_receive" VisibilityTimeout=1)
read -r jobs_queue_url jobs_dlq_url <<<"$queues"
cat >"$state/jobs.env" <<EOF
JOBS_QUEUE_URL=$jobs_queue_url
JOBS_DEAD_LETTER_QUEUE_URL=$jobs_dlq_url
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_REGION=$AWS_REGION
AWS_EC2_METADATA_DISABLED=true
AWS_ENDPOINT_URL_SQS=$AWS_ENDPOINT_URL_SQS
AWS_LAMBDA_LOG_LEVEL=warn
EOF
jobs_port=$(free_port)
cargo lambda watch -A 127.0.0.1 -P "$jobs_port" --ignore-changes --env-file "$state/jobs.env" -p jobs --features aws,testkit \
  >"$state/jobs-watch.log" 2>&1 &
jobs_watch_pid=$!

# (a) One batch, one failing message: the response names exactly that message. The dead-letter record is
# copied to the dead-letter queue and not reported; the acked ones are not reported.
event=events/sqs-jobs-batch-one-failure.json
answer=""
for _ in $(seq 1 60); do
  kill -0 "$jobs_watch_pid" 2>/dev/null || { tail -30 "$state/jobs-watch.log" >&2; die "cargo lambda watch (jobs) exited"; }
  # The first invoke compiles the function; cargo lambda invoke fails until the watcher answers.
  if answer=$(cargo lambda invoke jobs -A 127.0.0.1 -P "$jobs_port" --data-file "$event" --output-format json 2>"$state/invoke.err"); then break; fi
  answer=""
  sleep 5
done
[[ -n "$answer" ]] || { cat "$state/invoke.err" >&2; tail -30 "$state/jobs-watch.log" >&2; die "cargo lambda invoke jobs never answered"; }
echo "$event -> $answer"
"$tools/venv-moto/bin/python" - "$answer" "$event" "$jobs_dlq_url" <<'EOF' | tee -a "$log"
import json, os, sys
import boto3
answer, event = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
outcomes = {r["messageId"]: json.loads(r["body"])["outcome"] for r in event["Records"]}
retried = [m for m, o in outcomes.items() if o == "retry"]
dead = [m for m, o in outcomes.items() if o == "dead-letter"]
assert len(retried) == 1 and len(dead) == 1, outcomes
failures = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
assert failures == retried, f"reported {failures}, expected exactly {retried}"
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], region_name=os.environ["AWS_REGION"])
letters = sqs.receive_message(QueueUrl=sys.argv[3], MaxNumberOfMessages=10, VisibilityTimeout=0,
                              MessageAttributeNames=["All"]).get("Messages", [])
originals = [m["MessageAttributes"]["storefront-original-id"]["StringValue"] for m in letters]
assert originals == dead, f"the dead-letter queue holds {originals}, expected {dead}"
for m in letters:
    sqs.delete_message(QueueUrl=sys.argv[3], ReceiptHandle=m["ReceiptHandle"])
print("sqs batch: exactly the failing message was reported; the dead-letter one is in the DLQ")
print("test result: ok. 1 passed; 0 failed")
EOF
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "the jobs function's batch response is wrong"

# (b) Driven like an event source mapping: receive from moto, invoke the function with the batch, delete what
# it did not report, leave the reported ones to become visible again. A job that always fails must reach the
# dead-letter queue after exactly maxReceiveCount receives; one that succeeds is received once and deleted.
"$tools/venv-moto/bin/python" - "$jobs_queue_url" "$jobs_dlq_url" "$max_receive" "http://127.0.0.1:$jobs_port" <<'EOF' | tee -a "$log"
import json, os, sys, time, urllib.request, uuid
import boto3
queue, dlq, max_receive, watch = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], region_name=os.environ["AWS_REGION"])
run = uuid.uuid4().hex
bodies = {
    "failing": json.dumps({"type": "testkit.outcome", "outcome": "retry", "run": run}),
    "passing": json.dumps({"type": "testkit.outcome", "outcome": "ack", "run": run}),
}
for kind, body in bodies.items():
    sqs.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId=f"{kind}-{run}", MessageDeduplicationId=f"{kind}-{run}")
receives = {kind: 0 for kind in bodies}
kind_of = {body: kind for kind, body in bodies.items()}
dead = []
deadline = time.time() + 60
while time.time() < deadline:
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   AttributeNames=["All"]).get("Messages", [])
    if messages:
        records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                    "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs.fifo",
                    "awsRegion": "us-east-1"} for m in messages]
        request = urllib.request.Request(f"{watch}/2015-03-31/functions/jobs/invocations",
                                         data=json.dumps({"Records": records}).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        for m in messages:
            receives[kind_of[m["Body"]]] += 1
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    dead = [m for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
            if m["Body"] == bodies["failing"]]
    if dead:
        break
assert dead, f"the failing job never reached the dead-letter queue (receives: {receives})"
assert receives["failing"] == max_receive, f"the failing job was received {receives['failing']} times, not {max_receive}"
assert receives["passing"] == 1, f"the passing job was received {receives['passing']} times, not once"
left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
assert left == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}, left
print(f"sqs redrive: the failing job reached the DLQ after exactly {max_receive} receives; the passing one was received once")
print("test result: ok. 1 passed; 0 failed")
EOF
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "the redrive test through the jobs function failed"

say "AWS tier done in $(( ($(now_ms) - started) / 1000 )) s"
tally "$log"
