"""Every aiohttp AppKey the gateway defines, in one place (protocol-visible keys live in
protocols/_shared/web.py)."""

from __future__ import annotations

from aiohttp import web

from gateway.bindings import BindingRegistry
from gateway.config import Config

CONFIG = web.AppKey("ceg.config", Config)
BINDINGS = web.AppKey("ceg.bindings", BindingRegistry)
FRONTENDS = web.AppKey("ceg.frontends", dict)  # protocol name -> Frontend
