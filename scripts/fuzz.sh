#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer). Not part of the test suite: it runs for minutes.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   run each target (default 60 s, all targets)
#   scripts/fuzz.sh seeds                               rebuild fuzz/seeds/ from fixtures/
#
# Targets: load_auto (format detection + the adapter it picks), load_as_format (every adapter,
# forced by the first byte), detect (all detectors on whatever loads), brain_record (the brain's
# record reader and writer), mcp_request (raw JSON-RPC lines to the MCP server after a handshake;
# it must still answer a ping). Seeds come from the project's fixtures; what the fuzzer learns
# goes to target/fuzz-corpus/ (not committed). A crash is saved under fuzz/artifacts/TARGET/;
# copy it to tests/fuzz-regressions/TARGET/ so the test suite replays it forever.
#
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them. There
# is no sanitizer (`-s none`): the code forbids `unsafe`, so the fuzzer looks for panics,
# overflows (debug assertions on) and stack exhaustion.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ALL_TARGETS=(load_auto load_as_format detect brain_record mcp_request)
export RUSTC_BOOTSTRAP=1 CARGO_INCREMENTAL=0

formats=(otlp openinference-spans trail langsmith langgraph n8n dify-nodes dify-messages
    openclaw-session openclaw-trajectory claude-code codex atif pisama-spans autogen-agentchat
    ag2-runtime-log who-and-when mad tau-bench generic-chat pisama)

build_seeds() {
    rm -rf fuzz/seeds && mkdir -p fuzz/seeds/load_as_format fuzz/seeds/brain_record
    # load_as_format: each trace fixture behind the selector byte of its own format (the
    # fixture folder is named after the format), in the order of `Format::ALL`.
    for i in "${!formats[@]}"; do
        dir="fixtures/traces/${formats[$i]}"
        [ -d "$dir" ] || continue
        while IFS= read -r -d '' f; do
            out="fuzz/seeds/load_as_format/${formats[$i]}-$(basename "$f")"
            { printf "\\x$(printf %02x "$i")"; cat "$f"; } >"$out"
        done < <(find "$dir" -type f -print0)
    done
    # brain_record: one record of each kind, written by pisama itself in a scratch brain.
    cargo build --quiet
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' RETURN
    (
        cd "$scratch" && git init -q . && HOME="$scratch" "$ROOT/target/debug/pisama" brain init >/dev/null
        for kind in context architecture decision spec plan memory workflow prompt work_request review note; do
            printf 'Why: seeds cover every kind.\n\n- a list item\n- `code` and **bold**\n' |
                HOME="$scratch" "$ROOT/target/debug/pisama" brain new "$kind" \
                    --title "Fuzz seed $kind: keep ids stable" --body - --tag fuzz --scope 'src/**' >/dev/null
        done
    )
    find "$scratch/.brain" -name '*.md' -newer "$scratch/.git" -exec cp {} fuzz/seeds/brain_record/ \;
    ls fuzz/seeds/brain_record | wc -l | xargs echo "brain_record seeds:"
}

seeds_for() {
    case "$1" in
        load_auto | detect) echo "fixtures/traces fixtures/detectors tests/fuzz-regressions/$1" ;;
        load_as_format) echo "fuzz/seeds/load_as_format tests/fuzz-regressions/$1" ;;
        brain_record) echo "fuzz/seeds/brain_record fixtures/brain tests/fuzz-regressions/$1" ;;
        mcp_request) echo "fuzz/seeds/mcp_request tests/fuzz-regressions/$1" ;;
        *) echo "unknown target $1" >&2; exit 2 ;;
    esac
}

if [ "${1:-}" = seeds ]; then
    build_seeds
    exit 0
fi

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
(cd fuzz && cargo fuzz build -s none -a "${targets[@]/#/}" >/dev/null 2>&1 || cargo fuzz build -s none -a)

printf '%-16s %8s %12s %10s %s\n' target seconds execs execs/s result
status=0
for t in "${targets[@]}"; do
    work="target/fuzz-corpus/$t"
    mkdir -p "$work" "tests/fuzz-regressions/$t"
    log="target/fuzz-corpus/$t.log"
    # shellcheck disable=SC2046
    if (cd fuzz && cargo fuzz run -s none -a "$t" "../$work" $(seeds_for "$t" | sed 's|[^ ]*|../&|g') -- \
        -max_total_time="$seconds" -print_final_stats=1 -max_len=262144 -rss_limit_mb=4096 -timeout=20) >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (see $log and fuzz/artifacts/$t/)"
        status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    printf '%-16s %8s %12s %10s %s\n' "$t" "$seconds" "${execs:-0}" "${rate:-0}" "$result"
done
exit $status
