"""The roots :data:`~moltir.evidence.rules.RULES` apply to, resolved per install
(:func:`resolve_roots`): the shared temp log dirs, the ``logging.file`` folder, the config dir and
``$include`` roots, the state dir, the OAuth dir, the gateway user's home (shell histories) and the
agent's workspace; and the systemd units whose journal is collected."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltir.evidence.configfacts import _config_facts, _expand_user_path
from moltir.evidence.fileinfo import _is_within, _world_writable

if TYPE_CHECKING:
    from moltir.openclaw import Install


@dataclass(frozen=True)
class Root:
    key: str
    path: Path
    shared: bool = False  # a world-writable temp dir: the root must not be a symlink, foreign files refused
    placeholders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Sources:
    """The resolved roots of one install and what was noted while resolving them."""

    roots: tuple[Root, ...]
    units: tuple[str, ...]
    expected_uid: int
    notes: tuple[str, ...]
    skipped: tuple[dict[str, Any], ...]  # includes outside every root, unreadable config, ...


def _log_families(install: Install) -> tuple[str, ...]:
    fams = ["openclaw"] if install.product != "clawdbot" else ["clawdbot", "openclaw"]
    if install.profile:
        fams.insert(0, f"openclaw-{encode_log_profile(install.profile)}")
    return tuple(fams)


def encode_log_profile(profile: str) -> str:
    """OpenClaw's ``encodeLogProfileSegment`` (2026.9.6 dist/logger): the profile part of a log name."""
    out = []
    for ch in profile:
        if re.fullmatch(r"[a-z0-9]", ch):
            out.append(ch)
        elif ch == "-":
            out.append("--")
        elif ch == "_":
            out.append("-0")
        elif re.fullmatch(r"[A-Z]", ch):
            out.append(f"-1{ch.lower()}")
        else:
            out.append(f"-2{ord(ch):x}-")
    encoded = "".join(out)
    if len(encoded) <= 220:
        return encoded
    return "-3" + hashlib.sha256(profile.encode()).hexdigest()


def _owner_uid(path: Path) -> int:
    try:
        return path.stat().st_uid
    except OSError:
        return os.geteuid()


def resolve_roots(install: Install, *, journal: bool = True, system_units: Sequence[str] = ()) -> Sources:
    """The roots :data:`RULES` apply to for this install (roots that do not exist are kept: the
    manifest records them as absent). ``system_units``: system units that ran the gateway (their
    journal is collected as ``system:<unit>``, which needs root)."""
    notes: list[str] = []
    skipped: list[dict[str, Any]] = []
    cfg_path = install.config_path
    facts = _config_facts(cfg_path)
    skipped.extend(facts.skipped)
    notes.extend(facts.notes)
    roots = _log_roots(install, facts.log_file)
    roots += _config_roots(install, facts.includes, skipped)
    roots += _state_roots(install)
    roots += _exposure_roots(install, facts.workspace)
    units: tuple[str, ...] = ()
    if journal:
        if shutil.which("journalctl", path=install.env.get("PATH", os.defpath) + os.pathsep + os.defpath):
            units = (*(f"system:{u}" for u in system_units), *install.systemd_units())
        else:
            notes.append("journalctl not found: the gateway's systemd user journal was not collected")
    return Sources(tuple(roots), units, _owner_uid(install.state_dir), tuple(notes), tuple(skipped))


def _log_roots(install: Install, log_file_setting: str | None) -> list[Root]:
    """The gateway's file logs: the shared temp dirs, the ``logging.file`` folder, macOS's launchd logs."""
    roots: list[Root] = []
    fams = _log_families(install)
    seen_tmp: set[str] = set()
    for d in install.tmp_log_dirs():
        if str(d) not in seen_tmp:
            seen_tmp.add(str(d))
            roots.append(Root("tmp-logs", d, shared=True, placeholders={"family": fams}))

    if log_file_setting:
        log_file = Path(os.path.normpath(_expand_user_path(log_file_setting, install, install.config_path.parent)))
        stem, ext = log_file.stem, log_file.suffix
        roots.append(Root("log-file", log_file.parent, shared=_world_writable(log_file.parent),
                          placeholders={"log_name": (_esc(log_file.name),), "log_stem": (_esc(stem),),
                                        "log_ext": (_esc(ext),)}))
    for product in ("openclaw", "clawdbot"):
        roots.append(Root("macos-logs", install.home / "Library" / "Logs" / product))
    return roots


def _config_roots(install: Install, includes: Sequence[Path], skipped: list[dict[str, Any]]) -> list[Root]:
    """The config dir and the ``OPENCLAW_INCLUDE_ROOTS`` holding ``$include`` files (an include outside
    them all is added to ``skipped``)."""
    # $include files: under the config dir, or under an OPENCLAW_INCLUDE_ROOTS entry
    roots: list[Root] = []
    cfg_path = install.config_path
    config_dir = cfg_path.parent
    include_roots = [Path(p) for p in install.env.get("OPENCLAW_INCLUDE_ROOTS", "").split(os.pathsep) if p]
    by_root: dict[Path, list[str]] = {}
    for inc in includes:
        home_root = next((r for r in [config_dir, *include_roots] if _is_within(inc, r)), None)
        if home_root is None:
            skipped.append({"source": str(inc), "reason": "$include outside the config dir and "
                            "OPENCLAW_INCLUDE_ROOTS (OpenClaw refuses it too): not collected"})
            continue
        by_root.setdefault(home_root, []).append(_esc(inc.relative_to(home_root).as_posix()))
    roots.append(Root("config", config_dir, placeholders={"config": (_esc(cfg_path.name),),
                                                           "includes": tuple(by_root.get(config_dir, ()))}))
    for r in include_roots:
        if r != config_dir and by_root.get(r):
            roots.append(Root("include-roots", r, placeholders={"includes": tuple(by_root[r])}))
    return roots


def _state_roots(install: Install) -> list[Root]:
    """The state dir, ``~/.openclaw`` (2026.1.x's exec approvals), the OAuth dir, ``~/.config/openclaw``."""
    roots: list[Root] = []
    roots.append(Root("state", install.state_dir))
    home_oc = install.home / ".openclaw"
    roots.append(Root("home-openclaw", home_oc))
    oauth = install.env.get("OPENCLAW_OAUTH_DIR") or install.env.get("CLAWDBOT_OAUTH_DIR")
    if oauth:
        roots.append(Root("oauth", _expand_user_path(oauth, install, install.home)))
    roots.append(Root("xdg-config", install.home / ".config" / "openclaw"))
    return roots


def _exposure_roots(install: Install, workspace_setting: str | None) -> list[Root]:
    """Where a credential may have leaked: the home of the user that runs the gateway (its shell
    histories) and the agent's workspace: ``agents.defaults.workspace``, else ``OPENCLAW_WORKSPACE_DIR``,
    else ``<state>/workspace`` (2026.9.6 ``resolveDefaultAgentWorkspaceDir``); and 2026.1.x's default,
    ``~/.openclaw/workspace[-<profile>]`` whatever the state dir (a folder met twice is taken once)."""
    if workspace_setting:
        workspace = Path(os.path.normpath(_expand_user_path(workspace_setting, install, install.home)))
    elif install.env.get("OPENCLAW_WORKSPACE_DIR", "").strip():
        workspace = _expand_user_path(install.env["OPENCLAW_WORKSPACE_DIR"].strip(), install, install.home)
    else:
        workspace = install.state_dir / "workspace"
    legacy = "workspace" if not install.profile or install.profile == "default" else f"workspace-{install.profile}"
    return [Root("home", install.home), Root("workspace", workspace),
            Root("home-workspace", install.home / ".openclaw" / legacy)]


def _esc(text: str) -> str:
    """Escape glob metacharacters so a literal name can be used as a pattern."""
    return re.sub(r"([*?\[])", r"[\1]", text)
