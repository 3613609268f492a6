"""Evidence: collect an OpenClaw install's logs, transcripts, state and config into a sealed case.

The modules, in the order a snapshot runs (each one's docstring says more):

* :mod:`.rules`: what is collected, in ONE table, :data:`RULES` (root, glob, category), and why.
* :mod:`.roots` (with :mod:`.configfacts`, what is read of the config): the roots the rules apply
  to, resolved per install by :func:`resolve_roots`.
* :mod:`.patterns`: the rules' globs; :mod:`.walker`: the walk of a root, which never leaves it and
  never follows a symlink; :mod:`.fileinfo`: what is said of a file (stat fields, owner, kind).
* :mod:`.plan`: :func:`estimate`, what a snapshot would take (listings and lstat only).
* :mod:`.copier`: how a file is copied and hashed; :mod:`.collector`: the walk's files copied into
  the case; :mod:`.journald` and :mod:`.sqlite_backup`: the gateway's journal, consistent copies
  of live SQLite stores; :mod:`.progress`: the progress line.
* :mod:`.layout`: the case folder after a snapshot; :mod:`.snapshotting`: :func:`snapshot`, from
  ``evidence/INCOMPLETE`` to the seal; :mod:`.manifest` and :mod:`.seal`: manifest.json,
  SHA256SUMS and seal.json.
* :mod:`.verifier` (with :mod:`.manifest_reader`): :func:`verify`; :mod:`.archive`: :func:`export`
  (a deterministic tar.gz); :mod:`.custody_log`: :func:`custody` appends who/when/why;
  :mod:`.cases`: :func:`case_state`, :func:`list_cases`.

Every name other modules (and the tests) use is re-exported here: ``from moltir import evidence``,
then ``evidence.snapshot(...)``.
"""

from __future__ import annotations

from moltir.evidence.archive import ExportResult, export
from moltir.evidence.archive import parse_recipients as parse_recipients
from moltir.evidence.cases import CaseSummary, case_state, list_cases, summarize
from moltir.evidence.collector import _Collector as _Collector
from moltir.evidence.configfacts import MAX_CONFIG_BYTES as MAX_CONFIG_BYTES
from moltir.evidence.configfacts import read_regular_file as read_regular_file
from moltir.evidence.copier import BUF_SIZE as BUF_SIZE
from moltir.evidence.copier import SPARSE_MAX_EXTENTS as SPARSE_MAX_EXTENTS
from moltir.evidence.copier import SPARSE_MIN_BYTES as SPARSE_MIN_BYTES
from moltir.evidence.copier import OnChunk as OnChunk
from moltir.evidence.copier import _mkdirs as _mkdirs
from moltir.evidence.copier import _open_source as _open_source
from moltir.evidence.copier import _write_all as _write_all
from moltir.evidence.custody_log import custody
from moltir.evidence.fileinfo import _owner_name as _owner_name
from moltir.evidence.journald import JOURNAL_MAX_LINES as JOURNAL_MAX_LINES
from moltir.evidence.journald import JOURNAL_SINCE as JOURNAL_SINCE
from moltir.evidence.journald import JOURNAL_TIMEOUT_S as JOURNAL_TIMEOUT_S
from moltir.evidence.layout import COVERED_CASE_DIRS as COVERED_CASE_DIRS
from moltir.evidence.layout import COVERED_CASE_FILES as COVERED_CASE_FILES
from moltir.evidence.layout import CUSTODY as CUSTODY
from moltir.evidence.layout import EVIDENCE as EVIDENCE
from moltir.evidence.layout import INCOMPLETE as INCOMPLETE
from moltir.evidence.layout import OWN_DIRS as OWN_DIRS
from moltir.evidence.layout import SCHEMA as SCHEMA
from moltir.evidence.layout import SPOOL as SPOOL
from moltir.evidence.layout import _dump as _dump
from moltir.evidence.layout import covered_case_files as covered_case_files
from moltir.evidence.layout import evidence_rel as evidence_rel
from moltir.evidence.layout import sums_line as sums_line
from moltir.evidence.manifest import FILES_PLACEHOLDER as FILES_PLACEHOLDER
from moltir.evidence.manifest import _manifest_chunks as _manifest_chunks
from moltir.evidence.manifest import _sums_chunks as _sums_chunks
from moltir.evidence.manifest_reader import _FileRef as _FileRef
from moltir.evidence.manifest_reader import _JsonStream as _JsonStream
from moltir.evidence.manifest_reader import _manifest_files as _manifest_files
from moltir.evidence.patterns import _match as _match
from moltir.evidence.patterns import _pattern_regex as _pattern_regex
from moltir.evidence.patterns import _prefix as _prefix
from moltir.evidence.plan import Estimate, estimate
from moltir.evidence.progress import PROGRESS_MIN_BYTES as PROGRESS_MIN_BYTES
from moltir.evidence.progress import _Progress as _Progress
from moltir.evidence.roots import Root as Root
from moltir.evidence.roots import Sources as Sources
from moltir.evidence.roots import encode_log_profile as encode_log_profile
from moltir.evidence.roots import resolve_roots
from moltir.evidence.rules import _DATE as _DATE
from moltir.evidence.rules import ALL as ALL
from moltir.evidence.rules import RULES, Rule
from moltir.evidence.rules import Category as Category
from moltir.evidence.rules import CredentialMode as CredentialMode
from moltir.evidence.seal import SKIPPED_SHOWN as SKIPPED_SHOWN
from moltir.evidence.seal import SnapshotResult
from moltir.evidence.snapshotting import snapshot
from moltir.evidence.verifier import VerifyReport, verify
from moltir.evidence.walker import Found as Found
from moltir.evidence.walker import Skip as Skip
from moltir.openclaw.includes import MAX_INCLUDE_DEPTH as MAX_INCLUDE_DEPTH

__all__ = [
    "RULES", "CaseSummary", "Estimate", "ExportResult", "Rule", "SnapshotResult",
    "VerifyReport", "case_state", "custody", "estimate", "export", "list_cases", "resolve_roots", "snapshot",
    "summarize", "verify",
]
