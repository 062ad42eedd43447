#!/usr/bin/env python3
"""Validates JSON or YAML documents against a JSON schema (any draft the schema declares).

usage: validate-json-schema.py SCHEMA DOCUMENT...
Prints one line per error and exits 1 when any document is invalid. Used by the tests."""
import json
import sys

import jsonschema
import yaml


def main() -> int:
    schema_path, documents = sys.argv[1], sys.argv[2:]
    with open(schema_path) as f:
        schema = json.load(f)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    failed = False
    for path in documents:
        with open(path) as f:
            document = json.load(f) if path.endswith(".json") or path.endswith(".sarif") else yaml.safe_load(f)
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        for error in errors:
            failed = True
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            print(f"{path}: {where}: {error.message}")
        if not errors:
            print(f"{path}: valid against {schema.get('title') or schema.get('$id') or schema_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
