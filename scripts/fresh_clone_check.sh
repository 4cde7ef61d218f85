#!/usr/bin/env bash
# The newcomer's check: clone the repository into an empty folder, run the README's two commands as
# written (`make demo`, `make test`), check that the demo answers on its URLs, and that the tests pass.
#
#   scripts/fresh_clone_check.sh [REPOSITORY]        (default: this checkout; what is committed)
#
# The demo runs on its embedded defaults (SQLite, file-system broker): DATABASE_URL and the broker
# settings are removed from its environment. `make test` gets the caller's DATABASE_URL and
# PYTEST_ARGS (CI: PostgreSQL). The clone sits beside this checkout, so ../shared (the vendors'
# specs the tests read) resolves as it does here; it is deleted at the end, whatever happens.
# pip's download cache (~/.cache/pip) is shared with the caller, so the install is quick after the first.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
repository="${1:-$here}"
port="${FRESH_CLONE_PORT:-8765}"
start_timeout="${FRESH_CLONE_START_TIMEOUT:-240}"
clone="$(mktemp -d "$(dirname "$here")/fresh-clone.XXXXXX")"
demo_pid=""

say() { printf '[fresh clone] %s\n' "$*"; }

cleanup() {
    if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
        kill -INT -- "-$demo_pid" 2>/dev/null || true  # the demo stops its children on SIGINT
        for _ in $(seq 1 30); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 1; done
        kill -KILL -- "-$demo_pid" 2>/dev/null || true
    fi
    rm -rf "$clone"
}
trap cleanup EXIT

say "cloning $repository into $clone"
git clone --quiet "$repository" "$clone"
cd "$clone"

say "make demo (port $port, embedded defaults)"
setsid env -u DATABASE_URL -u CELERY_BROKER_URL -u CELERY_TASK_ALWAYS_EAGER -u REDIS_URL PORT="$port" \
    make demo >"$clone/demo.log" 2>&1 &
demo_pid=$!

answers() {  # URL, expected status codes (space separated)
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1" || true)"
    for expected in $2; do [ "$code" = "$expected" ] && return 0; done
    say "$1 answered $code, expected one of: $2"
    return 1
}

deadline=$((SECONDS + start_timeout))
until answers "http://127.0.0.1:$port/healthz" 200 >/dev/null; do
    if ! kill -0 "$demo_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
        say "the demo did not answer on http://127.0.0.1:$port/ within ${start_timeout}s; its log:"
        tail -n 60 "$clone/demo.log"
        exit 1
    fi
    sleep 2
done
say "the demo answers after $((SECONDS - deadline + start_timeout))s"
base="http://127.0.0.1:$port"
failed=0
# Anonymous: the sign-in pages answer, the rest asks to sign in.
answers "$base/admin/login/" 200 || failed=1
answers "$base/admin/" 302 || failed=1
answers "$base/portal/login/" 200 || failed=1
answers "$base/portal/" 302 || failed=1
answers "$base/api/schema/" 401 || failed=1
grep -q "demo-pass-2026" "$clone/demo.log" || { say "the demo did not print its logins"; failed=1; }
# Signed in with the printed demo login, as a newcomer would in the browser.
jar="$clone/cookies.txt"
token="$(curl -s -c "$jar" -b "$jar" "$base/admin/login/" | grep -o 'name="csrfmiddlewaretoken" value="[^"]*"' \
    | head -1 | sed 's/.*value="//; s/"$//')"
signed_in="$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" -e "$base/admin/login/" \
    --data-urlencode "csrfmiddlewaretoken=$token" --data-urlencode "username=itadmin" \
    --data-urlencode "password=demo-pass-2026" --data-urlencode "next=/admin/" "$base/admin/login/")"
[ "$signed_in" = "302" ] || { say "signing in as itadmin answered $signed_in, expected 302"; failed=1; }
for path in /admin/ /admin/devices/device/ /admin/policies/compliance/ /api/docs/ /api/schema/ /api/v1/devices/; do
    code="$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" --max-time 20 "$base$path" || true)"
    [ "$code" = "200" ] || { say "$path answered $code to itadmin, expected 200"; failed=1; }
done
if [ "$failed" -ne 0 ]; then
    tail -n 60 "$clone/demo.log"
    exit 1
fi
say "the demo answers on its URLs; stopping it"
kill -INT -- "-$demo_pid"
for _ in $(seq 1 30); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 1; done
demo_pid=""

say "make test (DATABASE_URL=${DATABASE_URL:-SQLite default})"
make test
say "passed"
