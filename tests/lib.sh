# tests/lib.sh: what every CLI test script shares (sourced after set -u).
# Gives $cli, $src and a scratch $tmp removed at exit; ok / bad count checks;
# expect_fail NAME SUBSTRING CMD...: the command must exit 1 or 2 (an error,
# not a crash) with SUBSTRING on stderr; finish prints the tally and sets the
# exit status.
cli=${UP_CLI:?UP_CLI is set by CTest}
src=${UP_SOURCE_DIR:?UP_SOURCE_DIR is set by CTest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0; checks=0
ok() { checks=$((checks+1)); }
bad() { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL: $*" >&2; }
expect_fail() {
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null; local rc=$?
  if [ $rc -eq 0 ]; then bad "$name: exited 0"; return; fi
  if [ $rc -gt 2 ]; then bad "$name: exit code $rc (crash?)"; cat "$tmp/err" >&2; return; fi
  if ! grep -qF -- "$want" "$tmp/err"; then bad "$name: stderr lacks '$want':"; cat "$tmp/err" >&2; return; fi
  ok
}
finish() {
  echo "$((checks-fails)) passed, $fails failed"
  [ $fails -eq 0 ]
}
