#!/usr/bin/env bash
# Builds the Docker sandbox image crucible-sandbox:<RUNNER_VERSION> (the version is read from runner.py).
#
#   bash sandbox_image/build.sh                     # default: no image registry needed (Debian packages only)
#   bash sandbox_image/build.sh --from-dockerfile   # `docker build` of sandbox_image/Dockerfile (needs a registry + PyPI)
#   options: --force       rebuild even if the tag exists (reuses the cached rootfs)
#            --no-cache    also redo debootstrap instead of using the cached rootfs tarball
#            --tag NAME:T  build under another tag
#
# Default path: `debootstrap --variant=minbase --include=python3,... bookworm` into a scratch directory, from the
# Debian mirror this machine's apt already uses (or $CRUCIBLE_DEBIAN_MIRROR); add user 1000, strip caches and docs;
# keep the result as a tarball under ${CRUCIBLE_HOME:-.crucible}/cache/ (so rebuilds skip debootstrap); add the runner
# (the modules of sandbox_image/ as one script, made by bundle.py with this machine's python3);
# `docker import` it with USER 1000, WORKDIR /tmp and the runner as CMD. Same packages as the Dockerfile's allowlist.
# Idempotent: an existing tag is left alone unless --force. Needs root (debootstrap) and a running engine
# (bash sandbox_image/engine.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRUCIBLE_HOME=${CRUCIBLE_HOME:-.crucible}
SUITE=${CRUCIBLE_SANDBOX_SUITE:-bookworm}
# The allowlist, as Debian packages; keep in step with the Dockerfile's pip line. Then the toolchains of the other
# languages, the same Debian packages that sandbox_image/languages.py names for the bwrap backend (`make toolchains`).
PACKAGES=python3,python3-numpy,python3-sortedcontainers
PACKAGES=$PACKAGES,gcc,g++,libc6-dev,nodejs,node-typescript,rustc,golang-go,openjdk-17-jdk-headless,php-cli
PACKAGES=$PACKAGES,libjavatuples-java
# Bump when the rootfs recipe below changes, so cached tarballs made by an older recipe are not reused.
RECIPE=3

say() { echo "build.sh: $*" >&2; }
die() { say "$*"; exit 1; }

FORCE=0; NO_CACHE=0; FROM_DOCKERFILE=0; TAG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=1 ;;
        --no-cache) NO_CACHE=1; FORCE=1 ;;
        --from-dockerfile) FROM_DOCKERFILE=1 ;;
        --tag) shift; TAG=${1:?--tag needs NAME:TAG} ;;
        --tag=*) TAG=${1#--tag=} ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

VERSION=$(sed -n 's/^RUNNER_VERSION *= *["'\'']\([^"'\'']*\)["'\''].*/\1/p' "$HERE/runner.py" | head -n1)
[ -n "$VERSION" ] || die "cannot read RUNNER_VERSION from $HERE/runner.py"
TAG=${TAG:-crucible-sandbox:$VERSION}

command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 \
    || die "no Docker engine answers: run bash sandbox_image/engine.sh first (or make sandbox-docker)"

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    say "$TAG already exists; nothing to do (--force rebuilds it)"
    exit 0
fi

if [ "$FROM_DOCKERFILE" = 1 ]; then
    say "docker build -t $TAG from $HERE/Dockerfile"
    docker build --build-arg "RUNNER_VERSION=$VERSION" -t "$TAG" -f "$HERE/Dockerfile" "$HERE"
    exit 0
fi

# --- registry-free build ---------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "the registry-free build runs debootstrap, which needs root; as non-root use --from-dockerfile"
command -v debootstrap >/dev/null 2>&1 || {
    if command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap \
            || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
    fi
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (apt-get install debootstrap) or use --from-dockerfile"
}

# The mirror this machine's apt uses for $SUITE: deb822 .sources files first, then the classic sources.list.
debian_mirror() {
    if [ -n "${CRUCIBLE_DEBIAN_MIRROR:-}" ]; then echo "$CRUCIBLE_DEBIAN_MIRROR"; return; fi
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$SUITE" '
            function flush() { if (!found && uri != "" && ok && enabled) { print uri; found = 1 } uri = ""; ok = 0; enabled = 1 }
            BEGIN { enabled = 1 }
            /^[[:space:]]*$/ { flush(); next }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
            END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2 }'
    done
}
MIRROR=$(debian_mirror | head -n1)
[ -n "$MIRROR" ] || die "no Debian mirror for $SUITE in this machine's apt sources: set CRUCIBLE_DEBIAN_MIRROR=URL or use --from-dockerfile"

ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
KEY=$(printf '%s|%s|%s|%s' "$SUITE" "$ARCH" "$PACKAGES" "$RECIPE" | sha256sum | cut -c1-12)
CACHE_DIR="$CRUCIBLE_HOME/cache"
CACHE="$CACHE_DIR/crucible-sandbox-rootfs-$SUITE-$ARCH-$KEY.tar"
mkdir -p "$CACHE_DIR"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/crucible-rootfs.XXXXXX")
ROOTFS="$WORK/rootfs"
cleanup() {
    # debootstrap mounts proc/sys inside the target and may leave them behind when it fails: never rm through a mount.
    if [ -d "$ROOTFS" ]; then
        awk -v r="$ROOTFS" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done
    fi
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
mkdir -p "$ROOTFS"

if [ "$NO_CACHE" = 0 ] && [ -s "$CACHE" ]; then
    say "using cached rootfs $CACHE"
    tar --numeric-owner -xpf "$CACHE" -C "$ROOTFS"
else
    say "debootstrap $SUITE ($ARCH, minbase + $PACKAGES) from the mirror in this machine's apt sources"
    debootstrap --variant=minbase --arch="$ARCH" --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
    # Nothing inside the sandbox installs packages (it has no network), and docs, caches and logs are dead weight.
    rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/debconf/*-old \
           "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
           "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/* "$ROOTFS"/dev/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.[!.]* || true
    : >"$ROOTFS/etc/apt/sources.list"   # the image never fetches packages; do not carry the build host's mirror
    rm -f "$ROOTFS"/etc/apt/sources.list.d/* "$ROOTFS/etc/hostname" "$ROOTFS/etc/resolv.conf"
    # The sandbox user, uid/gid 1000, home /tmp (the only writable place in the container), no login shell.
    grep -q '^sandbox:' "$ROOTFS/etc/group" || echo 'sandbox:x:1000:' >>"$ROOTFS/etc/group"
    grep -q '^sandbox:' "$ROOTFS/etc/passwd" \
        || echo 'sandbox:x:1000:1000:Crucible sandbox:/tmp:/usr/sbin/nologin' >>"$ROOTFS/etc/passwd"
    grep -q '^sandbox:' "$ROOTFS/etc/shadow" || echo 'sandbox:!:19000:0:99999:7:::' >>"$ROOTFS/etc/shadow"
    tar --numeric-owner -C "$ROOTFS" -cf "$CACHE.part" . && mv "$CACHE.part" "$CACHE"
    say "cached the rootfs as $CACHE ($(du -h "$CACHE" | cut -f1))"
fi

install -d -m 0755 "$ROOTFS/opt/crucible"
"${PYTHON:-python3}" "$HERE/bundle.py" >"$WORK/runner.py" || die "cannot bundle the runner ($HERE/bundle.py)"
install -m 0644 "$WORK/runner.py" "$ROOTFS/opt/crucible/runner.py"

OLD_ID=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
say "docker import -> $TAG"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'USER 1000:1000' \
    --change 'WORKDIR /tmp' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp' \
    --change "LABEL org.opencontainers.image.title=crucible-sandbox org.opencontainers.image.version=$VERSION org.crucible.runner-version=$VERSION" \
    --change 'CMD ["python3", "-I", "/opt/crucible/runner.py"]' \
    --message "crucible-sandbox $VERSION: debootstrap $SUITE minbase + $PACKAGES" \
    - "$TAG" >/dev/null
# A rebuild moves the tag; drop the image it leaves untagged, unless a container still uses it.
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(docker image inspect --format '{{.Id}}' "$TAG")" ]; then
    docker rmi "$OLD_ID" >/dev/null 2>&1 || true
fi
say "built $TAG ($(docker image inspect --format '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
