#!/usr/bin/env bash
# Installs code-server (a real VS Code in the browser) from npm into a cache folder, once, and
# prints the path of its executable. Its native modules are built here, because their install
# scripts download prebuilt binaries from GitHub. Needs Node 20, npm, a C++ toolchain,
# pkg-config, libkrb5-dev and ripgrep (Debian: build-essential pkg-config libkrb5-dev ripgrep).
set -euo pipefail

VERSION="${CODE_SERVER_VERSION:-4.100.3}"  # the newest code-server that runs on Node 20
CACHE="${OSSLSP_E2E_CACHE:-$HOME/.cache/osslsp-e2e}"
PREFIX="$CACHE/code-server-$VERSION"
BIN="$PREFIX/node_modules/code-server/out/node/entry.js"
DONE="$PREFIX/.installed"

if [[ -f "$DONE" ]]; then
  echo "$BIN"
  exit 0
fi

log() { echo "install-code-server: $*" >&2; }
rm -rf "$PREFIX" && mkdir -p "$PREFIX"
cd "$PREFIX"
export npm_config_nodedir=/usr  # node-gyp builds against the system's Node headers, no download
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

log "npm install code-server@$VERSION (no install scripts)"
echo '{"name": "osslsp-e2e-code-server", "private": true}' > package.json
npm install --no-save --ignore-scripts "code-server@$VERSION" >&2

NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
SERVER="$PREFIX/node_modules/code-server"
VSCODE="$SERVER/lib/vscode"

log "building code-server's own native module (argon2)"
npm rebuild argon2 >&2

log "installing VS Code's dependencies"
(cd "$VSCODE" && npm install --omit=dev --ignore-scripts >&2)
(cd "$VSCODE/extensions" && npm install --omit=dev --ignore-scripts >&2)

mkdir -p "$VSCODE/node_modules/@vscode/ripgrep/bin"
cp "$(command -v rg)" "$VSCODE/node_modules/@vscode/ripgrep/bin/rg"

for module in node-pty @vscode/spdlog native-watchdog kerberos @vscode/deviceid; do
  log "building $module"
  (cd "$VSCODE/node_modules/$module" && node "$NODE_GYP" rebuild >&2)
done

# What code-server's postinstall.sh would link.
ln -sfn node_modules "$VSCODE/node_modules.asar"
ln -sfn code-linux.sh "$VSCODE/bin/remote-cli/code-server"
ln -sfn browser-linux.sh "$VSCODE/bin/helpers/browser.sh"

touch "$DONE"
echo "$BIN"
