#!/usr/bin/env bash
# scripts/builders.sh — install, start and prepare the real Docker engines (with their
# embedded BuildKit) that cargo-buildtest's tests and CI talk to.
#
#   scripts/builders.sh [up]   install what is missing, start the engines, import the offline images
#   scripts/builders.sh down   stop the engines (by the pid in their pid files)
#   scripts/builders.sh up-docker26b / down-docker26b   (re)start or stop only docker26b (the
#                              several-nodes failover test kills it by pid and starts it again)
#   scripts/builders.sh status health of both engines, incl. a real BuildKit build (exit 1 if unhealthy)
#   scripts/builders.sh env    print `export` lines; use: eval "$(scripts/builders.sh env)"
#   scripts/builders.sh rust-image  import buildtest/rust:bookworm (Debian's rustc-web and cargo-web,
#                              for the probe built by the builder; not part of `up`) into both engines
#   scripts/builders.sh buildx unpack trixie's docker-buildx as a private CLI plugin (benchmarks only,
#                              not part of `up`); prints `export BUILDTEST_BUILDX_DOCKER_CONFIG=...`
#
# Engines:
#   docker20  Docker 20.10.24 from this machine's Debian (bookworm) — embedded BuildKit v0.8.3
#             socket unix:///var/run/docker.sock (the default engine, so plain tools find it)
#   docker26  Docker 26.1.5 from Debian trixie, unpacked into a private prefix (never installed with
#             dpkg), run with bookworm's runc — embedded BuildKit v0.13.2
#             socket unix:///run/buildtest/docker26.sock
#   docker26c the same Docker 26.1.5 with the containerd image store (daemon.json
#             {"features":{"containerd-snapshotter":true}}): its own dockerd, data root, exec root and
#             the containerd that dockerd starts under that exec root — BuildKit v0.13.2 that can
#             export cache and run merge/diff ops; socket unix:///run/buildtest/docker26c.sock
#   docker26b a second plain Docker 26.1.5 (own data root and socket unix:///run/buildtest/docker26b.sock):
#             two nodes of one version for the several-nodes tests (BUILDTEST_NODES)
# and a loopback registry (Debian's docker-registry, http on 127.0.0.1:5000, pid file
# /run/buildtest/registry.pid) that docker26c may push to (cache type=registry).
# Both get the offline images buildtest/busybox:latest (made from busybox-static) and
# buildtest/debian:bookworm (a minbase rootfs made with mmdebstrap, cached as a tar in the state dir),
# and buildtest/configured:latest (built from tests/fixtures/configured/Dockerfile on the busybox image).
#
# Progress goes to stderr (prefixed "builders:"); `up` and `env` print the export lines on stdout.
# See docs/builders.md. Runs as root on Debian bookworm; needs no internet beyond the Debian mirror
# the machine's apt is already configured with.
set -Eeuo pipefail

# ---------------------------------------------------------------- settings
STATE_DIR=${BUILDTEST_BUILDERS_STATE:-/var/lib/buildtest-builders} # data roots, logs, apt state, rootfs
RUN_DIR=${BUILDTEST_BUILDERS_RUN:-/run/buildtest}                  # sockets, pid files, exec roots
PREFIX26=${BUILDTEST_DOCKER26_PREFIX:-/opt/buildtest/docker26}     # unpacked trixie packages
PREFIX_BUILDX=${BUILDTEST_BUILDX_PREFIX:-/opt/buildtest/buildx}   # unpacked trixie docker-buildx
TIMEOUT=${BUILDTEST_BUILDERS_TIMEOUT:-60}                          # seconds to wait for an engine

IMAGE=buildtest/busybox:latest
DEBIAN_IMAGE=buildtest/debian:bookworm
CONFIGURED_IMAGE=buildtest/configured:latest
CONFIGURED_DOCKERFILE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/fixtures/configured/Dockerfile
DEBIAN_SUITE=bookworm
DOCKER=/usr/bin/docker # bookworm's 20.10 client: its classic builder speaks BuildKit without buildx
SOCK20=/var/run/docker.sock
SOCK26=$RUN_DIR/docker26.sock
SOCK26B=$RUN_DIR/docker26b.sock # a second Docker 26 engine (`up-docker26b`): two nodes of one version
SUITE26=trixie
WANT26=26.1.            # engine version prefix we accept from $SUITE26
PKGS26=(docker.io containerd docker-cli)
SOCK26C=$RUN_DIR/docker26c.sock
ENGINES=(docker20 docker26 docker26c)
REGISTRY_ADDR=${BUILDTEST_REGISTRY_ADDR:-127.0.0.1:5000} # loopback only

LOG_DIR=$STATE_DIR/logs
export LC_ALL=C

# ---------------------------------------------------------------- output helpers
log() { printf 'builders: %s\n' "$*" >&2; }

# tail_log FILE [N]: show the end of a log file, indented, on stderr.
tail_log() {
    local f=$1 n=${2:-25}
    if [[ -s $f ]]; then
        printf 'builders:   --- last %s lines of %s ---\n' "$n" "$f" >&2
        tail -n "$n" "$f" | sed 's/^/builders:   | /' >&2
    fi
}

# die MESSAGE [LOGFILE]: report a failure (with the log tail) and exit 1.
die() {
    log "error: $1"
    [[ -n ${2:-} ]] && tail_log "$2" 40
    exit 1
}

on_err() {
    local rc=$1 line=$2 cmd=$3
    trap - ERR
    log "error: command failed (exit $rc) at ${BASH_SOURCE[0]}:$line: $cmd"
    exit "$rc"
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

# run_logged LOGFILE CMD...: run quietly into LOGFILE; on failure show its tail and exit.
run_logged() {
    local logf=$1
    shift
    if ! "$@" >>"$logf" 2>&1; then
        die "'$*' failed" "$logf"
    fi
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- process helpers
# pid_alive PID: the process exists and is not a zombie (PID 1 here reaps late).
pid_alive() {
    local pid=${1:-} stat
    [[ $pid =~ ^[1-9][0-9]*$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z && ${stat%% *} != X ]]
}

# pid_has_arg PID ARG: one of the process's arguments is exactly ARG (guards against pid reuse).
pid_has_arg() {
    tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2"
}

# pidfile_pid PIDFILE ARG: print the pid in PIDFILE if it is alive and has ARG on its command line.
pidfile_pid() {
    local pid
    [[ -r $1 ]] || return 1
    pid=$(tr -dc '0-9' <"$1")
    pid_alive "$pid" && pid_has_arg "$pid" "$2" || return 1
    printf '%s\n' "$pid"
}

# stop_pid NAME PID: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
    local what=$1 pid=$2 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    log "$what (pid $pid) did not exit after 30 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    die "$what (pid $pid) is still alive after SIGKILL"
}

# ---------------------------------------------------------------- engine table
# select_engine NAME: set the E_* variables describing one engine.
select_engine() {
    E_NAME=$1
    E_PIDFILE=$RUN_DIR/$1.pid
    E_EXEC=$RUN_DIR/$1
    E_DATA=$STATE_DIR/$1
    E_LOG=$LOG_DIR/$1.log
    E_CLOG=$LOG_DIR/$1-client.log
    E_CONFIG=$STATE_DIR/config/$1.json
    E_STORAGE=overlay2
    E_CONFIG_JSON=''
    case $1 in
    docker20)
        E_SOCK=$SOCK20
        E_DOCKERD=/usr/sbin/dockerd
        E_PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
        E_WANT=20.10.
        ;;
    docker26)
        E_SOCK=$SOCK26
        E_DOCKERD=$PREFIX26/usr/sbin/dockerd
        # Its own containerd + shims first; runc (and docker-init) then come from bookworm's /usr/sbin,
        # /usr/bin: trixie's runc needs glibc 2.38 and is deliberately not unpacked.
        E_PATH=$PREFIX26/usr/bin:$PREFIX26/usr/sbin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
        E_WANT=$WANT26
        ;;
    docker26c)
        # The same unpacked Docker 26.1.5 as docker26, but with the containerd image store: dockerd
        # then keeps images and build results in the containerd it starts under $E_EXEC/containerd
        # (state there, content and snapshots under $E_DATA/containerd), separate from docker26's.
        E_SOCK=$SOCK26C
        E_DOCKERD=$PREFIX26/usr/sbin/dockerd
        E_PATH=$PREFIX26/usr/bin:$PREFIX26/usr/sbin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
        E_WANT=$WANT26
        E_STORAGE=overlayfs
        E_CONFIG_JSON='{"features":{"containerd-snapshotter":true},"insecure-registries":["'$REGISTRY_ADDR'"]}'
        ;;
    docker26b)
        # The same unpacked Docker 26 as docker26, with its own socket, pid file, data and exec root.
        select_engine docker26
        E_NAME=docker26b
        E_PIDFILE=$RUN_DIR/docker26b.pid
        E_EXEC=$RUN_DIR/docker26b
        E_DATA=$STATE_DIR/docker26b
        E_LOG=$LOG_DIR/docker26b.log
        E_CLOG=$LOG_DIR/docker26b-client.log
        E_CONFIG=$STATE_DIR/config/docker26b.json
        E_SOCK=$SOCK26B
        ;;
    *) die "unknown engine '$1'" ;;
    esac
}

# Embedded BuildKit of an engine version: fixed by the vendored sources of Debian's packages
# (dockerd does not report it over its HTTP API).
buildkit_for() {
    case $1 in
    20.10.*) echo v0.8.3 ;;
    26.1.*) echo v0.13.2 ;;
    *) echo unknown ;;
    esac
}

# ---------------------------------------------------------------- Docker API / client
ping() { curl -sf --max-time 3 --unix-socket "$1" http://localhost/_ping >/dev/null 2>&1; }

api_get() { curl -sS --fail --max-time 10 --unix-socket "$1" "http://localhost$2"; }

# engine_version SOCK: print "ENGINE_VERSION API_VERSION" from GET /version.
engine_version() {
    local json
    json=$(api_get "$1" /version) || return 1
    printf '%s %s\n' \
        "$(sed -n 's/.*"Version":"\([^"]*\)","ApiVersion".*/\1/p' <<<"$json")" \
        "$(sed -n 's/.*"ApiVersion":"\([^"]*\)".*/\1/p' <<<"$json")"
}

# image_id SOCK [IMAGE]: print the id of IMAGE (default $IMAGE) if the engine has it.
image_id() {
    local json
    json=$(curl -sf --max-time 10 --unix-socket "$1" "http://localhost/images/${2:-$IMAGE}/json") || return 1
    sed -n 's/^{"Id":"\([^"]*\)".*/\1/p' <<<"$json"
}

# grpc_upgrade SOCK: the engine accepts buildx's docker-driver route to its embedded BuildKit
# (POST /grpc upgraded to h2c), which is how cargo-buildtest reaches it.
grpc_upgrade() {
    local first
    first=$({ curl -s -i --max-time 0.5 --unix-socket "$1" -X POST \
        -H 'Connection: Upgrade' -H 'Upgrade: h2c' http://localhost/grpc 2>/dev/null || true; } | head -n 1)
    [[ $first == "HTTP/1.1 101"* ]]
}

# dcli SOCK ARGS...: bookworm's docker client against one engine, isolated from the caller's
# docker config and context.
dcli() {
    local sock=$1
    shift
    env -u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH \
        DOCKER_CONFIG="$STATE_DIR/docker-config" "$DOCKER" -H "unix://$sock" "$@"
}

# ---------------------------------------------------------------- installation
pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

apt_install_bookworm() {
    local pkgs=(docker.io runc busybox-static curl mmdebstrap) missing=() p
    for p in "${pkgs[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    if ((${#missing[@]} == 0)) && [[ -x /usr/sbin/dockerd && -x $DOCKER && -x /bin/busybox ]]; then
        log "packages: ${pkgs[*]} already installed"
        return
    fi
    local t0 logf=$LOG_DIR/apt-install.log
    t0=$(now)
    : >"$logf"
    log "packages: installing ${missing[*]} (log: $logf)"
    # Never let the package's init scripts start a system dockerd on /var/run/docker.sock.
    local own_policy=''
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends)
    # A fresh machine may have no package lists yet: update once, then retry the install.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null ||
        ! "${apt[@]}" install "${missing[@]}" >>"$logf" 2>&1; then
        run_logged "$logf" apt-get -q update
        if ! "${apt[@]}" install "${missing[@]}" >>"$logf" 2>&1; then
            [[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d
            die "apt-get install ${missing[*]} failed" "$logf"
        fi
    fi
    [[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d
    log "packages: installed in $(elapsed "$t0") s"
}

# The machine's own Debian mirror: the URIs of the deb822 stanza for this release's suite, else the
# first URIs line, else the first `deb` line of sources.list. BUILDTEST_DEBIAN_MIRROR overrides.
debian_mirror() {
    if [[ -n ${BUILDTEST_DEBIAN_MIRROR:-} ]]; then
        echo "$BUILDTEST_DEBIAN_MIRROR"
        return
    fi
    local codename uri='' f=/etc/apt/sources.list.d/debian.sources
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    if [[ -r $f ]]; then
        uri=$(awk -v s="$codename" 'BEGIN { RS = "" }
            { u = ""; ok = 0; n = split($0, L, "\n")
              for (i = 1; i <= n; i++) {
                if (L[i] ~ /^URIs:/) { split(L[i], a, /[ \t]+/); u = a[2] }
                if (L[i] ~ /^Suites:/ && (" " L[i] " ") ~ ("[ \t]" s "[ \t]")) ok = 1
              }
              if (ok && u != "") { print u; exit } }' "$f")
        [[ -n $uri ]] || uri=$(awk '/^URIs:/ { print $2; exit }' "$f")
    fi
    if [[ -z $uri && -r /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    [[ -n $uri ]] || die "cannot find the machine's Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (set BUILDTEST_DEBIAN_MIRROR)"
    echo "$uri"
}

# trixie_apt LOGFILE: point TRIXIE_APT (apt options) at a private sources list for $SUITE26 on the
# machine's own mirror, with private lists and caches under $STATE_DIR/apt-$SUITE26 (the system's
# sources, lists and caches are untouched), and update its lists.
trixie_apt() {
    local logf=$1 mirror keyring apt_dir=$STATE_DIR/apt-$SUITE26
    mirror=$(debian_mirror)
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    if [[ -r $keyring ]]; then
        echo "deb [signed-by=$keyring] $mirror $SUITE26 main" >"$apt_dir/sources.list"
    else
        echo "deb $mirror $SUITE26 main" >"$apt_dir/sources.list"
    fi
    TRIXIE_APT=(
        -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
        -o APT::Sandbox::User=root -o Acquire::Languages=none
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false
    )
    run_logged "$logf" apt-get -q "${TRIXIE_APT[@]}" update
}

# trixie_version PACKAGE LOGFILE: the candidate version of PACKAGE in $SUITE26 (after trixie_apt).
trixie_version() {
    apt-cache "${TRIXIE_APT[@]}" show --no-all-versions "$1" 2>>"$2" | awk '/^Version:/ && v == "" { v = $2 } END { print v }'
}

# trixie_unpack DEST LOGFILE PACKAGE...: download the packages (after trixie_apt) and unpack them
# with `dpkg-deb -x` into DEST (created fresh; never installed with dpkg). DEST/.buildtest-installed
# lists the unpacked package versions.
trixie_unpack() {
    local dest=$1 logf=$2 debs deb
    shift 2
    debs=$(mktemp -d "$STATE_DIR/apt-$SUITE26/debs.XXXXXX")
    (
        cd "$debs"
        run_logged "$logf" apt-get -q "${TRIXIE_APT[@]}" download "$@"
    )
    rm -rf "$dest"
    mkdir -p "$dest"
    for deb in "$debs"/*.deb; do
        run_logged "$logf" dpkg-deb -x "$deb" "$dest"
    done
    for deb in "$debs"/*.deb; do
        # shellcheck disable=SC2016  # dpkg-deb's own ${field} syntax
        dpkg-deb --showformat='${Package}=${Version}\n' -W "$deb"
    done >"$dest/.buildtest-installed"
    rm -rf "$debs"
}

install_docker26() {
    local marker=$PREFIX26/.buildtest-installed
    if [[ -x $PREFIX26/usr/sbin/dockerd && -f $marker ]]; then
        log "docker26: already unpacked in $PREFIX26 ($(tr '\n' ' ' <"$marker"))"
        return
    fi
    local t0 ver logf=$LOG_DIR/apt-$SUITE26.log
    t0=$(now)
    : >"$logf"
    log "docker26: fetching ${PKGS26[*]} from $SUITE26 (private apt state in $STATE_DIR/apt-$SUITE26, log: $logf)"
    trixie_apt "$logf"
    ver=$(trixie_version docker.io "$logf")
    [[ $ver == "$WANT26"* ]] ||
        die "docker26: $SUITE26 offers docker.io '${ver:-nothing}', expected ${WANT26}x" "$logf"
    local tmp=$PREFIX26.tmp.$$ f
    trixie_unpack "$tmp" "$logf" "${PKGS26[@]}"
    for f in usr/sbin/dockerd usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/docker; do
        [[ -x $tmp/$f ]] || die "docker26: $f missing after unpacking ${PKGS26[*]}" "$logf"
    done
    [[ ! -e $tmp/usr/sbin/runc && ! -e $tmp/usr/bin/runc ]] ||
        die "docker26: a runc was unpacked into the prefix; it must come from bookworm"
    rm -rf "$PREFIX26"
    mkdir -p "$(dirname "$PREFIX26")"
    mv "$tmp" "$PREFIX26"
    log "docker26: unpacked $ver into $PREFIX26 in $(elapsed "$t0") s"
}

# ---------------------------------------------------------------- base image
ROOTFS_TAR=$STATE_DIR/image/busybox-rootfs.tar

make_rootfs_tar() {
    if [[ -s $ROOTFS_TAR && $ROOTFS_TAR -nt /bin/busybox ]]; then
        return
    fi
    log "image: building the busybox rootfs from busybox-static"
    local root=$STATE_DIR/image/rootfs applet
    rm -rf "$root"
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
    cp /bin/busybox "$root/bin/busybox"
    while read -r applet; do
        [[ -n $applet && $applet != bin/busybox ]] || continue
        mkdir -p "$root/$(dirname "$applet")"
        ln -sfn /bin/busybox "$root/$applet"
    done < <(/bin/busybox --list-full)
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
    chmod 0755 "$root/root"
    chmod 1777 "$root/tmp"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        -C "$root" -cf "$ROOTFS_TAR.tmp" .
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$root"
}

# Debian rootfs: `mmdebstrap --variant=minbase` of $DEBIAN_SUITE (+ -updates) from the machine's own
# mirror, cached as a tar (delete it to rebuild). The image's config mirrors Debian's official one.
DEBIAN_TAR=$STATE_DIR/image/debian-$DEBIAN_SUITE-minbase.tar
MMDEBSTRAP_HOOKS=/usr/share/mmdebstrap/hooks

make_debian_tar() {
    if [[ -s $DEBIAN_TAR ]]; then
        return
    fi
    command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (apt-get install mmdebstrap)"
    local t0 mirror keyring opt='' logf=$LOG_DIR/debian-rootfs.log
    t0=$(now)
    : >"$logf"
    mirror=$(debian_mirror)
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    if [[ -r $keyring ]]; then
        opt="[signed-by=$keyring] "
    fi
    log "image: building the $DEBIAN_SUITE minbase rootfs with mmdebstrap (log: $logf)"
    rm -f "$DEBIAN_TAR.tmp"
    # --mode=root: we are root; mmdebstrap mounts /proc, /sys, /dev in its temporary chroot only.
    # Its default clean-up removes the apt lists and downloaded .debs from the rootfs. The merged-usr
    # hook sets up merged /usr as debootstrap does (usr-is-merged) instead of installing usrmerge,
    # which would pull in the full perl (+70 MiB). Docs, man pages and locales are left out (like
    # Debian's -slim images); copyright files stay. force-unsafe-io skips dpkg's fsyncs (Docker's
    # official Debian images carry the same setting); these dpkg options stay in the image's
    # /etc/dpkg/dpkg.cfg.d/99mmdebstrap.
    [[ -d $MMDEBSTRAP_HOOKS/merged-usr ]] || die "mmdebstrap's $MMDEBSTRAP_HOOKS/merged-usr hook is missing"
    run_logged "$logf" mmdebstrap --mode=root --variant=minbase --format=tar --verbose \
        --hook-dir="$MMDEBSTRAP_HOOKS/merged-usr" \
        --aptopt='Acquire::Languages "none"' --dpkgopt=force-unsafe-io \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        "$DEBIAN_SUITE" "$DEBIAN_TAR.tmp" \
        "deb $opt$mirror $DEBIAN_SUITE main" "deb $opt$mirror $DEBIAN_SUITE-updates main"
    [[ -s $DEBIAN_TAR.tmp ]] || die "mmdebstrap wrote no $DEBIAN_TAR.tmp" "$logf"
    mv "$DEBIAN_TAR.tmp" "$DEBIAN_TAR"
    log "image: $DEBIAN_TAR ($(du -m "$DEBIAN_TAR" | cut -f1) MiB) built in $(elapsed "$t0") s"
}

# import_one IMAGE TAR MAKER MESSAGE CHANGE...: import TAR (made first by the function MAKER) into
# the engine as IMAGE with the given Dockerfile-style config CHANGEs, unless IMAGE is present.
# Sets IMPORTED=1 when it imported, 0 when the image was already there. (Never call it as a condition:
# bash would then ignore `set -e` inside it and in MAKER.)
import_one() { # (uses E_*)
    local image=$1 tar=$2 maker=$3 message=$4 id change changes=()
    shift 4
    IMPORTED=0
    if id=$(image_id "$E_SOCK" "$image") && [[ -n $id ]]; then
        log "$E_NAME: image $image present (${id:7:12})"
        return 0
    fi
    "$maker"
    for change in "$@"; do changes+=(-c "$change"); done
    dcli "$E_SOCK" import -m "$message" "${changes[@]}" "$tar" "$image" >>"$E_CLOG" 2>&1 ||
        die "$E_NAME: docker import of $image failed" "$E_CLOG"
    id=$(image_id "$E_SOCK" "$image") || die "$E_NAME: $image missing right after import" "$E_LOG"
    log "$E_NAME: imported $image (${id:7:12})"
    IMPORTED=1
}

import_images() { # (uses E_*)
    local bbver path=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    bbver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
    import_one "$IMAGE" "$ROOTFS_TAR" make_rootfs_tar \
        "cargo-buildtest offline base image (busybox-static $bbver)" "ENV $path" 'CMD ["/bin/sh"]'
    import_one "$DEBIAN_IMAGE" "$DEBIAN_TAR" make_debian_tar \
        "cargo-buildtest offline Debian $DEBIAN_SUITE (mmdebstrap --variant=minbase)" "ENV $path" 'CMD ["bash"]'
    if ((IMPORTED)); then
        debian_check || die "$E_NAME: '$DEBIAN_IMAGE cat /etc/debian_version' failed right after import" "$E_CLOG"
        log "$E_NAME: $DEBIAN_IMAGE runs (Debian $DEBIAN_VERSION)"
    fi
}

# build_configured: build $CONFIGURED_IMAGE (every image-config field set: ENV, WORKDIR, USER,
# ENTRYPOINT, CMD, EXPOSE, VOLUME, LABEL) from tests/fixtures/configured/Dockerfile on $IMAGE with the
# engine's embedded BuildKit, unless the image there was built from this Dockerfile on this $IMAGE
# (a stamp label holds both hashes). ~3 s per engine when built, 0.1 s when present.
build_configured() { # (uses E_*)
    local base stamp id ctx t0 json
    [[ -f $CONFIGURED_DOCKERFILE ]] || die "$CONFIGURED_DOCKERFILE is missing"
    base=$(image_id "$E_SOCK" "$IMAGE") || die "$E_NAME: $IMAGE missing before building $CONFIGURED_IMAGE"
    stamp=$(cat "$CONFIGURED_DOCKERFILE" <(echo "$base") | sha256sum | cut -c1-16)
    if json=$(api_get "$E_SOCK" "/images/$CONFIGURED_IMAGE/json" 2>/dev/null) &&
        [[ $json == *"\"buildtest.fixture.stamp\":\"$stamp\""* ]]; then
        id=$(image_id "$E_SOCK" "$CONFIGURED_IMAGE")
        log "$E_NAME: image $CONFIGURED_IMAGE present (${id:7:12})"
        return 0
    fi
    t0=$(now)
    ctx=$(mktemp -d)
    cp "$CONFIGURED_DOCKERFILE" "$ctx/Dockerfile"
    DOCKER_BUILDKIT=1 dcli "$E_SOCK" build --network none --progress plain \
        --label "buildtest.fixture.stamp=$stamp" -t "$CONFIGURED_IMAGE" "$ctx" >>"$E_CLOG" 2>&1 || {
        rm -rf "$ctx"
        die "$E_NAME: building $CONFIGURED_IMAGE from $CONFIGURED_DOCKERFILE failed" "$E_CLOG"
    }
    rm -rf "$ctx"
    id=$(image_id "$E_SOCK" "$CONFIGURED_IMAGE") || die "$E_NAME: $CONFIGURED_IMAGE missing right after its build" "$E_CLOG"
    log "$E_NAME: built $CONFIGURED_IMAGE (${id:7:12}) in $(elapsed "$t0") s"
}

run_check() { # (uses E_*)
    dcli "$E_SOCK" run --rm --network none "$IMAGE" true >>"$E_CLOG" 2>&1
}

# debian_check: the Debian image starts and is what it says; sets DEBIAN_VERSION.
debian_check() { # (uses E_*)
    DEBIAN_VERSION=''
    if DEBIAN_VERSION=$(dcli "$E_SOCK" run --rm --network none "$DEBIAN_IMAGE" cat /etc/debian_version 2>>"$E_CLOG") &&
        [[ $DEBIAN_VERSION == 12.* ]]; then
        return 0
    fi
    echo "$DEBIAN_IMAGE: unexpected /etc/debian_version: '$DEBIAN_VERSION'" >>"$E_CLOG"
    return 1
}

# build_smoke: a real BuildKit solve through the engine's embedded BuildKit (classic client with
# DOCKER_BUILDKIT=1, no buildx), exported to a throw-away tar so no image is left behind.
build_smoke() { # (uses E_*)
    local ctx marker rc=0
    ctx=$(mktemp -d)
    marker=buildtest-smoke-$$-$RANDOM
    printf 'FROM %s\nRUN echo %s\n' "$IMAGE" "$marker" >"$ctx/Dockerfile"
    DOCKER_BUILDKIT=1 dcli "$E_SOCK" build --network none --no-cache --progress plain \
        --output "type=tar,dest=/dev/null" "$ctx" >"$ctx/out" 2>&1 || rc=$?
    if ((rc == 0)) && grep -q "[0-9] $marker\$" "$ctx/out"; then
        rm -rf "$ctx"
        return 0
    fi
    cat "$ctx/out" >>"$E_CLOG"
    rm -rf "$ctx"
    return 1
}

# ---------------------------------------------------------------- linux/arm64 under emulation
# qemu-user-static's qemu-aarch64 registered with binfmt_misc (flag F: it works inside containers
# and BuildKit execs), and the offline image $ARM64_IMAGE: the same busybox rootfs as $IMAGE, made
# from Debian's busybox-static:arm64. `docker import --platform linux/arm64` on 20.10 records
# amd64, so the image is a BuildKit `FROM scratch` + `COPY` build with --platform linux/arm64.
ARM64_IMAGE=buildtest/busybox:arm64
ARM64_DIR=$STATE_DIR/image/arm64
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

emulation_up() {
    local p missing=() logf=$LOG_DIR/emulation.log t0
    t0=$(now)
    : >"$logf"
    for p in qemu-user-static binfmt-support; do pkg_installed "$p" || missing+=("$p"); done
    if ((${#missing[@]})); then
        log "emulation: installing ${missing[*]}"
        if ! env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends \
            install "${missing[@]}" >>"$logf" 2>&1; then
            run_logged "$logf" apt-get -q update
            run_logged "$logf" env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends \
                install "${missing[@]}"
        fi
    fi
    if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
        run_logged "$logf" mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
        run_logged "$logf" update-binfmts --enable qemu-aarch64
    fi
    grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
        die "emulation: qemu-aarch64 is not enabled in /proc/sys/fs/binfmt_misc" "$logf"
    log "emulation: qemu-aarch64 enabled ($(elapsed "$t0") s)"
}

# The arm64 rootfs directory (the build context's rootfs/), rebuilt when missing.
make_arm64_rootfs() {
    local root=$ARM64_DIR/ctx/rootfs
    [[ -x $root/bin/busybox && -f $ARM64_DIR/ctx/Dockerfile ]] && return
    local debs=$ARM64_DIR/debs applet logf=$LOG_DIR/emulation.log
    log "image: building the arm64 busybox rootfs from busybox-static:arm64"
    rm -rf "$ARM64_DIR" && mkdir -p "$debs" "$root/bin" "$root/etc" "$root/tmp" "$root/root"
    bash "$HERE/arm64-toolchain.sh" fetch "$debs" busybox-static:arm64
    run_logged "$logf" dpkg-deb -x "$debs"/busybox-static_*_arm64.deb "$ARM64_DIR/pkg"
    cp "$ARM64_DIR/pkg/bin/busybox" "$root/bin/busybox"
    # The applet list from the arm64 binary itself (it runs under qemu-aarch64).
    while read -r applet; do
        [[ -n $applet && $applet != bin/busybox ]] || continue
        mkdir -p "$root/$(dirname "$applet")"
        ln -sfn /bin/busybox "$root/$applet"
    done < <("$root/bin/busybox" --list-full)
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
    chmod 0755 "$root/root"
    chmod 1777 "$root/tmp"
    printf '%s\n' 'FROM scratch' 'COPY rootfs/ /' \
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["/bin/sh"]' \
        >"$ARM64_DIR/ctx/Dockerfile"
    rm -rf "$debs" "$ARM64_DIR/pkg"
}

# arm64_image: build $ARM64_IMAGE in the engine unless it is there as linux/arm64, then run
# `uname -m` in it (must say aarch64: emulation works in this engine).
arm64_image() { # (uses E_*)
    local arch='' json t0
    t0=$(now)
    if json=$(api_get "$E_SOCK" "/images/$ARM64_IMAGE/json" 2>/dev/null); then
        arch=$(sed -n 's/.*"Architecture":"\([^"]*\)".*/\1/p' <<<"$json")
    fi
    if [[ $arch != arm64 ]]; then
        make_arm64_rootfs
        DOCKER_BUILDKIT=1 dcli "$E_SOCK" build --platform linux/arm64 --network none --progress plain \
            -t "$ARM64_IMAGE" "$ARM64_DIR/ctx" >>"$E_CLOG" 2>&1 ||
            die "$E_NAME: building $ARM64_IMAGE failed" "$E_CLOG"
        json=$(api_get "$E_SOCK" "/images/$ARM64_IMAGE/json") || die "$E_NAME: $ARM64_IMAGE missing right after its build" "$E_CLOG"
        arch=$(sed -n 's/.*"Architecture":"\([^"]*\)".*/\1/p' <<<"$json")
        [[ $arch == arm64 ]] || die "$E_NAME: $ARM64_IMAGE was recorded as '$arch', not arm64"
        log "$E_NAME: built $ARM64_IMAGE (linux/arm64) in $(elapsed "$t0") s"
    else
        log "$E_NAME: image $ARM64_IMAGE present (linux/arm64)"
    fi
    local m
    m=$(dcli "$E_SOCK" run --rm --network none --platform linux/arm64 "$ARM64_IMAGE" uname -m 2>>"$E_CLOG") ||
        die "$E_NAME: 'docker run --platform linux/arm64 $ARM64_IMAGE uname -m' failed" "$E_CLOG"
    [[ $m == aarch64 ]] || die "$E_NAME: uname -m in $ARM64_IMAGE said '$m', not aarch64"
}

# ---------------------------------------------------------------- Rust toolchain image (offline)
# buildtest/rust:bookworm: Debian's minbase with rustc-web, cargo-web, gcc and libc6-dev (from
# bookworm-security: the only Rust in bookworm new enough for the probe), made with mmdebstrap
# like $DEBIAN_IMAGE. It stands in for the official Rust image when the builder builds the check
# probe itself (BUILDTEST_PROBE_TOOLCHAIN_IMAGE) and nothing can be pulled.
RUST_IMAGE=buildtest/rust:bookworm
RUST_TAR=$STATE_DIR/image/rust-$DEBIAN_SUITE.tar
RUST_ARCH=amd64 # `rust-image arm64`: buildtest/rust:bookworm-arm64, made under qemu-aarch64

# The URIs of the deb822 stanza for $DEBIAN_SUITE-security (BUILDTEST_DEBIAN_SECURITY_MIRROR
# overrides).
debian_security_mirror() {
    if [[ -n ${BUILDTEST_DEBIAN_SECURITY_MIRROR:-} ]]; then
        echo "$BUILDTEST_DEBIAN_SECURITY_MIRROR"
        return
    fi
    local uri='' f=/etc/apt/sources.list.d/debian.sources
    if [[ -r $f ]]; then
        uri=$(awk -v s="$DEBIAN_SUITE-security" 'BEGIN { RS = "" }
            { u = ""; ok = 0; n = split($0, L, "\n")
              for (i = 1; i <= n; i++) {
                if (L[i] ~ /^URIs:/) { split(L[i], a, /[ \t]+/); u = a[2] }
                if (L[i] ~ /^Suites:/ && (" " L[i] " ") ~ ("[ \t]" s "[ \t]")) ok = 1
              }
              if (ok && u != "") { print u; exit } }' "$f")
    fi
    if [[ -z $uri && -r /etc/apt/sources.list ]]; then
        uri=$(awk -v s="$DEBIAN_SUITE-security" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z+]+:\/\// && $(i + 1) == s) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    [[ -n $uri ]] || die "cannot find the machine's Debian security mirror (set BUILDTEST_DEBIAN_SECURITY_MIRROR)"
    echo "$uri"
}

make_rust_tar() {
    [[ -s $RUST_TAR ]] && return
    command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (apt-get install mmdebstrap)"
    local t0 mirror security keyring opt='' logf=$LOG_DIR/rust-rootfs.log
    t0=$(now)
    : >"$logf"
    mirror=$(debian_mirror)
    security=$(debian_security_mirror)
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [[ -r $keyring ]] && opt="[signed-by=$keyring] "
    log "image: building the $DEBIAN_SUITE Rust toolchain rootfs with mmdebstrap (log: $logf)"
    rm -f "$RUST_TAR.tmp"
    [[ -d $MMDEBSTRAP_HOOKS/merged-usr ]] || die "mmdebstrap's $MMDEBSTRAP_HOOKS/merged-usr hook is missing"
    run_logged "$logf" mmdebstrap --mode=root --variant=minbase --format=tar --verbose \
        --architectures="$RUST_ARCH" \
        --hook-dir="$MMDEBSTRAP_HOOKS/merged-usr" \
        --include=rustc-web,cargo-web,gcc,libc6-dev \
        --aptopt='Acquire::Languages "none"' --dpkgopt=force-unsafe-io \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        "$DEBIAN_SUITE" "$RUST_TAR.tmp" \
        "deb $opt$mirror $DEBIAN_SUITE main" "deb $opt$mirror $DEBIAN_SUITE-updates main" \
        "deb $opt$security $DEBIAN_SUITE-security main"
    [[ -s $RUST_TAR.tmp ]] || die "mmdebstrap wrote no $RUST_TAR.tmp" "$logf"
    mv "$RUST_TAR.tmp" "$RUST_TAR"
    log "image: $RUST_TAR ($(du -m "$RUST_TAR" | cut -f1) MiB) built in $(elapsed "$t0") s"
}

rust_image() { # (uses E_*)
    if [[ $RUST_ARCH == amd64 ]]; then
        import_one "$RUST_IMAGE" "$RUST_TAR" make_rust_tar \
            "cargo-buildtest offline Rust toolchain (Debian $DEBIAN_SUITE rustc-web, cargo-web)" \
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" 'CMD ["bash"]'
        return
    fi
    # Another architecture: `docker import` would record amd64 on Docker 20.10, so a BuildKit
    # FROM scratch + ADD of the tar with --platform (as for $ARM64_IMAGE).
    local arch='' json t0 ctx
    t0=$(now)
    if json=$(api_get "$E_SOCK" "/images/$RUST_IMAGE/json" 2>/dev/null); then
        arch=$(sed -n 's/.*"Architecture":"\([^"]*\)".*/\1/p' <<<"$json")
    fi
    if [[ $arch == "$RUST_ARCH" ]]; then
        log "$E_NAME: image $RUST_IMAGE present (linux/$RUST_ARCH)"
        return
    fi
    # mmdebstrap needs arch-test for a foreign architecture (run under qemu-aarch64).
    pkg_installed arch-test ||
        run_logged "$LOG_DIR/rust-rootfs.log" env DEBIAN_FRONTEND=noninteractive apt-get -y -q \
            --no-install-recommends install arch-test
    make_rust_tar
    ctx=$STATE_DIR/image/rust-ctx-$RUST_ARCH
    mkdir -p "$ctx"
    ln -f "$RUST_TAR" "$ctx/rootfs.tar" 2>/dev/null || cp "$RUST_TAR" "$ctx/rootfs.tar"
    printf '%s\n' 'FROM scratch' 'ADD rootfs.tar /' \
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["bash"]' >"$ctx/Dockerfile"
    DOCKER_BUILDKIT=1 dcli "$E_SOCK" build --platform "linux/$RUST_ARCH" --network none --progress plain \
        -t "$RUST_IMAGE" "$ctx" >>"$E_CLOG" 2>&1 || die "$E_NAME: building $RUST_IMAGE failed" "$E_CLOG"
    log "$E_NAME: built $RUST_IMAGE (linux/$RUST_ARCH) in $(elapsed "$t0") s"
}

# ---------------------------------------------------------------- engine lifecycle
start_engine() { # (uses E_*)
    local pid t0 i
    if pid=$(pidfile_pid "$E_PIDFILE" "$E_PIDFILE"); then
        if ping "$E_SOCK"; then
            log "$E_NAME: already running (pid $pid) on unix://$E_SOCK"
            return
        fi
        log "$E_NAME: pid $pid is alive but unix://$E_SOCK does not answer yet; waiting"
    else
        if ping "$E_SOCK"; then
            die "$E_NAME: another Docker engine (not started by this script) already answers on unix://$E_SOCK; stop it first"
        fi
        [[ -x $E_DOCKERD ]] || die "$E_NAME: $E_DOCKERD is missing"
        rm -f "$E_PIDFILE"
        mkdir -p "$E_DATA" "$E_EXEC" "$LOG_DIR" "$(dirname "$E_CONFIG")" "$(dirname "$E_SOCK")"
        [[ -f $E_CONFIG ]] || echo '{}' >"$E_CONFIG"
        [[ -z $E_CONFIG_JSON ]] || echo "$E_CONFIG_JSON" >"$E_CONFIG"
        [[ -f $E_LOG ]] && mv -f "$E_LOG" "$E_LOG.1"
        : >"$E_CLOG"
        log "$E_NAME: starting $E_DOCKERD (log: $E_LOG)"
        # New session so the engine outlives this script and its caller's process group; clean
        # environment; fd 9 (our lock) closed so the daemon does not hold it.
        setsid env -i PATH="$E_PATH" HOME=/root LC_ALL=C \
            "$E_DOCKERD" \
            --config-file "$E_CONFIG" \
            --host "unix://$E_SOCK" \
            --pidfile "$E_PIDFILE" \
            --data-root "$E_DATA" \
            --exec-root "$E_EXEC" \
            --storage-driver="$E_STORAGE" \
            --iptables=false --ip6tables=false --bridge=none \
            </dev/null >>"$E_LOG" 2>&1 9>&- &
        pid=$!
    fi
    t0=$(now)
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        ping "$E_SOCK" && break
        if ! pid_alive "$pid"; then
            pid=$(pidfile_pid "$E_PIDFILE" "$E_PIDFILE") ||
                die "$E_NAME: dockerd exited during startup" "$E_LOG"
        fi
        sleep 0.1
    done
    ping "$E_SOCK" || die "$E_NAME: not ready on unix://$E_SOCK after ${TIMEOUT} s" "$E_LOG"
    pid=$(pidfile_pid "$E_PIDFILE" "$E_PIDFILE") ||
        die "$E_NAME: answers on unix://$E_SOCK but $E_PIDFILE names no live dockerd" "$E_LOG"
    log "$E_NAME: ready in $(elapsed "$t0") s (pid $pid)"
}

check_version() { # (uses E_*)
    local v
    v=$(engine_version "$E_SOCK") || die "$E_NAME: GET /version failed on unix://$E_SOCK" "$E_LOG"
    E_VERSION=${v%% *}
    E_API=${v##* }
    [[ $E_VERSION == "$E_WANT"* ]] ||
        die "$E_NAME: engine on unix://$E_SOCK reports version '$E_VERSION', expected ${E_WANT}x"
    log "$E_NAME: engine $E_VERSION (API $E_API, embedded BuildKit $(buildkit_for "$E_VERSION"))"
}

stop_engine() { # (uses E_*)
    local pid cpid
    if pid=$(pidfile_pid "$E_PIDFILE" "$E_PIDFILE"); then
        log "$E_NAME: stopping dockerd (pid $pid)"
        stop_pid "$E_NAME dockerd" "$pid"
    else
        log "$E_NAME: not running"
    fi
    # The containerd that dockerd supervises normally exits with it; make sure, by its pid file.
    if cpid=$(pidfile_pid "$E_EXEC/containerd/containerd.pid" "$E_EXEC/containerd/containerd.toml"); then
        log "$E_NAME: stopping its containerd (pid $cpid)"
        stop_pid "$E_NAME containerd" "$cpid"
    fi
    rm -f "$E_PIDFILE"
    [[ $E_SOCK == "$SOCK20" ]] || rm -f "$E_SOCK"
}

# ---------------------------------------------------------------- loopback registry
# Debian's docker-registry (distribution 2.8) with our own config: http on $REGISTRY_ADDR only,
# storage under $STATE_DIR/registry. Started by pid file, stopped by pid.
REGISTRY_PIDFILE=$RUN_DIR/registry.pid
REGISTRY_CONFIG=$STATE_DIR/config/registry.yml
REGISTRY_LOG=$LOG_DIR/registry.log

registry_ping() { curl -sf --max-time 3 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

install_registry() {
    if [[ -x /usr/bin/docker-registry ]]; then
        return
    fi
    local logf=$LOG_DIR/apt-registry.log own_policy=''
    : >"$logf"
    log "registry: installing docker-registry (log: $logf)"
    # Keep the package's own service (which listens on every interface) from starting.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0
    env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends install docker-registry \
        >>"$logf" 2>&1 || rc=$?
    [[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || die "apt-get install docker-registry failed" "$logf"
}

start_registry() {
    local pid i
    if pid=$(pidfile_pid "$REGISTRY_PIDFILE" "$REGISTRY_CONFIG") && registry_ping; then
        log "registry: already running (pid $pid) on http://$REGISTRY_ADDR"
        return
    fi
    registry_ping && die "registry: something not started by this script already answers on http://$REGISTRY_ADDR"
    mkdir -p "$STATE_DIR/registry" "$(dirname "$REGISTRY_CONFIG")"
    cat >"$REGISTRY_CONFIG" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YML
    setsid /usr/bin/docker-registry serve "$REGISTRY_CONFIG" </dev/null >>"$REGISTRY_LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$REGISTRY_PIDFILE"
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        registry_ping && break
        pid_alive "$pid" || die "registry: docker-registry exited during startup" "$REGISTRY_LOG"
        sleep 0.1
    done
    registry_ping || die "registry: not answering on http://$REGISTRY_ADDR after ${TIMEOUT} s" "$REGISTRY_LOG"
    log "registry: ready on http://$REGISTRY_ADDR (pid $pid)"
}

stop_registry() {
    local pid
    if pid=$(pidfile_pid "$REGISTRY_PIDFILE" "$REGISTRY_CONFIG"); then
        log "registry: stopping (pid $pid)"
        stop_pid registry "$pid"
    fi
    rm -f "$REGISTRY_PIDFILE"
}

# ---------------------------------------------------------------- env output
print_env() { # ENGINE...: export lines on stdout; returns 1 if an engine does not answer
    local name up=0 v upper
    echo "export BUILDTEST_BASE_IMAGE=$IMAGE"
    echo "export BUILDTEST_DEBIAN_IMAGE=$DEBIAN_IMAGE"
    echo "export BUILDTEST_CONFIGURED_IMAGE=$CONFIGURED_IMAGE"
    echo "export BUILDTEST_ARM64_IMAGE=$ARM64_IMAGE"
    # The private arm64 cross toolchain runner/build.rs embeds the linux/arm64 probe with.
    bash "$HERE/arm64-toolchain.sh" env 2>/dev/null || log "arm64 toolchain: not set up (no linux/arm64 probe will be embedded)"
    for name in "${ENGINES[@]}"; do
        select_engine "$name"
        upper=$(tr '[:lower:]' '[:upper:]' <<<"$name")
        echo "export BUILDTEST_${upper}_HOST=unix://$E_SOCK"
        if v=$(engine_version "$E_SOCK" 2>/dev/null) && [[ -n ${v%% *} ]]; then
            echo "export BUILDTEST_${upper}_ENGINE_VERSION=${v%% *}"
            echo "export BUILDTEST_${upper}_BUILDKIT_VERSION=$(buildkit_for "${v%% *}")"
        else
            log "$name: not answering on unix://$E_SOCK (run scripts/builders.sh up)"
            up=1
        fi
    done
    if registry_ping; then
        echo "export BUILDTEST_REGISTRY=$REGISTRY_ADDR"
    else
        log "registry: not answering on http://$REGISTRY_ADDR (run scripts/builders.sh up)"
        up=1
    fi
    # The optional second Docker 26 engine: exported only while it answers (never an error).
    select_engine docker26b
    if v=$(engine_version "$E_SOCK" 2>/dev/null) && [[ -n ${v%% *} ]]; then
        echo "export BUILDTEST_DOCKER26B_HOST=unix://$E_SOCK"
        echo "export BUILDTEST_DOCKER26B_ENGINE_VERSION=${v%% *}"
        echo "export BUILDTEST_DOCKER26B_BUILDKIT_VERSION=$(buildkit_for "${v%% *}")"
        echo "export BUILDTEST_DOCKER26B_PIDFILE=$E_PIDFILE"
    fi
    return $up
}

# ---------------------------------------------------------------- subcommands
lock() {
    mkdir -p "$RUN_DIR"
    exec 9>"$RUN_DIR/builders.lock"
    flock -w 600 9 || die "another scripts/builders.sh is still running (lock $RUN_DIR/builders.lock)"
}

need_root() {
    [[ $(id -u) == 0 ]] || die "must run as root (installs packages and starts dockerd)"
}

cmd_up() {
    need_root
    lock
    local t0 name
    t0=$(now)
    mkdir -p "$STATE_DIR" "$LOG_DIR" "$RUN_DIR" "$STATE_DIR/image" "$STATE_DIR/docker-config"
    apt_install_bookworm
    install_docker26
    install_registry
    start_registry
    emulation_up
    bash "$HERE/arm64-toolchain.sh" up >/dev/null
    for name in "${ENGINES[@]}"; do
        select_engine "$name"
        start_engine
        check_version
        import_images
        build_configured
        run_check || die "$name: 'docker run --rm --network none $IMAGE true' failed" "$E_CLOG"
        log "$name: run check ok"
        arm64_image
    done
    # The second Docker 26 engine: two nodes of one version for the several-nodes tests.
    up_docker26b
    log "up: engines ready in $(elapsed "$t0") s"
    print_env || die "an engine stopped answering right after start"
}

# up-docker26b: start (idempotently) the second Docker 26 engine with the base images; its
# pid file is $RUN_DIR/docker26b.pid (the failover test kills it by that pid and runs this again).
cmd_up_26b() {
    need_root
    lock
    mkdir -p "$STATE_DIR" "$LOG_DIR" "$RUN_DIR" "$STATE_DIR/image" "$STATE_DIR/docker-config"
    install_docker26
    up_docker26b
    echo "export BUILDTEST_DOCKER26B_HOST=unix://$E_SOCK"
    echo "export BUILDTEST_DOCKER26B_PIDFILE=$E_PIDFILE"
}

# up_docker26b: start docker26b (its prefix unpacked) with the base images.
up_docker26b() {
    local t0
    t0=$(now)
    select_engine docker26b
    start_engine
    check_version
    import_images
    build_configured
    run_check || die "docker26b: 'docker run --rm --network none $IMAGE true' failed" "$E_CLOG"
    arm64_image
    log "docker26b: ready in $(elapsed "$t0") s"
}

cmd_down_26b() {
    need_root
    lock
    select_engine docker26b
    stop_engine
}

cmd_down() {
    need_root
    lock
    local name
    for name in "${ENGINES[@]}" docker26b; do
        select_engine "$name"
        stop_engine
    done
    stop_registry
    log "down: done"
}

cmd_status() {
    local name pid id bad=0 t0
    for name in "${ENGINES[@]}"; do
        select_engine "$name"
        if ! pid=$(pidfile_pid "$E_PIDFILE" "$E_PIDFILE"); then
            log "$name: NOT RUNNING (no live dockerd in $E_PIDFILE)"
            bad=1
            continue
        fi
        if ! ping "$E_SOCK"; then
            log "$name: pid $pid alive but unix://$E_SOCK does not answer /_ping"
            tail_log "$E_LOG" 15
            bad=1
            continue
        fi
        local v
        v=$(engine_version "$E_SOCK") || v="? ?"
        log "$name: running pid $pid, unix://$E_SOCK, engine ${v%% *} (API ${v##* }), embedded BuildKit $(buildkit_for "${v%% *}")"
        if id=$(image_id "$E_SOCK") && [[ -n $id ]]; then
            log "$name: image $IMAGE present (${id:7:12})"
        else
            log "$name: image $IMAGE MISSING"
            bad=1
            continue
        fi
        if grpc_upgrade "$E_SOCK"; then
            log "$name: POST /grpc upgrades to h2c (embedded BuildKit reachable)"
        else
            log "$name: POST /grpc did NOT upgrade to h2c"
            bad=1
        fi
        if run_check; then
            log "$name: run check ok"
        else
            log "$name: run check FAILED"
            tail_log "$E_CLOG" 15
            bad=1
        fi
        if ! id=$(image_id "$E_SOCK" "$DEBIAN_IMAGE") || [[ -z $id ]]; then
            log "$name: image $DEBIAN_IMAGE MISSING"
            bad=1
        elif debian_check; then
            log "$name: image $DEBIAN_IMAGE present (${id:7:12}), runs (Debian $DEBIAN_VERSION)"
        else
            log "$name: image $DEBIAN_IMAGE present but 'cat /etc/debian_version' FAILED"
            tail_log "$E_CLOG" 15
            bad=1
        fi
        t0=$(now)
        if build_smoke; then
            log "$name: BuildKit build smoke ok ($(elapsed "$t0") s)"
        else
            log "$name: BuildKit build smoke FAILED"
            tail_log "$E_CLOG" 20
            bad=1
        fi
    done
    ((bad == 0)) || {
        log "status: unhealthy"
        return 1
    }
    log "status: all healthy"
}

# buildx: trixie's docker-buildx unpacked into $PREFIX_BUILDX and exposed as a CLI plugin through a
# private DOCKER_CONFIG ($PREFIX_BUILDX/config), so nothing system-wide changes. For benchmarks only.
cmd_buildx() {
    need_root
    lock
    mkdir -p "$STATE_DIR" "$LOG_DIR"
    local plugin=$PREFIX_BUILDX/usr/libexec/docker/cli-plugins/docker-buildx cfg=$PREFIX_BUILDX/config
    local logf=$LOG_DIR/apt-$SUITE26-buildx.log t0 ver
    [[ -x $DOCKER ]] || die "$DOCKER is missing (run scripts/builders.sh up first)"
    if [[ -x $plugin && -f $PREFIX_BUILDX/.buildtest-installed ]]; then
        log "buildx: already unpacked in $PREFIX_BUILDX ($(tr '\n' ' ' <"$PREFIX_BUILDX/.buildtest-installed"))"
    else
        t0=$(now)
        : >"$logf"
        log "buildx: fetching docker-buildx from $SUITE26 (log: $logf)"
        trixie_apt "$logf"
        ver=$(trixie_version docker-buildx "$logf")
        [[ -n $ver ]] || die "buildx: $SUITE26 offers no docker-buildx" "$logf"
        trixie_unpack "$PREFIX_BUILDX.tmp.$$" "$logf" docker-buildx
        [[ -x $PREFIX_BUILDX.tmp.$$/usr/libexec/docker/cli-plugins/docker-buildx ]] ||
            die "buildx: usr/libexec/docker/cli-plugins/docker-buildx missing after unpacking docker-buildx" "$logf"
        rm -rf "$PREFIX_BUILDX"
        mkdir -p "$(dirname "$PREFIX_BUILDX")"
        mv "$PREFIX_BUILDX.tmp.$$" "$PREFIX_BUILDX"
        log "buildx: unpacked docker-buildx $ver into $PREFIX_BUILDX in $(elapsed "$t0") s"
    fi
    mkdir -p "$cfg/cli-plugins"
    ln -sfn "$plugin" "$cfg/cli-plugins/docker-buildx"
    local out
    out=$(env -u DOCKER_HOST -u DOCKER_CONTEXT DOCKER_CONFIG="$cfg" "$DOCKER" buildx version 2>&1) ||
        die "buildx: 'DOCKER_CONFIG=$cfg docker buildx version' failed: $out"
    log "buildx: $out (DOCKER_CONFIG=$cfg $DOCKER buildx ...)"
    echo "export BUILDTEST_BUILDX_DOCKER_CONFIG=$cfg"
}

# rust-image [arm64]: import $RUST_IMAGE (built once with mmdebstrap, ~760 MiB) into both running
# engines; with arm64, buildtest/rust:bookworm-arm64 (made under qemu-aarch64: slow).
cmd_rust_image() {
    if [[ ${1:-amd64} == arm64 ]]; then
        RUST_ARCH=arm64
        RUST_IMAGE=$RUST_IMAGE-arm64
        RUST_TAR=$STATE_DIR/image/rust-$DEBIAN_SUITE-arm64.tar
    fi
    need_root
    lock
    local t0 name
    t0=$(now)
    mkdir -p "$STATE_DIR/image" "$LOG_DIR"
    for name in "${ENGINES[@]}"; do
        select_engine "$name"
        ping "$E_SOCK" || die "$name: not answering on unix://$E_SOCK (run scripts/builders.sh up first)"
        rust_image
    done
    log "rust-image: $RUST_IMAGE ready on both engines in $(elapsed "$t0") s"
    echo "export BUILDTEST_RUST_IMAGE=$RUST_IMAGE"
}

case ${1:-up} in
up) cmd_up ;;
rust-image) cmd_rust_image "${2:-amd64}" ;;
buildx) cmd_buildx ;;
up-docker26b) cmd_up_26b ;;
down-docker26b) cmd_down_26b ;;
down) cmd_down ;;
status) cmd_status || exit 1 ;;
env) print_env || exit 1 ;;
-h | --help | help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' ;;
*)
    echo "usage: $0 [up|down|status|env|buildx|up-docker26b|down-docker26b]" >&2
    exit 2
    ;;
esac
