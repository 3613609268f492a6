"""``moltir contain`` / ``restore`` of a gateway that runs in a REAL container (rootful podman here).

The container is shaped like OpenClaw's own docker/podman setups (tests/harness/podman.py "docker"
layout: the host's state dir bind-mounted at ``/home/node/.openclaw``, ``--init``, the token also in
``<state>/.env``) with the compose default ``restart: unless-stopped``. moltir runs on the HOST with
``--state-dir`` of the host side of the mount, as a user of such a setup would:

* contain finds the container through the engine (the container that mounts the state dir), keeps
  its inspect record and logs in the case before the stop, stops it with the engine so it stays down
  (the restart policy recorded; no restart for 15 s, the port closed), disables the DMs in the host
  config and rotates the token into that config (a container reaches no host keyring);
* restore starts the same container again; the new token is accepted, the old one refused, DMs back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import json5
from tests.harness.envelope import moltir_json
from tests.harness.home import OpenClawHome, close_home, create_home
from tests.harness.net import port_is_open, token_status, wait_until
from tests.harness.procs import kill_leftovers
from tests.harness.releases import release
from tests.harness.risk import accept_open_dms
from tests.harness.secret_service import SecretService


def _moltir(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL, check=False)


def _get(doc: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return "<absent>"
        doc = doc[key]
    return doc


def test_contain_and_restore_a_container_gateway(engine: Any, secret_service: SecretService, tmp_path: Path) -> None:
    home: OpenClawHome = create_home(tmp_path / "oc", release("2026.9.6"))
    ctr = None
    try:
        ctr = engine.run_gateway(home, "moltir-ct-gw", restart="unless-stopped", layout="docker")
        old = home.token
        assert token_status(home.port, old) == 400
        pre = json5.loads(home.config_path.read_text())
        env = {**home.env, **secret_service.env, **engine.env(), "MOLTIR_HOME": str(tmp_path / "moltir-home")}
        args = ("--state-dir", str(home.state_dir))

        contain = _moltir(env, "contain", *args, "--yes", "--json", "--reason", "container test")
        assert contain.returncode == 0, contain.stdout + contain.stderr
        result = moltir_json(contain.stdout)
        steps = {s["id"]: s for s in result["steps"]}
        stop = steps["stop-gateway"]["details"]
        assert stop["mode"] == "container" and stop["container"]["name"] == ctr.name
        assert stop["container"]["restart_policy"] == "unless-stopped"
        assert steps["rotate-token"]["details"]["mode"] == "plaintext"  # no host keyring reaches a container
        deadline = time.monotonic() + 15   # the restart policy must not bring it back; the port stays closed
        while time.monotonic() < deadline:
            assert ctr.inspect()["State"]["Running"] is False
            assert not port_is_open(home.port)
            time.sleep(1)
        case = Path(result["case_dir"])
        record = json.loads((case / "restore.json").read_text())
        assert record["gateway"]["mode"] == "container"
        assert record["gateway"]["container"]["restart_policy"] == "unless-stopped"
        logs = list((case / "volatile").glob("container-*.log"))
        assert logs and logs[0].stat().st_size > 0, "the container's logs kept before the stop"
        assert list((case / "volatile").glob("container-*.json"))
        contained = json5.loads(home.config_path.read_text())
        dm_paths = [e["path"] for e in record["dm_policy"]["paths"]]
        assert dm_paths and all(_get(contained, p) == "disabled" for p in dm_paths if p[-1] in ("dmPolicy", "policy"))
        new = contained["gateway"]["auth"]["token"]
        assert isinstance(new, str) and new != old
        assert old not in contain.stdout + contain.stderr and new not in contain.stdout + contain.stderr

        restore = _moltir(env, "restore", *args, "--yes", "--json", *accept_open_dms(home.release.id))
        assert restore.returncode == 0, restore.stdout + restore.stderr
        assert ctr.inspect()["State"]["Running"] is True
        wait_until(lambda: token_status(home.port, new) == 400, 120, what="the container back on the new token")
        assert token_status(home.port, old) == 401
        restored = json5.loads(home.config_path.read_text())
        for path in dm_paths:
            assert _get(restored, path) == _get(pre, path), path
    finally:
        if ctr is not None:
            ctr.rm(timeout=2)
            engine.containers.pop(ctr.name, None)
        close_home(home)
        kill_leftovers(home.state_dir)
