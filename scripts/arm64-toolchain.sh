#!/usr/bin/env bash
# scripts/arm64-toolchain.sh — a private Rust cross toolchain that lets runner/build.rs embed a
# static linux/arm64 check probe next to the linux/amd64 one (issue 15).
#
#   scripts/arm64-toolchain.sh [up]   install/unpack what is missing (idempotent), print export lines
#   scripts/arm64-toolchain.sh env    print the export lines (exit 1 when the toolchain is not ready)
#   scripts/arm64-toolchain.sh fetch DIR PKG...  download Debian packages of either architecture
#                                     (e.g. busybox-static:arm64) into DIR, installing nothing
#
# What it sets up (Debian packages only, no other network):
#   - gcc-aarch64-linux-gnu and libc6-dev-arm64-cross from this machine's Debian (the linker and
#     glibc's static aarch64 libraries), installed normally;
#   - Debian's rustc-web with the matching libstd-rust-web-dev for amd64 and arm64 (the aarch64
#     standard library), downloaded with `apt-get download` and unpacked with `dpkg-deb -x` into
#     $PREFIX — never installed with dpkg (they would replace /usr/bin/rustc and /usr/bin/cargo).
#     The version is the current candidate (the security archive keeps only the newest); the amd64
#     and arm64 packages must be the same version.
# apt's package lists for amd64+arm64 live under $STATE (the system's apt state is untouched).
#
# The export lines name what runner/build.rs reads:
#   BUILDTEST_PROBE_AARCH64_RUSTC   the unpacked rustc (its sysroot holds the aarch64 std)
#   BUILDTEST_PROBE_AARCH64_LINKER  the aarch64 C compiler used as linker
set -Eeuo pipefail

PREFIX=${BUILDTEST_ARM64_PREFIX:-/opt/buildtest/rust-arm64}
STATE=${BUILDTEST_ARM64_STATE:-/var/lib/buildtest-builders/apt-arm64}
LINKER=aarch64-linux-gnu-gcc
export LC_ALL=C

log() { printf 'arm64-toolchain: %s\n' "$*" >&2; }
die() {
    log "error: $1"
    [[ -n ${2:-} && -s $2 ]] && tail -n 30 "$2" | sed 's/^/arm64-toolchain:   | /' >&2
    exit 1
}

print_env() {
    [[ -x $PREFIX/bin/rustc && -f $PREFIX/.buildtest-installed ]] || return 1
    command -v "$LINKER" >/dev/null || return 1
    printf 'export BUILDTEST_PROBE_AARCH64_RUSTC=%q\n' "$PREFIX/bin/rustc"
    printf 'export BUILDTEST_PROBE_AARCH64_LINKER=%q\n' "$(command -v "$LINKER")"
}

pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# apt_lists LOGFILE: set `apt` (options: the system's sources, private lists and caches for amd64
# and arm64 under $STATE) and update the lists unless they are younger than a day.
apt_lists() {
    mkdir -p "$STATE/lists/partial" "$STATE/cache/archives/partial"
    apt=(
        -o "Dir::State::Lists=$STATE/lists" -o "Dir::Cache=$STATE/cache"
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
        -o APT::Architectures::=amd64 -o APT::Architectures::=arm64
        -o APT::Sandbox::User=root -o Acquire::Languages=none
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false
    )
    if [[ -z $(find "$STATE/lists" -maxdepth 1 -name '*arm64_Packages*' -mmin -1440 2>/dev/null) ]]; then
        log "updating package lists for amd64+arm64 (private, under $STATE)"
        apt-get -q "${apt[@]}" update >>"$1" 2>&1 || die "apt-get update failed" "$1"
    fi
}

# cmd_fetch DIR PACKAGE...: download the packages (e.g. busybox-static:arm64) into DIR with the
# private amd64+arm64 lists; nothing is installed.
cmd_fetch() {
    (($# >= 2)) || die "usage: $0 fetch DIR PACKAGE..."
    local dir=$1 apt=() logf
    shift
    mkdir -p "$STATE" "$dir"
    logf=$STATE/fetch.log
    : >"$logf"
    apt_lists "$logf"
    (cd "$dir" && apt-get -q "${apt[@]}" download "$@") >>"$logf" 2>&1 || die "apt-get download $* failed" "$logf"
}

cmd_up() {
    [[ $(id -u) == 0 ]] || die "run as root (it installs Debian packages)"
    local t0 logf
    t0=$(date +%s)
    mkdir -p "$STATE"
    logf=$STATE/setup.log
    : >"$logf"

    local missing=() p
    # The linker and static glibc, and the shared libraries Debian's LLVM (unpacked below) needs.
    for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross libedit2 libffi8 libxml2 libz3-4 libzstd1 zlib1g; do pkg_installed "$p" || missing+=("$p"); done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        local install=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends install)
        # A fresh machine may have no package lists yet: update once, then retry.
        if ! "${install[@]}" "${missing[@]}" >>"$logf" 2>&1; then
            apt-get -q update >>"$logf" 2>&1 || die "apt-get update failed" "$logf"
            "${install[@]}" "${missing[@]}" >>"$logf" 2>&1 || die "apt-get install ${missing[*]} failed" "$logf"
        fi
    fi

    local apt=()
    apt_lists "$logf"
    # Unpacked after the lists were last updated: the candidate cannot have changed (resolving it
    # again costs ~10 s of apt-cache on the two architectures' lists).
    local newest
    newest=$(find "$STATE/lists" -maxdepth 1 -name '*_Packages*' -newer "$PREFIX/.buildtest-installed" 2>/dev/null | sed -n 1p || true)
    if [[ -x $PREFIX/bin/rustc && -f $PREFIX/.buildtest-installed && -z $newest ]] &&
        "$PREFIX/bin/rustc" --version >>"$logf" 2>&1; then
        log "ready ($(grep '^rustc-web=' "$PREFIX/.buildtest-installed"), unpacked after the last list update)"
        print_env
        return
    fi
    local version arm
    version=$(apt-cache "${apt[@]}" show --no-all-versions rustc-web:amd64 2>>"$logf" | awk '/^Version:/ && v == "" { v = $2 } END { print v }')
    [[ -n $version ]] || die "no rustc-web candidate in this machine's Debian sources" "$logf"
    arm=$(apt-cache "${apt[@]}" show --no-all-versions libstd-rust-web-dev:arm64 2>>"$logf" | awk '/^Version:/ && v == "" { v = $2 } END { print v }')
    [[ $arm == "$version" ]] ||
        die "rustc-web is $version but libstd-rust-web-dev:arm64 is ${arm:-missing}: the std must match the compiler"

    local want="rustc-web=$version"
    if [[ -x $PREFIX/usr/bin/rustc ]] && grep -q "^libllvm" "$PREFIX/.buildtest-installed" 2>/dev/null && grep -qxF "$want" "$PREFIX/.buildtest-installed" 2>/dev/null; then
        log "rustc-web $version already unpacked in $PREFIX"
        touch "$PREFIX/.buildtest-installed" # still the candidate as of these lists
    else
        # The amd64 compiler with its own std (runtime libraries and rlibs) and the arm64 std.
        local libstd
        libstd=$(apt-cache "${apt[@]}" show --no-all-versions libstd-rust-web-dev:amd64 2>>"$logf" |
            awk -F': ' '/^Depends:/ && d == "" { d = $2 } END { print d }' | tr ',' '\n' | sed 's/^ *//; s/ .*//' |
            grep -E '^libstd-rust-web-[0-9]' | sed -n 1p)
        [[ -n $libstd ]] || die "cannot find the runtime library package of libstd-rust-web-dev" "$logf"
        # rustc's driver links Debian's LLVM of the same update (e.g. libllvm22).
        local llvm
        llvm=$(apt-cache "${apt[@]}" show --no-all-versions "$libstd:amd64" 2>>"$logf" |
            awk -F': ' '/^Depends:/ && d == "" { d = $2 } END { print d }' | tr ',' '\n' | sed 's/^ *//; s/ .*//' |
            grep -E '^libllvm[0-9]' | sed -n 1p)
        [[ -n $llvm ]] || die "cannot find the LLVM library package $libstd depends on" "$logf"
        local debs
        debs=$(mktemp -d "$STATE/debs.XXXXXX")
        log "downloading rustc-web $version, libstd-rust-web-dev (amd64, arm64), $libstd, $llvm"
        (cd "$debs" && apt-get -q "${apt[@]}" download \
            "rustc-web:amd64=$version" "libstd-rust-web-dev:amd64=$version" \
            "$libstd:amd64=$version" "libstd-rust-web-dev:arm64=$version" "$llvm:amd64") >>"$logf" 2>&1 ||
            die "apt-get download failed" "$logf"
        rm -rf "$PREFIX"
        mkdir -p "$PREFIX"
        local deb
        for deb in "$debs"/*.deb; do
            dpkg-deb -x "$deb" "$PREFIX" || die "dpkg-deb -x $deb failed"
        done
        for deb in "$debs"/*.deb; do
            # shellcheck disable=SC2016  # dpkg-deb's own ${field} syntax
            dpkg-deb --showformat='${Package}=${Version}\n' -W "$deb"
        done >"$PREFIX/.buildtest-installed"
        rm -rf "$debs"
    fi
    # Debian's rustc finds its driver and LLVM in the system's library directory; unpacked here it
    # needs them named. The wrapper is what build.rs runs as RUSTC.
    mkdir -p "$PREFIX/bin"
    cat >"$PREFIX/bin/rustc" <<WRAPPER
#!/bin/sh
# rustc-web unpacked by scripts/arm64-toolchain.sh: its libraries are under this prefix.
LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$PREFIX/usr/bin/rustc" "\$@"
WRAPPER
    chmod 755 "$PREFIX/bin/rustc"
    "$PREFIX/bin/rustc" --version >>"$logf" 2>&1 || die "the unpacked rustc does not run" "$logf"
    [[ -d $PREFIX/usr/lib/rustlib/aarch64-unknown-linux-gnu/lib ]] ||
        die "the unpacked sysroot has no aarch64-unknown-linux-gnu std"
    log "ready in $(($(date +%s) - t0)) s: $("$PREFIX/bin/rustc" --version)"
    print_env
}

case ${1:-up} in
up) cmd_up ;;
fetch) shift; cmd_fetch "$@" ;;
env) print_env || die "not set up (run scripts/arm64-toolchain.sh up)" ;;
*) die "usage: $0 [up|env]" ;;
esac
