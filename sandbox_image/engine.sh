#!/usr/bin/env bash
# Makes a Docker engine answer on this machine, for Crucible's docker sandbox backend. Idempotent:
#   - an engine already answers (`docker info` works)       -> nothing to do;
#   - no dockerd binary, and we are root with apt-get        -> install Debian's docker.io + containerd, runc, iptables;
#   - dockerd installed but not running                      -> start it in the background, logging to
#                                                               ${CRUCIBLE_HOME:-.crucible}/dockerd.log, and wait
#                                                               (at most CRUCIBLE_DOCKERD_WAIT_S, default 60 s) until
#                                                               `docker info` works.
# Not root and no engine: says what to run instead and exits 1. Machines with systemd get `systemctl start docker`
# first, so a distribution-managed engine stays managed.
set -euo pipefail

CRUCIBLE_HOME=${CRUCIBLE_HOME:-.crucible}
WAIT_S=${CRUCIBLE_DOCKERD_WAIT_S:-60}
LOG="$CRUCIBLE_HOME/dockerd.log"

say() { echo "engine.sh: $*" >&2; }
engine_up() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }

wait_for_engine() {
    local waited=0
    until engine_up; do
        if [ "$waited" -ge "$WAIT_S" ]; then
            say "dockerd did not answer within ${WAIT_S}s; last lines of $LOG:"
            tail -n 20 "$LOG" >&2 2>/dev/null || true
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "engine ready after ${waited}s ($(docker info --format '{{.ServerVersion}}, {{.Driver}}, cgroup {{.CgroupDriver}}' 2>/dev/null))"
}

if engine_up; then
    say "a Docker engine already answers ($(docker info --format '{{.ServerVersion}}' 2>/dev/null)); nothing to do"
    exit 0
fi

# 1. Install the engine when missing (Debian packages; no other download).
if ! command -v dockerd >/dev/null 2>&1; then
    if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
        say "no Docker engine here: install one (as root on Debian/Ubuntu: apt-get install -y docker.io containerd runc iptables)"
        say "or use the default bwrap backend, which needs only bubblewrap"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(docker.io containerd runc iptables)
    # Package lists may be missing or stale on a fresh machine: refresh them only when the install needs it.
    if ! apt-get install -y -q --no-install-recommends "${pkgs[@]}"; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${pkgs[@]}"
    fi
fi

# 2. Start it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] && is_root; then
    systemctl start docker 2>/dev/null || true
    if engine_up; then
        say "started docker.service"
        exit 0
    fi
fi
if ! is_root; then
    say "dockerd is installed but not running, and starting it needs root: ask an administrator to start it"
    say "(or add yourself to the docker group once it runs)"
    exit 1
fi
mkdir -p "$CRUCIBLE_HOME"
if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is already starting (pid $(pgrep -x dockerd | head -n1)); waiting for it"
else
    say "starting dockerd in the background (log: $LOG)"
    # setsid + nohup: the engine outlives this script and the shell or make that ran it.
    setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
fi
wait_for_engine
