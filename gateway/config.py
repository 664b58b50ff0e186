"""Configuration: one TOML file in the data dir (`ceg.toml`), checked when ceg starts.

Every bad value stops the start with a message naming the key (`server.http_port: ...`).
Secrets (key passphrase, PKCS#11 PIN, database password) never live in the file: the
file names an environment variable or a file that holds them. This module is the only
place that reads the environment.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "ceg.toml"


class ConfigError(Exception):
    """A configuration problem; the message names the key and the reason."""


@dataclass(frozen=True)
class SecretRef:
    """Where a secret comes from: an environment variable, else a file (path relative to the data dir)."""

    env: str | None = None
    file: str | None = None

    def resolve(self, data_dir: Path, key: str) -> str:
        if self.env and os.environ.get(self.env):
            return os.environ[self.env]
        if self.file:
            path = Path(self.file)
            if not path.is_absolute():
                path = data_dir / path
            try:
                return path.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{key}: cannot read secret file {path}: {exc.strerror}") from None
        where = " or ".join(x for x in (f"${self.env}" if self.env else None, self.file) if x)
        raise ConfigError(f"{key}: no secret found (looked in {where or 'nothing configured'})")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    http_port: int = 8080
    https_port: int = 8443
    public_base_url: str = ""  # CDP/AIA/OCSP URLs in certificates; default http://host:http_port
    workers: int = 0  # 0: one per core
    tls_cert: str = "tls/server.pem"  # chain, leaf first
    tls_key: str = "tls/server.key"
    client_ca_files: tuple[str, ...] = ()  # extra trust anchors for TLS client certificates
    shutdown_timeout: float = 10.0
    # uvloop (libuv; its TLS and transports in C): about a tenth less CPU per ACME order
    # than asyncio's own loop. "asyncio" is the fallback should uvloop misbehave.
    event_loop: str = "uvloop"

    def base_url(self) -> str:
        return self.public_base_url or f"http://{self.host}:{self.http_port}"


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///{data_dir}/ceg.db"
    password: SecretRef | None = None

    def resolved_url(self, data_dir: Path) -> str:
        url = self.url.replace("{data_dir}", str(data_dir))
        if self.password is not None:
            from sqlalchemy.engine import make_url

            url = (
                make_url(url)
                .set(password=self.password.resolve(data_dir, "database.password"))
                .render_as_string(hide_password=False)
            )
        return url


@dataclass(frozen=True)
class Pkcs11Config:
    module: str = "/usr/lib/softhsm/libsofthsm2.so"
    token_label: str = "ceg"
    pin: SecretRef = field(default_factory=lambda: SecretRef(env="CEG_PKCS11_PIN", file="secrets/pkcs11-pin"))


@dataclass(frozen=True)
class KeysConfig:
    backend: str = "file"
    directory: str = "keys"
    passphrase: SecretRef = field(
        default_factory=lambda: SecretRef(env="CEG_KEY_PASSPHRASE", file="secrets/key-passphrase")
    )
    pkcs11: Pkcs11Config = field(default_factory=Pkcs11Config)


@dataclass(frozen=True)
class RateLimitConfig:
    count: int
    per_seconds: int


@dataclass(frozen=True)
class IssuanceConfig:
    rate_limit_per_ca: RateLimitConfig | None = None
    rate_limit_per_requester: RateLimitConfig | None = None


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    json: bool = True


@dataclass(frozen=True)
class Config:
    data_dir: Path
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    issuance: IssuanceConfig = field(default_factory=IssuanceConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.data_dir / p


def _take(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any) -> Any:
    if key not in table:
        return default
    value = table.pop(key)
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: expected an integer, got {value!r}")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}.{key}: expected {names}, got {type(value).__name__} {value!r}")
    return value


def _no_leftovers(table: dict[str, Any], where: str) -> None:
    if table:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(table))}")


def _port(value: int, key: str) -> int:
    if not 0 <= value <= 65535:
        raise ConfigError(f"{key}: {value} is not a TCP port (0-65535)")
    return value


def _secret(raw: Any, where: str, default: SecretRef | None) -> SecretRef | None:
    if raw is None:
        return default
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table with 'env' and/or 'file'")
    raw = dict(raw)
    ref = SecretRef(env=_take(raw, "env", str, where, None), file=_take(raw, "file", str, where, None))
    _no_leftovers(raw, where)
    if not ref.env and not ref.file:
        raise ConfigError(f"{where}: give 'env' or 'file' (secrets are never written in the config file)")
    return ref


def _rate(raw: Any, where: str) -> RateLimitConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table with 'count' and 'per_seconds'")
    raw = dict(raw)
    count = _take(raw, "count", int, where, None)
    per = _take(raw, "per_seconds", int, where, None)
    _no_leftovers(raw, where)
    if count is None or per is None or count < 1 or per < 1:
        raise ConfigError(f"{where}: 'count' and 'per_seconds' must both be positive integers")
    return RateLimitConfig(count, per)


def parse_config(data: dict[str, Any], data_dir: Path) -> Config:
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for section in ("server", "database", "keys", "issuance", "logging"):
        if section in data and not isinstance(data[section], dict):
            raise ConfigError(f"{section}: expected a table")

    s = data.pop("server", {})
    server = ServerConfig(
        host=_take(s, "host", str, "server", "127.0.0.1"),
        http_port=_port(_take(s, "http_port", int, "server", 8080), "server.http_port"),
        https_port=_port(_take(s, "https_port", int, "server", 8443), "server.https_port"),
        public_base_url=_take(s, "public_base_url", str, "server", ""),
        workers=_take(s, "workers", int, "server", 0),
        tls_cert=_take(s, "tls_cert", str, "server", "tls/server.pem"),
        tls_key=_take(s, "tls_key", str, "server", "tls/server.key"),
        client_ca_files=tuple(_take(s, "client_ca_files", list, "server", [])),
        shutdown_timeout=float(_take(s, "shutdown_timeout", (int, float), "server", 10.0)),
        event_loop=_take(s, "event_loop", str, "server", "uvloop"),
    )
    _no_leftovers(s, "server")
    if server.workers < 0:
        raise ConfigError("server.workers: must be 0 (one per core) or more")
    if server.event_loop not in ("uvloop", "asyncio"):
        raise ConfigError("server.event_loop: must be uvloop or asyncio")
    if server.public_base_url and not server.public_base_url.startswith(("http://", "https://")):
        raise ConfigError("server.public_base_url: must start with http:// or https://")

    d = data.pop("database", {})
    database = DatabaseConfig(
        url=_take(d, "url", str, "database", DatabaseConfig.url),
        password=_secret(d.pop("password", None), "database.password", None),
    )
    _no_leftovers(d, "database")
    if not database.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError("database.url: must be sqlite+aiosqlite:// or postgresql+asyncpg://")

    k = data.pop("keys", {})
    p11 = k.pop("pkcs11", {})
    if not isinstance(p11, dict):
        raise ConfigError("keys.pkcs11: expected a table")
    p11 = dict(p11)
    pkcs11 = Pkcs11Config(
        module=_take(p11, "module", str, "keys.pkcs11", Pkcs11Config.module),
        token_label=_take(p11, "token_label", str, "keys.pkcs11", Pkcs11Config.token_label),
        pin=_secret(p11.pop("pin", None), "keys.pkcs11.pin", Pkcs11Config().pin) or Pkcs11Config().pin,
    )
    _no_leftovers(p11, "keys.pkcs11")
    keys = KeysConfig(
        backend=_take(k, "backend", str, "keys", "file"),
        directory=_take(k, "directory", str, "keys", "keys"),
        passphrase=_secret(k.pop("passphrase", None), "keys.passphrase", KeysConfig().passphrase)
        or KeysConfig().passphrase,
        pkcs11=pkcs11,
    )
    _no_leftovers(k, "keys")
    if keys.backend not in ("file", "pkcs11"):
        raise ConfigError(f"keys.backend: {keys.backend!r} is not 'file' or 'pkcs11'")

    i = data.pop("issuance", {})
    issuance = IssuanceConfig(
        rate_limit_per_ca=_rate(i.pop("rate_limit_per_ca", None), "issuance.rate_limit_per_ca"),
        rate_limit_per_requester=_rate(
            i.pop("rate_limit_per_requester", None), "issuance.rate_limit_per_requester"
        ),
    )
    _no_leftovers(i, "issuance")

    lg = data.pop("logging", {})
    logging = LoggingConfig(
        level=_take(lg, "level", str, "logging", "INFO").upper(),
        json=_take(lg, "json", bool, "logging", True),
    )
    _no_leftovers(lg, "logging")
    if logging.level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"logging.level: {logging.level!r} is not DEBUG/INFO/WARNING/ERROR")

    _no_leftovers(data, "ceg.toml")
    return Config(data_dir, server, database, keys, issuance, logging)


def load_config(data_dir: Path) -> Config:
    path = data_dir / CONFIG_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run 'ceg init --data-dir {data_dir}' first") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, data_dir.resolve())


def default_data_dir() -> Path:
    return Path(os.environ.get("CEG_DATA_DIR", "./ceg-data"))
