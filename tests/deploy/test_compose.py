"""docker-compose.yml: valid Compose, scalable, and wired to the nginx configuration the suite tests.

Docker is not needed: the file is checked against the Compose Specification's JSON schema, the one
``docker compose config`` applies, as vendored by check-jsonschema.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support.nginx import TEMPLATE

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return loaded


def test_the_compose_file_follows_the_compose_specification():
    checked = schema_check(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_catches_a_malformed_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    # A misspelt key, as a hand edit might leave it.
    broken.write_text(COMPOSE.read_text().replace("    depends_on:", "    depend_on:", 1))
    checked = schema_check(broken)
    assert checked.returncode != 0
    assert "depend_on" in checked.stdout + checked.stderr


def test_replicas_publish_no_host_port_so_they_can_be_scaled():
    sidebar = compose()["services"]["sidebar"]
    assert "ports" not in sidebar and "container_name" not in sidebar
    assert sidebar["expose"] == ["8080"]
    assert compose()["services"]["nginx"]["ports"] == ["8080:80"]


def redis_option(name: str) -> str:
    command: list[str] = compose()["services"]["redis"]["command"]
    return command[command.index(f"--{name}") + 1]


def test_redis_is_bounded_and_evicts_only_keys_with_an_expiry_least_recently_used_first():
    # Only caches carry an expiry: snapshots, refresh state and price history are never evicted
    # (tests/deploy/test_redis_memory.py runs a crawl against these very options).
    assert redis_option("maxmemory") == "256mb"
    assert redis_option("maxmemory-policy") == "volatile-lru"


def test_nginx_gets_the_tested_template_and_every_variable_it_needs():
    nginx = compose()["services"]["nginx"]
    assert "./deploy/nginx/templates:/etc/nginx/templates:ro" in nginx["volumes"]
    assert TEMPLATE.parent == ROOT / "deploy" / "nginx" / "templates"
    needed = set(re.findall(r"\$\{(SIDEBAR_[A-Z_]+)\}", TEMPLATE.read_text()))
    assert needed == set(nginx["environment"])
    # Replicas are found through Docker's DNS, re-asked as they are scaled.
    assert nginx["environment"]["SIDEBAR_RESOLVER"] == "127.0.0.11"
    assert "server sidebar:8080 resolve" in nginx["environment"]["SIDEBAR_UPSTREAM_SERVERS"]


def test_replicas_trust_only_the_compose_network_as_their_proxy():
    subnet = compose()["networks"]["default"]["ipam"]["config"][0]["subnet"]
    trusted = json.loads(compose()["services"]["sidebar"]["environment"]["SIDEBAR_TRUSTED_PROXIES"])
    assert trusted == [subnet]
    assert f"allow {subnet};" in compose()["services"]["nginx"]["environment"]["SIDEBAR_INTERNAL"]


def test_the_image_is_built_without_local_environments_or_history():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv"} <= set(ignored)
