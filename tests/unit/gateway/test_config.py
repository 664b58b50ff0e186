"""Configuration: every bad value is refused with a message naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, SecretRef, load_config, parse_config


def test_defaults(tmp_path: Path) -> None:
    config = parse_config({}, tmp_path)
    assert config.server.http_port == 8080 and config.server.https_port == 8443
    assert config.server.base_url() == "http://127.0.0.1:8080"
    assert config.database.resolved_url(tmp_path) == f"sqlite+aiosqlite:///{tmp_path}/ceg.db"
    assert config.keys.backend == "file"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"server": {"http_port": 70000}}, "server.http_port"),
        ({"server": {"http_port": "80"}}, "server.http_port"),
        ({"server": {"https_port": True}}, "server.https_port"),
        ({"server": {"workers": -1}}, "server.workers"),
        ({"server": {"public_base_url": "ftp://x"}}, "server.public_base_url"),
        ({"server": {"colour": "blue"}}, "server: unknown key(s) colour"),
        ({"database": {"url": "mysql://x"}}, "database.url"),
        ({"database": {"password": "hunter2"}}, "database.password"),
        ({"keys": {"backend": "tpm"}}, "keys.backend"),
        ({"keys": {"passphrase": {}}}, "keys.passphrase"),
        ({"keys": {"pkcs11": {"slot": 1}}}, "keys.pkcs11: unknown key(s) slot"),
        ({"issuance": {"rate_limit_per_ca": {"count": 0, "per_seconds": 1}}}, "issuance.rate_limit_per_ca"),
        ({"logging": {"level": "LOUD"}}, "logging.level"),
        ({"surprise": {}}, "ceg.toml: unknown key(s) surprise"),
        ({"server": 5}, "server: expected a table"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, data: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, tmp_path)
    assert named in str(info.value)


def test_secrets_come_from_environment_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret").write_text("from-file\n")
    ref = SecretRef(env="CEG_TEST_SECRET", file="secret")
    monkeypatch.delenv("CEG_TEST_SECRET", raising=False)
    assert ref.resolve(tmp_path, "k") == "from-file"
    monkeypatch.setenv("CEG_TEST_SECRET", "from-env")
    assert ref.resolve(tmp_path, "k") == "from-env"
    with pytest.raises(ConfigError, match=r"keys\.passphrase"):
        SecretRef(env="CEG_NOPE_NOT_SET").resolve(tmp_path, "keys.passphrase")


def test_load_reports_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path)
    (tmp_path / "ceg.toml").write_text("[server\nhttp_port = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)
