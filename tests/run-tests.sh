#!/usr/bin/env bash
# Run libnetcore's test binaries, then its tests/check-*.sh scripts, and end
# with one line "N passed, N failed, N skipped". Exits 1 if any failed.
#
# usage: tests/run-tests.sh [--no-scripts] [BINARY_OR_DIR ...]
#   BINARY_OR_DIR  test binaries, or directories whose test_* files are run
#                  (default: $NC_BUILD/tests)
#   --no-scripts   skip tests/check-*.sh (sanitizer and valgrind runs)
# environment:
#   NC_BUILD         build root (default build), handed to the scripts
#   NC_TEST_WRAPPER  command put in front of every binary ("valgrind ...")
#   NC_TEST_TIMEOUT  seconds one binary or script may take (default 120;
#                    a script may ask for more: "# run-tests: timeout N")
#   NC_TEST_VERBOSE  1: print the output of passing tests too
#   NC_TEST_BACKENDS the loop backends to run every binary on, one pass
#                    each with NC_BACKEND set ("epoll io_uring"; default:
#                    one pass, the library's own choice). A backend that
#                    cannot run here (netcore-doctor backend NAME) is
#                    skipped with its reason, or fails under CI=true.
#
# Counts are per cmocka case where the binary's summary can be read, and
# one per binary otherwise; a script counts one and skips with exit 77.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
export NC_BUILD=${NC_BUILD:-build}
export NC_SOURCE_DIR=$root     # where tests find tests/*.sh
build=$NC_BUILD
timeout_s=${NC_TEST_TIMEOUT:-120}
read -r -a wrapper <<<"${NC_TEST_WRAPPER:-}"

run_scripts=1
targets=()
for arg in "$@"; do
    case $arg in
    --no-scripts) run_scripts=0 ;;
    -h | --help)
        sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) targets+=("$arg") ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    case $build in
    /*) default=$build/tests ;;
    *) default=$root/$build/tests ;;
    esac
    [ -d "$default" ] && targets=("$default")
fi

binaries=()
for t in ${targets[@]+"${targets[@]}"}; do
    if [ -d "$t" ]; then
        for b in "$t"/test_*; do
            [ -f "$b" ] && [ -x "$b" ] && binaries+=("$b")
        done
    elif [ -x "$t" ]; then
        binaries+=("$t")
    else
        echo "run-tests: $t: no such test binary or directory" >&2
        exit 2
    fi
done

scripts=()
if [ "$run_scripts" = 1 ]; then
    for s in "$root"/tests/check-*.sh; do
        [ -f "$s" ] && scripts+=("$s")
    done
fi

passed=0
failed=0
skipped=0
failures=()
log=$(mktemp "${TMPDIR:-/tmp}/nc-test.XXXXXX")
trap 'rm -f "$log"' EXIT

# cmocka_count LABEL: the number of cases cmocka reported as LABEL (PASSED,
# FAILED, SKIPPED) in $log: from its closing summary when it got that far,
# else from the per-case lines ("OK" stands for PASSED there).
cmocka_count() {
    local n
    if grep -qE '^\[ +PASSED +\] [0-9]+ test' "$log"; then
        n=$(sed -nE "s/^\[ +$1 +\] ([0-9]+) test.*/\1/p" "$log" | head -n 1)
        echo "${n:-0}"
    else
        local label=$1
        [ "$label" = PASSED ] && label=OK
        grep -cE "^\[ +$label +\] " "$log"
    fi
}

# What skipped cases printed before skipping (the reason, if they said).
skip_reasons() {
    awk '/^\[ RUN +\] / { name = $NF; text = ""; next }
         /^\[ +SKIPPED +\] / { if (name != "" && $NF == name && text != "")
                                   printf "%s", text; name = ""; next }
         /^\[/ { name = ""; next }
         name != "" { text = text "    | " name ": " $0 "\n" }' "$log"
}

show_log() {
    sed 's/^/    | /' "$log"
}

# describe OK SKIPPED FAILED: "3 ok, 1 skipped", the case counts of a binary.
describe() {
    printf '%s ok' "$1"
    [ "$2" -gt 0 ] && printf ', %s skipped' "$2"
    [ "$3" -gt 0 ] && printf ', %s failed' "$3"
    return 0
}

# run NAME KIND COMMAND...: run one binary or script and tally its result.
run() {
    local name=$1 kind=$2 start rc secs
    shift 2
    start=$EPOCHREALTIME
    # The braces keep bash's own "Killed" notice out of the report.
    { timeout --kill-after=10 "$timeout_s" "$@" >"$log" 2>&1 </dev/null; } 2>/dev/null
    rc=$?
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')

    local ok=0 bad=0 skip=0 detail=""
    if [ "$kind" = binary ]; then
        ok=$(cmocka_count PASSED)
        bad=$(cmocka_count FAILED)
        skip=$(cmocka_count SKIPPED)
    fi

    if [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ]; then
        [ "$kind" = binary ] && [ "$((ok + skip))" -eq 0 ] && ok=1
        [ "$kind" = script ] && ok=1
        passed=$((passed + ok))
        skipped=$((skipped + skip))
        [ "$kind" = binary ] && detail=$(describe "$ok" "$skip" 0)
        printf 'PASS  %-28s %s(%s s)\n' "$name" "${detail:+$detail } " "$secs"
        if [ "${NC_TEST_VERBOSE:-0}" = 1 ] || [ "$kind" = script ]; then
            show_log
        elif [ "$skip" -gt 0 ]; then
            skip_reasons
        fi
        return
    fi
    if [ "$kind" = script ] && [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1))
        printf 'SKIP  %-28s (%s s)\n' "$name" "$secs"
        sed 's/^/    | /' "$log"
        return
    fi

    local why="exit status $rc"
    if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ "${secs%.*}" -ge "$timeout_s" ]; }; then
        why="timed out after $timeout_s s"
    elif [ "$rc" -gt 128 ]; then
        why="killed by signal $((rc - 128)) ($(kill -l "$((rc - 128))" 2>/dev/null || echo ?))"
    fi
    # A binary that died before cmocka's summary also failed the case it
    # was running.
    if [ "$kind" = binary ] && ! grep -qE '^\[ +PASSED +\] [0-9]+ test' "$log"; then
        bad=$((bad + 1))
    fi
    [ "$bad" -lt 1 ] && bad=1
    passed=$((passed + ok))
    skipped=$((skipped + skip))
    failed=$((failed + bad))
    failures+=("$name")
    [ "$kind" = binary ] && detail=$(describe "$ok" "$skip" "$bad")
    printf 'FAIL  %-28s %s(%s; %s s)\n' "$name" "${detail:+$detail } " "$why" "$secs"
    show_log
}

if [ ${#binaries[@]} -eq 0 ] && [ ${#scripts[@]} -eq 0 ]; then
    echo "run-tests: no test binaries and no scripts to run"
fi

# backend_runs NAME: whether a loop can run on backend NAME here; prints
# why not otherwise.
backend_runs() {
    local doctor
    case $build in
    /*) doctor=$build/bin/netcore-doctor ;;
    *) doctor=$root/$build/bin/netcore-doctor ;;
    esac
    [ -x "$doctor" ] || return 0     # cannot tell: let the tests say
    "$doctor" backend "$1" 2>&1 | sed 's/^/    | /' >"$log"
    "$doctor" backend "$1" >/dev/null 2>&1
}

read -r -a backends <<<"${NC_TEST_BACKENDS:-}"
if [ ${#backends[@]} -eq 0 ]; then
    for b in ${binaries[@]+"${binaries[@]}"}; do
        run "$(basename "$b")" binary ${wrapper[@]+"${wrapper[@]}"} "$b"
    done
fi
for backend in ${backends[@]+"${backends[@]}"}; do
    if [ ${#binaries[@]} -gt 0 ] && ! backend_runs "$backend"; then
        if [ "${CI:-}" = true ]; then
            failed=$((failed + 1))
            failures+=("[$backend]")
            echo "FAIL  every test on $backend: it cannot run here, and CI needs it"
        else
            skipped=$((skipped + 1))
            echo "SKIP  every test on $backend: it cannot run here"
        fi
        cat "$log"
        continue
    fi
    [ ${#backends[@]} -gt 1 ] && echo "--- backend $backend"
    for b in ${binaries[@]+"${binaries[@]}"}; do
        label=$(basename "$b")
        [ ${#backends[@]} -gt 1 ] && label="$label [$backend]"
        NC_BACKEND=$backend run "$label" binary \
            ${wrapper[@]+"${wrapper[@]}"} "$b"
    done
done
# A script that needs longer than NC_TEST_TIMEOUT says so in a line
# "# run-tests: timeout SECONDS" (check-testssl.sh: testssl is slow).
default_timeout=$timeout_s
for s in ${scripts[@]+"${scripts[@]}"}; do
    own=$(sed -nE 's/^# run-tests: timeout ([0-9]+)$/\1/p' "$s" | head -n 1)
    timeout_s=$default_timeout
    [ -n "$own" ] && [ "$own" -gt "$timeout_s" ] && timeout_s=$own
    run "$(basename "$s")" script bash "$s"
done
timeout_s=$default_timeout

if [ ${#failures[@]} -gt 0 ]; then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
