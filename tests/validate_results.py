#!/usr/bin/python3
"""Runs `qconform conform` and validates its results file against docs/results.schema.json.
Usage (ctest): validate_results.py QCONFORM SCHEMA SCRATCH_DIR"""
import json
import subprocess
import sys

import jsonschema

qconform, schema_path, scratch = sys.argv[1:4]
run = subprocess.run([qconform, "conform", "--out", scratch, "--seed", "7"], capture_output=True, text=True)
print(run.stdout[-2000:])
if run.returncode != 0:
    print(run.stderr, file=sys.stderr)
    sys.exit(f"qconform conform exited with {run.returncode}")
with open(schema_path) as f:
    schema = json.load(f)
with open(f"{scratch}/results.json") as f:
    results = json.load(f)
jsonschema.Draft202012Validator.check_schema(schema)
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(results), key=lambda e: list(e.path))
for e in errors[:10]:
    print(f"results.json{''.join(f'[{p!r}]' for p in e.path)}: {e.message}", file=sys.stderr)
if errors:
    sys.exit(f"{len(errors)} schema violation(s)")
print(f"results.json valid against {schema_path}: {len(results['cells'])} cells, {len(results['checks'])} checks")
