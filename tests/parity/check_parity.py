"""API parity with E2B's official SDKs: every public name, member and parameter of the official
Python (PyPI ``e2b`` 2.63.0) and JavaScript (npm ``e2b`` 2.51.0) packages must exist in ours with
the same shape, except the entries of ``allowlist.txt`` (one gap per line, each with its reason).

A gap that is not allow-listed fails, and so does an allow-listed entry that is no longer a gap:
the list only shrinks as the SDKs catch up. ``--update`` rewrites the list from the current gaps,
keeping the reasons already written and giving new ones ``not yet implemented (issue 12)``.

Usage (scripts/test.sh runs it as the stage "API parity with the official SDKs"):
    python check_parity.py --official-py OFFICIAL_PYTHON --ours-py OUR_PYTHON \
        --ts-dir DIR_WITH_node_modules/typescript --official-dts index.d.mts --ours-dts index.d.ts
Needs no sandboxd and no VM: it only imports the packages and reads their type declarations.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).parent
ALLOWLIST = HERE / "allowlist.txt"
DEFAULT_REASON = "not yet implemented (issue 12)"


def dump(cmd: List[str]) -> dict:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout)


def _fmt(params: List[list]) -> str:
    kinds = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}
    out = []
    for name, kind, default in params:
        out.append(kinds.get(kind, "") + name + ("" if default is None else "=" + default) + ("(kw)" if kind == "KEYWORD_ONLY" else ""))
    return "(" + ", ".join(out) + ")"


def python_gaps(theirs: dict, ours: dict) -> Dict[str, str]:
    gaps: Dict[str, str] = {}
    for name in theirs["exports"]:
        if name not in ours["exports"]:
            gaps[f"py:export:{name}"] = "exported name missing"
    for label, members in theirs["classes"].items():
        if members is None:
            continue
        mine = ours["classes"].get(label)
        if mine is None:
            gaps[f"py:class:{label}"] = "class missing"
            continue
        for name, m in members.items():
            key = f"py:{label}.{name}"
            o = mine.get(name)
            if o is None:
                gaps[key] = f"missing {m['kind']}"
                continue
            if m["kind"] != "method" or m.get("params") is None:
                continue
            if o.get("params") is None:
                gaps[key + "/signature"] = f"not a method here; official {_fmt(m['params'])}"
                continue
            have = {p[0] for p in o["params"]}
            missing = [p for p in m["params"] if p[0] not in have]
            for p in missing:
                gaps[f"{key}({p[0]})"] = "parameter missing"
            if not missing and m["params"] != o["params"]:
                gaps[key + "/signature"] = f"official {_fmt(m['params'])}, ours {_fmt(o['params'])}"
    for name, exc in theirs["exceptions"].items():
        mine = ours["exceptions"].get(name)
        if mine is None:
            continue  # reported as a missing export
        lost = [b for b in exc["bases"] if b not in mine["bases"]]
        if lost:
            gaps[f"py:exception:{name}/bases"] = f"missing bases {lost}"
    return gaps


def _merged(signatures: List[List[dict]]) -> List[dict]:
    """Overloads folded per position: a position is optional if any overload may omit it."""
    width = max((len(s) for s in signatures), default=0)
    out = []
    for i in range(width):
        at = [s[i] for s in signatures if len(s) > i]
        out.append({
            "optional": len(at) < len(signatures) or any(p["optional"] for p in at),
            "props": sorted({x for p in at for x in p["props"]}),
        })
    return out


def js_gaps(theirs: dict, ours: dict) -> Dict[str, str]:
    gaps: Dict[str, str] = {}
    for name in theirs["exports"]:
        if name not in ours["exports"]:
            gaps[f"js:export:{name}"] = "exported name missing"
    if theirs["default"] != ours["default"]:
        gaps["js:export:default"] = f"default export is {ours['default']}, official {theirs['default']}"
    for label, cls in theirs["classes"].items():
        if cls is None:
            continue
        mine = ours["classes"].get(label)
        if mine is None:
            gaps[f"js:class:{label}"] = "class missing"
            continue
        for side in ("static", "instance"):
            for name, m in (cls.get(side) or {}).items():
                key = f"js:{label}.{'static.' if side == 'static' else ''}{name}"
                o = (mine.get(side) or {}).get(name)
                if o is None:
                    gaps[key] = f"missing {m['kind']}"
                    continue
                if m["kind"] != "method":
                    continue
                if o["kind"] != "method":
                    gaps[key + "/signature"] = "not a method here"
                    continue
                t, u = _merged(m["signatures"]), _merged(o["signatures"])
                if len(u) < len(t):
                    gaps[key + "/arity"] = f"takes {len(u)} arguments, official {len(t)}"
                for i, (a, b) in enumerate(zip(t, u)):
                    if a["optional"] and not b["optional"]:
                        gaps[f"{key}/arg{i}-optional"] = "argument required here, optional in the official SDK"
                    for prop in a["props"]:
                        if prop not in b["props"]:
                            gaps[f"{key}(arg{i}.{prop})"] = "option missing"
    for name, chain in theirs["errors"].items():
        mine = ours["errors"].get(name)
        if mine is not None and mine != chain:
            gaps[f"js:error:{name}/bases"] = f"extends {mine}, official {chain}"
    return gaps


def read_allowlist(path: Path) -> Dict[str, str]:
    entries: Dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, reason = line.partition(" # ")
        if not sep or not reason.strip():
            sys.exit(f"{path}:{n}: an entry needs a reason: '<key> # <reason>'")
        entries[key.strip()] = reason.strip()
    return entries


def write_allowlist(path: Path, gaps: Dict[str, str], old: Dict[str, str]) -> None:
    header = [
        "# Gaps between our SDKs and E2B's official ones that tests/parity/check_parity.py tolerates.",
        "# One gap per line: '<key> # <reason>'. Remove a line when the gap closes (the check fails",
        "# on stale lines). Keys: py:/js: export, class, member, member(parameter), member/signature.",
    ]
    lines = [f"{k} # {old.get(k, DEFAULT_REASON)}" for k in sorted(gaps)]
    path.write_text("\n".join(header + lines) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official-py", required=True)
    ap.add_argument("--ours-py", required=True)
    ap.add_argument("--ts-dir", required=True, help="a node_modules holding typescript")
    ap.add_argument("--official-dts", required=True)
    ap.add_argument("--ours-dts", required=True)
    ap.add_argument("--allowlist", default=str(ALLOWLIST))
    ap.add_argument("--update", action="store_true")
    a = ap.parse_args(argv)

    py_script, js_script = str(HERE / "py_surface.py"), str(HERE / "js_surface.mjs")
    gaps = python_gaps(dump([a.official_py, py_script]), dump([a.ours_py, py_script]))
    gaps.update(js_gaps(
        dump(["node", js_script, a.ts_dir, a.official_dts]),
        dump(["node", js_script, a.ts_dir, a.ours_dts]),
    ))

    path = Path(a.allowlist)
    allowed = read_allowlist(path) if path.exists() else {}
    if a.update:
        write_allowlist(path, gaps, allowed)
        print(f"{path}: {len(gaps)} entries")
        return 0
    new = sorted(set(gaps) - set(allowed))
    stale = sorted(set(allowed) - set(gaps))
    for k in new:
        print(f"GAP   {k}: {gaps[k]}")
    for k in stale:
        print(f"STALE {k}: no longer a gap; remove it from {path.name}")
    print(f"parity: {len(gaps)} gaps, {len(allowed)} allow-listed, {len(new)} new, {len(stale)} stale")
    return 1 if new or stale else 0


if __name__ == "__main__":
    sys.exit(main())
