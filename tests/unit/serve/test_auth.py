"""API keys (serve/auth.py) and the keys CLI (serve/keys.py), without Ray or a server: what a keys
file must hold, who a key identifies, what each scope allows, and that no key is ever written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from reco.errors import ConfigError
from serve import keys as keys_cli
from serve.auth import (
    KEY_PREFIX,
    SCOPES,
    Caller,
    Forbidden,
    KeyStore,
    Unauthorized,
    digest,
    entry,
    load_keys,
    new_key,
)


def _store(*specs: tuple[str, list[str]]) -> tuple[KeyStore, dict[str, str]]:
    """A store of fresh keys, and the keys by name."""
    made = {name: new_key() for name, _ in specs}
    return KeyStore.from_entries([entry(n, made[n], s) for n, s in specs], "test"), made


def test_a_key_identifies_its_caller_and_nothing_else_does():
    store, made = _store(("acme", ["expand"]), ("ops", ["admin"]))
    assert store.identify(made["acme"]) == Caller("acme", frozenset({"expand"}))
    assert store.identify(made["ops"]).name == "ops"
    for bad in ("", None, made["acme"] + "x", made["acme"][:-1], digest(made["acme"]), "Bearer " + made["acme"]):
        with pytest.raises(Unauthorized):
            store.identify(bad)


def test_the_store_keeps_only_digests():
    store, made = _store(("acme", ["expand"]))
    assert store.digests == (bytes.fromhex(digest(made["acme"])),)
    assert made["acme"] not in repr(store)


def test_admin_holds_every_scope_and_others_only_their_own():
    assert all(Caller("ops", frozenset({"admin"})).may(s) for s in SCOPES)
    caller = Caller("acme", frozenset({"expand", "rank"}))
    assert caller.may("expand") and caller.may("rank")
    assert not caller.may("recommend") and not caller.may("explorer") and not caller.may("admin")


def test_new_keys_are_random_url_safe_and_prefixed():
    made = {new_key() for _ in range(100)}
    assert len(made) == 100
    assert all(k.startswith(KEY_PREFIX) and re.fullmatch(r"rk_[A-Za-z0-9_-]{43}", k) for k in made)


@pytest.mark.parametrize(
    "entries, message",
    [
        ([], "no keys"),
        ([{"name": "a", "scopes": ["rank"]}], "needs name, sha256 and scopes"),
        ([{"name": "a", "sha256": "rk_plain-key", "scopes": ["rank"]}], "not 64 hex digits"),
        ([{"name": "a", "sha256": "0" * 64, "scopes": ["rank", "delete"]}], "unknown scope(s) ['delete']"),
        ([{"name": "a", "sha256": "0" * 64, "scopes": []}], "non-empty list"),
        (
            [
                {"name": "a", "sha256": "0" * 64, "scopes": ["rank"]},
                {"name": "b", "sha256": "0" * 64, "scopes": ["rank"]},
            ],
            "same sha256",
        ),
    ],
)
def test_a_malformed_keys_file_is_one_line_naming_the_problem(entries, message):
    with pytest.raises(ConfigError) as e:
        KeyStore.from_entries(entries, "keys file k.yaml")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_keys_files_in_yaml_and_json(tmp_path):
    key = new_key()
    doc = {"keys": [entry("acme", key, ["rank"])]}
    (tmp_path / "k.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "k.json").write_text(json.dumps(doc))
    for name in ("k.yaml", "k.json"):
        assert KeyStore.load(str(tmp_path / name)).identify(key).name == "acme"
    (tmp_path / "bad.yaml").write_text("keys: [unclosed")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        KeyStore.load(str(tmp_path / "bad.yaml"))


def test_no_keys_file_is_a_config_error_naming_the_fix(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_keys(None)
    assert "keys_file is not set" in str(e.value) and "python -m serve.keys new" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_keys(str(tmp_path / "missing.yaml"))
    assert "not found" in str(e.value) and f"--file {tmp_path / 'missing.yaml'}" in str(e.value)


def test_a_scope_error_names_the_key_not_the_key_itself():
    store, made = _store(("acme", ["rank"]))
    caller = store.identify(made["acme"])
    assert not caller.may("expand")
    err = Forbidden(f"the key {caller.name!r} lacks the 'expand' scope")
    assert made["acme"] not in str(err)


def test_keys_cli_new_appends_a_hash_and_prints_the_key_once(tmp_path, capsys):
    path = tmp_path / "keys.yaml"
    assert keys_cli.main(["new", "--name", "acme", "--scopes", "expand,rank", "--file", str(path)]) == 0
    key = capsys.readouterr().out.strip()
    assert keys_cli.main(["new", "--name", "ops", "--scopes", "admin", "--file", str(path)]) == 0
    other = capsys.readouterr().out.strip()
    text = path.read_text()
    assert key not in text and other not in text  # hashes only
    store = KeyStore.load(str(path))
    assert store.identify(key) == Caller("acme", frozenset({"expand", "rank"}))
    assert store.identify(other).name == "ops"
    assert path.stat().st_mode & 0o077 == 0


def test_keys_cli_without_a_file_prints_the_entry_to_add(capsys):
    assert keys_cli.main(["new", "--name", "acme", "--scopes", "recommend"]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert json.loads(out.err.splitlines()[-1].strip()[2:]) == {
        "name": "acme",
        "sha256": digest(key),
        "scopes": ["recommend"],
    }


def test_keys_cli_refuses_an_unknown_scope(tmp_path, capsys):
    assert keys_cli.main(["new", "--name", "a", "--scopes", "expand,delete", "--file", str(tmp_path / "k.yaml")]) == 2
    assert "delete" in capsys.readouterr().err and not (tmp_path / "k.yaml").exists()


def test_dev_config_adds_a_fresh_admin_key_beside_the_configs_own(tmp_path):
    own = tmp_path / "own.yaml"
    assert keys_cli.main(["new", "--name", "acme", "--scopes", "rank", "--file", str(own)]) == 0
    config = tmp_path / "config.yaml"
    app = {"name": "reco", "import_path": "serve.app:build_app", "args": {"run_dir": "runs/x", "keys_file": str(own)}}
    config.write_text(yaml.safe_dump({"applications": [app]}))
    out = tmp_path / "dev"
    copy, key = keys_cli.dev_config(config, out)
    args = yaml.safe_load(copy.read_text())["applications"][0]["args"]
    assert args["run_dir"] == "runs/x" and Path(args["keys_file"]) == (out / "keys.yaml").resolve()
    store = KeyStore.load(args["keys_file"])
    assert store.identify(key) == Caller("dev", frozenset({"admin"}))
    assert [c.name for c in store.callers] == ["dev", "acme"]
    assert key not in (out / "keys.yaml").read_text()
