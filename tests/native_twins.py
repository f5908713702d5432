#!/usr/bin/env python3
"""Every test of shared memory, locks, migration, deaths and the examples
runs natively too: each rxe.NAME or coherence.NAME that does not test the
verbs transport itself (label "verbs") or run on the host (label "host")
has a twin native.NAME, and the twin runs the same command in the same
environment plus DSM_TRANSPORT=ofi (a twin that lost, say, its
DSM_PLACEMENT would test something else).  native.bench_tools is the one
native test with a command of its own (tests/bench_native.sh), and
native.litmus_sb_long_2x1 the one with no twin: SB 3,000 times, which
takes 3 minutes in the emulated guest, where litmus_sb_2x1's 400 catch
what it is for (tests/coherence/CMakeLists.txt).

usage: native_twins.py BUILD_DIR"""
import json
import subprocess
import sys

OWN_COMMAND = {"native.bench_tools"}
NATIVE_ONLY = {"native.litmus_sb_long_2x1"}


def prop(test, name):
    for p in test.get("properties", []):
        if p["name"] == name:
            return p["value"]
    return []


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = subprocess.run(["ctest", "--show-only=json-v1"], cwd=sys.argv[1],
                         check=True, capture_output=True, text=True).stdout
    tests = {t["name"]: t for t in json.loads(out)["tests"]}
    bad = []
    natives = [n for n in tests if n.startswith("native.")]
    for name in sorted(natives):
        base = name[len("native."):]
        twins = [p + base for p in ("rxe.", "coherence.") if p + base in tests]
        if name in NATIVE_ONLY and not twins:
            if "native" not in prop(tests[name], "LABELS"):
                bad.append(f"{name}: not labelled native")
            continue
        if len(twins) != 1:
            bad.append(f"{name}: {len(twins)} twins, not 1")
            continue
        n, t = tests[name], tests[twins[0]]
        want = set(prop(t, "ENVIRONMENT")) | {"DSM_TRANSPORT=ofi"}
        if name not in OWN_COMMAND:
            if n["command"] != t["command"]:
                bad.append(f"{name}: command {n['command'][1:]} differs "
                           f"from {twins[0]}'s {t['command'][1:]}")
            if set(prop(n, "ENVIRONMENT")) != want:
                bad.append(f"{name}: environment {prop(n, 'ENVIRONMENT')} "
                           f"is not {twins[0]}'s plus DSM_TRANSPORT=ofi")
        if "native" not in prop(n, "LABELS"):
            bad.append(f"{name}: not labelled native")
    for name in sorted(tests):
        pre, _, base = name.partition(".")
        labels = prop(tests[name], "LABELS")
        if pre in ("rxe", "coherence") and not {"verbs", "host"} & set(labels) \
                and "native." + base not in tests:
            bad.append(f"{name}: no native twin (and not labelled verbs)")
    if len(natives) < 40:
        bad.append(f"only {len(natives)} native tests: is the label gone?")
    for b in bad:
        print("FAIL:", b)
    if bad:
        sys.exit(1)
    print(f"PASS: {len(natives)} native tests, each its twin's command and "
          "environment over libfabric")


if __name__ == "__main__":
    main()
