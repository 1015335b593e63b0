#!/usr/bin/env bash
# The AWS tier of the tests: template checks (cfn-lint, `sam validate --lint`, and the checks those two do not
# make), the DynamoDB and SQS adapters' contract suites against DynamoDB Local and moto, and the end-to-end
# scenarios through `cargo lambda watch` (the Lambda binaries on the emulators), plus `cargo lambda invoke`
# with the event files in events/. Everything listens on 127.0.0.1; nothing reaches AWS. It never skips a step:
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
cleanup() {
  if [[ -n "$watch_pid" ]] && kill -0 "$watch_pid" 2>/dev/null; then
    # SIGINT lets cargo-lambda stop the function processes it started.
    kill -INT "$watch_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$watch_pid" 2>/dev/null || true
  fi
  scripts/aws-emulators.sh stop || true
}
trap cleanup EXIT

# No process started here may look for credentials anywhere but these dummy keys.
export AWS_ACCESS_KEY_ID=storefrontlocal AWS_SECRET_ACCESS_KEY=storefrontlocal AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0

say "AWS tools (installed once into $STOREFRONT_TOOLS/aws)"
scripts/aws-emulators.sh install all
tools="$STOREFRONT_TOOLS/aws"
export PATH="$tools/venv-lambda/bin:$PATH"

say "template.yaml: cfn-lint, sam validate --lint, and the project's own checks"
"$tools/venv-sam/bin/cfn-lint" template.yaml
"$tools/venv-sam/bin/sam" validate --lint --template template.yaml --region us-east-1
"$tools/venv-sam/bin/python" - <<'EOF'
# Checks cfn-lint and sam validate do not make: Refs inside serverless functions, env names against the code,
# least privilege, queue timeouts against consumer timeouts, and batch sizes.
import pathlib, re, sys
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
write_actions = re.compile(r"dynamodb:(Put|Delete|Update|BatchWrite|TransactWrite|\*)")
env_names = set(globals_fn.get("Environment", {}).get("Variables", {}))
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
    consts = dict(re.findall(r'const ([A-Z_]+): &str = "([A-Z_]+)";', main.read_text()))
    names = env_names | set(props.get("Environment", {}).get("Variables", {}))
    for const, value in consts.items():
        if value != "DEMO_SEED" and value not in names:
            problems.append(f"{name}: {main} reads {value}, which the template does not set")
    statements = [s for p in props.get("Policies", []) if isinstance(p, dict) for s in p.get("Statement", [])]
    actions = [a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    if any(isinstance(p, str) or "DynamoDBCrudPolicy" in p for p in props.get("Policies", [])):
        problems.append(f"{name}: use explicit least-privilege statements, not managed or CRUD policies")
    reads_only = "dynamodb:Query" in actions or all(a == "dynamodb:GetItem" for a in actions)
    if reads_only and any(write_actions.match(a) for a in actions):
        problems.append(f"{name}: a read-only function has write actions {actions}")
    timeout = props.get("Timeout", globals_fn.get("Timeout", 3))
    for event_name, event in props.get("Events", {}).items():
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
for name, queue in resources.items():
    if queue["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" not in queue.get("Properties", {}):
        if not any(r.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn", {}).get("Fn::GetAtt", [None])[0] == name
                   for r in resources.values() if r["Type"] == "AWS::SQS::Queue"):
            problems.append(f"{name}: a queue without a dead-letter queue")
table = [r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
if len(table) != 1 or table[0]["Properties"].get("TimeToLiveSpecification", {}).get("AttributeName") != "expires_at":
    problems.append("the template must hold one table with TTL on expires_at")
if problems:
    sys.exit("template.yaml:\n  " + "\n  ".join(problems))
print(f"template.yaml: {len(functions)} functions, own checks passed")
EOF

say "DynamoDB Local and moto (SQS) on 127.0.0.1"
scripts/aws-emulators.sh start
eval "$(scripts/aws-emulators.sh env)"

say "contract suites: DynamoItemStore on DynamoDB Local, SqsJobQueue on moto"
run_tests "$log" -- cargo test -p shared --features aws,local,testkit --lib -- adapters::dynamodb adapters::sqs --nocapture
if grep -q "SKIPPED" "$log"; then
  die "an AWS contract suite was skipped although the emulators run"
fi

say "end-to-end scenarios through cargo lambda watch"
port=$(free_port)
cat >"$state/watch.env" <<EOF
TABLE_NAME=storefront-e2e-$(date +%s)
STOREFRONT_SECRET=local-only-secret-never-used-on-aws-0123456789
DEMO_SEED=true
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_REGION=$AWS_REGION
AWS_EC2_METADATA_DISABLED=true
AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB
AWS_ENDPOINT_URL_SQS=$AWS_ENDPOINT_URL_SQS
AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true
AWS_LAMBDA_LOG_LEVEL=warn
EOF
# The routes of template.yaml's HTTP API, for the watcher (unmatched paths go where $default goes).
cat >"$state/CargoLambda.toml" <<'EOF'
[watch.router]
"/health" = "health"
"/products" = "products"
"/products/{id}" = "product"
"/{*rest}" = "health"
EOF
cargo lambda watch --global "$state/CargoLambda.toml" -A 127.0.0.1 -P "$port" --env-file "$state/watch.env" \
  --features aws >"$state/watch.log" 2>&1 &
watch_pid=$!
t0=$(now_ms)
# Each function compiles on its first request; the products function seeds the demo catalog at its cold start,
# so it goes first and alone.
for path in /products /health /products/00000000000000000000000000000000; do
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
echo "cargo lambda watch: three functions built, started and warm after $(( $(now_ms) - t0 )) ms"
STOREFRONT_BASE_URL="http://127.0.0.1:$port" run_tests "$log" -- cargo test -p tests --test it -- catalog:: bad_input::

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

say "AWS tier done in $(( ($(now_ms) - started) / 1000 )) s"
tally "$log"
