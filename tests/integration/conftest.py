"""Integration fixtures: real OpenClaw gateways (2026.9.6 and 2026.1.29), a real Secret Service.

Fixtures (all function-scoped; every test gets its own HOME, state dir, TMPDIR and ports):

* ``openclaw_release`` -> Release            parametrized: ids ``oc2026.9.6`` / ``oc2026.1.29``
* ``openclaw_home``    -> OpenClawHome       fresh home + commented JSON5 config + fakes + env
* ``gateway``          -> Gateway            the real ``openclaw gateway run``, ready; stopped after
* ``transcripts``      -> Transcripts        one real ``openclaw agent`` turn through ``gateway``
* ``clawdbot_home``    -> ClawdbotHome       file-only clawdbot 2026.1.24 layout
* ``secret_service``   -> SecretService      private D-Bus + unlocked gnome-keyring
* ``no_keyring_env``   -> dict[str, str]     an env with no D-Bus session (keyring: fail backend)

Processes a test starts itself for a home (e.g. through ``moltir gateway.start``) are killed at
``openclaw_home`` teardown; call ``tests.harness.kill_leftovers(state_dir)`` to do it earlier.

Missing prerequisites (node/openclaw in .cache, dbus-daemon, gnome-keyring-daemon): skip with a
one-line reason, or fail when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.harness.clawdbot import ClawdbotHome, create_clawdbot_home  # noqa: E402
from tests.harness.gateway import Gateway  # noqa: E402
from tests.harness.home import OpenClawHome, close_home, create_home  # noqa: E402
from tests.harness.prereq import missing_prerequisite  # noqa: E402
from tests.harness.procs import describe, kill_leftovers, processes_for  # noqa: E402
from tests.harness.releases import RELEASE_IDS, Release, keyring_missing, release  # noqa: E402
from tests.harness.secret_service import SecretService, start_secret_service  # noqa: E402
from tests.harness.tls import openssl_available  # noqa: E402
from tests.harness.transcripts import Transcripts, run_agent_turn  # noqa: E402

INTEGRATION_DIR = Path(__file__).resolve().parent


# The longest files first, the unit tests last: with two workers (``make test``, --dist loadfile)
# the long files start at once and the short ones fill the gaps, instead of one long file running
# alone at the end. A file's own tests keep their order. (Measured order, longest first.)
LONGEST_FIRST = ("test_release_matrix.py", "test_token_real.py", "test_full_cycle.py", "test_fleet.py",
                 "test_pause_real.py", "test_rotate_real.py", "test_triage_real.py", "test_fleet_system_unit.py",
                 "test_notify_real.py", "test_trigger_real.py", "test_triage_report_real.py",
                 "test_gateway_real.py", "test_audit_real.py", "test_harness_matrix.py", "test_user_unit.py",
                 "test_system_unit.py", "test_profiles.py", "test_container.py", "test_nspawn_systemd.py")


def _file_rank(item: pytest.Item) -> int:
    path = Path(str(item.fspath)).resolve()
    if INTEGRATION_DIR not in path.parents:
        return len(LONGEST_FIRST) + 1
    return LONGEST_FIRST.index(path.name) if path.name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
    items.sort(key=_file_rank)


@pytest.fixture(params=RELEASE_IDS, ids=[f"oc{r}" for r in RELEASE_IDS])
def openclaw_release(request: pytest.FixtureRequest) -> Release:
    rel = release(request.param)
    reason = rel.missing()
    if reason:
        missing_prerequisite(reason)
    if not rel.current and not openssl_available():
        missing_prerequisite("openssl CLI not found (needed for the fake Telegram's TLS on 2026.1.29)")
    return rel


@pytest.fixture
def openclaw_home(openclaw_release: Release, tmp_path: Path) -> Iterator[OpenClawHome]:
    home = create_home(tmp_path / "oc", openclaw_release)
    try:
        yield home
    finally:
        close_home(home)
        killed = kill_leftovers(home.state_dir)
        left = processes_for(home.state_dir)
        assert not left, f"processes of {home.state_dir} survived SIGKILL: {describe(left)}"
        if killed:
            sys.stderr.write(f"\nmoltir harness: killed leftover processes of {home.state_dir}: {killed}\n")


@pytest.fixture
def gateway(openclaw_home: OpenClawHome) -> Iterator[Gateway]:
    gw = Gateway(openclaw_home)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()
        gw.assert_stopped()


@pytest.fixture
def transcripts(openclaw_home: OpenClawHome, gateway: Gateway) -> Transcripts:
    return run_agent_turn(openclaw_home)


@pytest.fixture
def clawdbot_home(tmp_path: Path) -> ClawdbotHome:
    return create_clawdbot_home(tmp_path / "clawdbot")


@pytest.fixture
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    reason = keyring_missing()
    if reason:
        missing_prerequisite(reason)
    # The bus and keyring control sockets must fit in sun_path (108 bytes): use the short
    # basetemp when it is short, else a fresh dir in $TMPDIR.
    root = tmp_path_factory.mktemp("ss")
    if len(str(root)) > 60:
        root = Path(tempfile.mkdtemp(prefix="mss-"))
    service = start_secret_service(root)
    try:
        yield service
    finally:
        service.stop()
        left = service.leftovers()
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"secret service processes survived teardown: {left}"


@pytest.fixture
def no_keyring_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "nokeyring-home"
    home.mkdir()
    return SecretService.no_keyring({
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state")})


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One private rootful podman engine per session (tests/harness/podman.py), with the offline
    skeleton image; every container removed at the end, and the end fails when a process, mount or
    runc state dir of it is left. moltir sees it through ``engine.env()``."""
    from tests.harness import podman

    reason = podman.missing() or release("2026.9.6").missing()
    if reason:
        missing_prerequisite(reason)
    eng = podman.Engine(tmp_path_factory.mktemp("podman")).setup()
    eng.build_skeleton_image()
    try:
        yield eng
    finally:
        eng.cleanup()
