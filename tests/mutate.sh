#!/usr/bin/env bash
# Mutation testing: break the library on purpose, one promised behaviour at
# a time, and check that a test notices. Each mutant in tests/mutants.txt
# replaces one exact piece of a file under lib/ or examples/ (it must
# occur exactly once); the copy of the tree it lives in is rebuilt and the listed test
# binaries are run. A mutant is killed when one of them fails (or times
# out), and survives when all pass: a survivor is a promise no test
# guards. Prints one line per mutant and a summary; exits 1 if any
# survived or could not be applied.
#
# usage: tests/mutate.sh [NAME ...]    (default: every mutant)
# environment: NC_MUTATE_JOBS (make -j, default nproc), CC, NC_TEST_TIMEOUT
#              (seconds per test binary, default 60), NC_MUTATE_BACKENDS
#              (default "epoll io_uring": the tests run on each)
# Needs only bash, make, a C compiler, cmocka and perl (perl-base is part
# of every Debian system). It does not touch the working tree: it copies
# lib/, include/, tests/, examples/ and the Makefile to a temporary
# directory.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
list=$root/tests/mutants.txt
jobs=${NC_MUTATE_JOBS:-$(nproc 2>/dev/null || echo 2)}
timeout_s=${NC_TEST_TIMEOUT:-60}
want=("$@")

work=$(mktemp -d "${TMPDIR:-/tmp}/nc-mutate.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/tree
pristine=$work/pristine
mkdir -p "$tree" "$pristine"
for d in lib include tests examples; do
    cp -a "$root/$d" "$tree/$d"
done
cp -a "$root/Makefile" "$root/libnetcore.pc.in" "$tree/"
cp -a "$root/lib" "$pristine/lib"
cp -a "$root/examples" "$pristine/examples"

build() {
    make -C "$tree" -j"$jobs" BUILD="$work/build" examples tests >"$work/build.log" 2>&1
}

# run_tests NAMES: 0 when every listed binary passes on every backend.
run_tests() {
    local t b
    for b in "${backends[@]}"; do
        for t in $1; do
            if ! NC_BACKEND=$b timeout --kill-after=5 "$timeout_s" \
                "$work/build/tests/$t" >"$work/test.log" 2>&1 </dev/null; then
                echo "$t [$b]"
                return 1
            fi
        done
    done
    return 0
}

echo "mutate: building the unmutated tree"
if ! build; then
    cat "$work/build.log"
    echo "mutate: the unmutated tree does not build" >&2
    exit 2
fi

# Every mutant meets the tests on each backend that runs here: a promise
# is kept on both, so breaking it must show on one.
backends=()
for b in ${NC_MUTATE_BACKENDS:-epoll io_uring}; do
    if "$work/build/bin/netcore-doctor" backend "$b" >/dev/null 2>&1; then
        backends+=("$b")
    else
        echo "mutate: backend $b cannot run here; its pass is left out"
    fi
done

# Parse the list: "=== name", then "file:", "tests:", "breaks:" lines,
# then the original text after "---" and its replacement after "+++",
# up to the next "===" (or the end).
names=() files=() tests=() breaks=()
n=0
mode=
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    '=== '*)
        n=$((n + 1))
        names[n]=${line#=== }
        : >"$work/old.$n"
        : >"$work/new.$n"
        mode=head
        ;;
    'file: '*) [ "$mode" = head ] && files[n]=${line#file: } ;;
    'tests: '*) [ "$mode" = head ] && tests[n]=${line#tests: } ;;
    'breaks: '*) [ "$mode" = head ] && breaks[n]=${line#breaks: } ;;
    '---') [ "$n" -gt 0 ] && mode=old ;;
    '+++') [ "$n" -gt 0 ] && mode=new ;;
    *)
        case $mode in
        old) printf '%s\n' "$line" >>"$work/old.$n" ;;
        new) printf '%s\n' "$line" >>"$work/new.$n" ;;
        esac
        ;;
    esac
done <"$list"

killed=0 survived=0 broken=0
survivors=()
for ((i = 1; i <= n; i++)); do
    name=${names[i]}
    if [ ${#want[@]} -gt 0 ]; then
        case " ${want[*]} " in *" $name "*) ;; *) continue ;; esac
    fi
    file=${files[i]:-}
    target=$tree/$file
    if [ -z "$file" ] || [ ! -f "$target" ] || [ -z "${tests[i]:-}" ]; then
        printf '%-40s BROKEN  (needs file: and tests:)\n' "$name"
        broken=$((broken + 1))
        continue
    fi
    # Replace the one occurrence of old by new, exactly (no regex).
    if ! OLD="$work/old.$i" NEW="$work/new.$i" perl -0777 -i -pe '
            BEGIN { local $/; open my $o, "<", $ENV{OLD} or die;
                    $old = <$o>; open my $n, "<", $ENV{NEW} or die;
                    $new = <$n>; }
            my $count = () = /\Q$old\E/g;
            die "found $count times\n" if $count != 1;
            s/\Q$old\E/$new/;' "$target" 2>"$work/perl.log"; then
        printf '%-40s BROKEN  (%s: original text %s)\n' "$name" "$file" \
            "$(tr -d '\n' <"$work/perl.log")"
        broken=$((broken + 1))
        continue
    fi
    if ! build; then
        printf '%-40s BROKEN  (does not compile)\n' "$name"
        broken=$((broken + 1))
    elif failed=$(run_tests "${tests[i]}"); then
        printf '%-40s SURVIVED  %s\n' "$name" "${breaks[i]:-}"
        survived=$((survived + 1))
        survivors+=("$name")
    else
        printf '%-40s killed by %s\n' "$name" "$failed"
        killed=$((killed + 1))
    fi
    cp "$pristine/$file" "$target"
    touch "$target"
done

echo "mutate: $killed killed, $survived survived, $broken broken, of $((killed + survived + broken)) mutants"
if [ ${#survivors[@]} -gt 0 ]; then
    echo "mutate: survivors (a promise no test guards): ${survivors[*]}"
fi
[ "$survived" -eq 0 ] && [ "$broken" -eq 0 ]
