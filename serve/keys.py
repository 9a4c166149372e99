"""Make API keys: ``python -m serve.keys new --name NAME --scopes expand,rank [--file F]``.

``new`` prints a fresh key once, on stdout alone (``KEY=$(python -m serve.keys new ...)``), and
appends its entry (name, SHA-256, scopes; never the key) to the keys file ``F``, creating it;
without ``--file`` it prints the entry for you to add (to a Kubernetes Secret, say).

``dev CONFIG`` is what scripts/serve.sh runs for local development: a copy of the Serve config
whose ``keys_file`` is a new keys file in a temporary folder, holding a fresh ``admin`` key named
``dev`` beside the entries of the config's own keys file when it exists; the key goes to the
terminal (stderr) once, the copy's path to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from reco.errors import ConfigError
from serve.auth import SCOPES, KeyStore, entry, new_key


def read_entries(path: Path) -> list[dict[str, Any]]:
    """The entries of an existing keys file (checked as the server checks them); [] if there is none."""
    if not path.exists():
        return []
    KeyStore.load(str(path))  # one-line ConfigError for a file the server would refuse
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return list(data["keys"])


def write_entries(path: Path | str, entries: list[dict[str, Any]]) -> None:
    """The keys file, replaced whole (written beside it, then renamed), readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"keys": entries}
    text = json.dumps(doc, indent=2) + "\n" if path.suffix == ".json" else yaml.safe_dump(doc, sort_keys=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def parse_scopes(text: str) -> list[str]:
    scopes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(scopes) - SCOPES)
    if unknown or not scopes:
        raise ConfigError(f"--scopes: expected some of {', '.join(sorted(SCOPES))}; got {text!r}")
    return scopes


def cmd_new(args: argparse.Namespace) -> int:
    key = new_key()
    e = entry(args.name, key, parse_scopes(args.scopes))
    if args.file:
        path = Path(args.file)
        write_entries(path, [*read_entries(path), e])
        print(f"key {e['name']!r} ({', '.join(e['scopes'])}) added to {path}; it is shown once:", file=sys.stderr)
    else:
        print("add this entry to the keys file's `keys:` list; the key is shown once:", file=sys.stderr)
        print("  - " + json.dumps(e), file=sys.stderr)
    print(key)
    return 0


def dev_config(config: Path, out_dir: Path) -> tuple[Path, str]:
    """(the config's copy, the new key): every application built by serve.app gets the new keys file."""
    doc = yaml.safe_load(config.read_text()) or {}
    apps = [a for a in doc.get("applications", []) if str(a.get("import_path", "")).startswith("serve.app:")]
    if not apps:
        raise ConfigError(f"{config}: no application with import_path serve.app:...")
    key = new_key()
    entries = [entry("dev", key, ["admin"])]
    for a in apps:
        own = (a.get("args") or {}).get("keys_file")
        if own and "://" not in own and Path(own).is_file():
            entries += [x for x in read_entries(Path(own)) if x not in entries]
    keys_file = out_dir / "keys.yaml"
    write_entries(keys_file, entries)
    for a in apps:
        a["args"] = {**(a.get("args") or {}), "keys_file": str(keys_file.resolve())}
    copy = out_dir / config.name
    copy.write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy, key


def cmd_dev(args: argparse.Namespace) -> int:
    out_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="reco-serve-"))
    copy, key = dev_config(Path(args.config), out_dir)
    http = yaml.safe_load(copy.read_text()).get("http_options") or {}
    host = {"0.0.0.0": "127.0.0.1", None: "127.0.0.1"}.get(http.get("host"), http.get("host"))
    bar = "-" * 72
    print(
        f"{bar}\n[serve] development API key (scope admin; shown once, valid while this server runs):\n\n"
        f"    {key}\n\n"
        f"[serve]   curl -H 'Authorization: Bearer {key}' http://{host}:{http.get('port', 8000)}/v1/...\n"
        f"[serve] the explorer page asks for it. Hash only in {out_dir / 'keys.yaml'}.\n{bar}",
        file=sys.stderr,
    )
    print(copy)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serve.keys", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="make a key: print it once and add its hash to a keys file")
    new.add_argument("--name", required=True, help="who holds it (the audit log records this name)")
    new.add_argument("--scopes", required=True, help=f"comma-separated, some of {', '.join(sorted(SCOPES))}")
    new.add_argument("--file", help="the keys file to add the entry to (created if missing; .json or YAML)")
    new.set_defaults(run=cmd_new)
    dev = sub.add_parser("dev", help="a copy of a Serve config with a fresh development key (scripts/serve.sh)")
    dev.add_argument("config")
    dev.add_argument("--dir", help="where to write the copy and its keys file (default: a new temporary folder)")
    dev.set_defaults(run=cmd_dev)
    args = p.parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
