"""The entry point worker processes import: the app built from the configuration the CLI
resolved and passed down in JMAPD_RESOLVED_CONFIG."""

from __future__ import annotations

import logging
import os

import orjson
from starlette.applications import Starlette

from ..config import Config
from .app import create_app

RESOLVED = "JMAPD_RESOLVED_CONFIG"


def app() -> Starlette:
    config = Config(orjson.loads(os.environ[RESOLVED]))
    logging.basicConfig(
        level=str(config.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return create_app(config)
