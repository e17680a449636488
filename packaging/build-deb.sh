#!/usr/bin/env bash
# Builds rapidbox's Debian package with cargo-deb (configured in Cargo.toml,
# [package.metadata.deb]) and checks it:
#
#   - its files (dpkg-deb -c) and control fields and conffiles (dpkg-deb -I);
#   - the maintainer scripts had cargo-deb's systemd snippets put in;
#   - the packaged configuration passes `rapidbox check-config`;
#   - the unit passes `systemd-analyze verify` (when systemd-analyze is
#     installed), with ExecStart pointed at the extracted binary.
#
# With --install (as root, on a Debian machine) it then installs the
# package with apt, verifies the installed unit, starts rapidbox as the
# unit would (its user, its working directory, its command line), checks
# /health, /ready and /metrics, reloads it with the unit's ExecReload=
# (SIGHUP), stops it, and purges the package, checking
# that the user and the state directory went with it. Nothing else may
# listen on 127.0.0.1:8080 (the packaged configuration's address) then.
#
# Usage: bash packaging/build-deb.sh [--install]
# Prints the package's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

install=0
case "${1:-}" in
    --install) install=1 ;;
    "") ;;
    *) echo "usage: $0 [--install]" >&2; exit 2 ;;
esac

fail() { echo "build-deb: $*" >&2; exit 1; }

command -v cargo-deb >/dev/null || fail "cargo-deb is missing: cargo install cargo-deb"
command -v dpkg-deb >/dev/null || fail "dpkg-deb is missing (Debian package dpkg)"

echo "== cargo deb (release build)"
rm -rf target/debian
# --strip: the release profile keeps line tables for profiling (debug = 1);
# the package does not need them (80 MB of the binary's size).
cargo deb --strip --output target/debian/
deb=$(ls target/debian/rapidbox_*.deb)
[ "$(echo "$deb" | wc -l)" = 1 ] || fail "expected one package in target/debian, found: $deb"

echo "== contents (dpkg-deb -c)"
contents=$(dpkg-deb -c "$deb")
echo "$contents"
for path in ./usr/bin/rapidbox ./etc/rapidbox/rapidbox.toml \
            ./usr/lib/systemd/system/rapidbox.service \
            ./usr/share/doc/rapidbox/copyright \
            ./usr/share/doc/rapidbox/rapidbox.example.toml; do
    echo "$contents" | awk '{print $6}' | grep -qx -- "$path" || fail "$path is not in the package"
done
echo "$contents" | grep -E ' \./usr/bin/rapidbox$' | grep -Eq '^-rwxr-xr-x (root/root|0/0) ' \
    || fail "/usr/bin/rapidbox is not root-owned 0755"

echo "== control (dpkg-deb -I)"
dpkg-deb -I "$deb"
[ "$(dpkg-deb -f "$deb" Package)" = rapidbox ] || fail "Package is not rapidbox"
dpkg-deb -f "$deb" Depends | grep -q adduser || fail "Depends lacks adduser (postinst uses it)"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/rapidbox/rapidbox.toml \
    || fail "/etc/rapidbox/rapidbox.toml is not a conffile"

work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"

echo "== maintainer scripts"
for script in postinst postrm; do
    [ -x "$work/control/$script" ] || fail "$script is missing or not executable"
    ! grep -q '#DEBHELPER#' "$work/control/$script" || fail "$script still has #DEBHELPER#"
done
grep -q 'adduser --system' "$work/control/postinst" || fail "postinst does not add the user"
grep -q 'deb-systemd-helper' "$work/control/postinst" \
    || fail "postinst lacks cargo-deb's systemd snippet"

echo "== packaged configuration (rapidbox check-config)"
"$work/root/usr/bin/rapidbox" check-config "$work/root/etc/rapidbox/rapidbox.toml"
grep -q '^path = "/var/lib/rapidbox/rapidbox.redb"$' "$work/root/etc/rapidbox/rapidbox.toml" \
    || fail "the packaged store path is not /var/lib/rapidbox/rapidbox.redb"

unit="$work/root/usr/lib/systemd/system/rapidbox.service"
if command -v systemd-analyze >/dev/null; then
    echo "== systemd-analyze verify"
    # The binary is not installed here: point ExecStart at the extracted one.
    sed "s|^ExecStart=/usr/bin/rapidbox|ExecStart=$work/root/usr/bin/rapidbox|" "$unit" \
        > "$work/rapidbox.service"
    systemd-analyze verify "$work/rapidbox.service"
    echo "== systemd-analyze security (exposure; informational)"
    systemd-analyze security --offline=yes "$work/rapidbox.service" | tail -1 || true
else
    echo "== systemd-analyze not installed: unit not verified"
fi

if [ "$install" = 1 ]; then
    [ "$(id -u)" = 0 ] || fail "--install needs root"
    command -v curl >/dev/null || fail "--install needs curl"
    ! ss -ltn | grep -q '127.0.0.1:8080 \|\*:8080 \|0.0.0.0:8080 ' \
        || fail "something already listens on port 8080"
    pid=""
    uninstall() {
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
        if dpkg -s rapidbox >/dev/null 2>&1; then apt-get purge -y -qq rapidbox || true; fi
        cleanup
    }
    trap uninstall EXIT

    echo "== apt-get install $deb"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb"
    getent passwd rapidbox >/dev/null || fail "no rapidbox user after install"
    [ "$(stat -c '%U:%G %a' /var/lib/rapidbox)" = "rapidbox:rapidbox 750" ] \
        || fail "/var/lib/rapidbox is $(stat -c '%U:%G %a' /var/lib/rapidbox)"
    [ "$(stat -c '%U:%G %a' /etc/rapidbox/rapidbox.toml)" = "root:rapidbox 640" ] \
        || fail "/etc/rapidbox/rapidbox.toml is $(stat -c '%U:%G %a' /etc/rapidbox/rapidbox.toml)"
    if command -v systemd-analyze >/dev/null; then
        echo "== systemd-analyze verify (installed)"
        systemd-analyze verify /usr/lib/systemd/system/rapidbox.service
    fi

    echo "== rapidbox as the unit runs it"
    exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/rapidbox.service)
    log="$work/rapidbox.log"
    # The unit's User=, Group=, WorkingDirectory= and ExecStart=.
    (cd /var/lib/rapidbox && exec setpriv --reuid=rapidbox --regid=rapidbox --init-groups \
        --no-new-privs $exec_start) >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        curl -fs http://127.0.0.1:8080/health >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { cat "$log"; fail "rapidbox exited"; }
        sleep 0.1
    done
    curl -fsS http://127.0.0.1:8080/health; echo
    # 200 with a bearerbox on 127.0.0.1:13001 (the packaged [kannel]), else
    # 503 naming the link; the store must be writable either way.
    ready=$(curl -sS -w ' %{http_code}' http://127.0.0.1:8080/ready)
    echo "/ready: $ready"
    echo "$ready" | grep -q '"store":"writable"' || fail "the store is not writable: $ready"
    curl -fsS http://127.0.0.1:8080/metrics > "$work/metrics"
    grep -q '^rapidbox_store_writable 1$' "$work/metrics" || fail "/metrics lacks the store"
    [ "$(stat -c %U /var/lib/rapidbox/rapidbox.redb)" = rapidbox ] \
        || fail "the store is not the rapidbox user's"
    echo "== systemctl reload, as the unit's ExecReload= does it"
    exec_reload=$(sed -n 's/^ExecReload=//p' /usr/lib/systemd/system/rapidbox.service)
    [ -n "$exec_reload" ] || fail "the unit has no ExecReload="
    ${exec_reload//\$MAINPID/$pid}
    for _ in $(seq 50); do
        grep -q 'configuration reloaded' "$log" && break
        sleep 0.1
    done
    grep -q 'configuration reloaded' "$log" || fail "no reload in the log: $(tail -5 "$log")"
    curl -fsS http://127.0.0.1:8080/metrics > "$work/metrics"
    grep -q '^rapidbox_config_generation 1$' "$work/metrics" \
        || fail "/metrics does not show the reload: $(grep config_ "$work/metrics")"
    kill -TERM "$pid"
    wait "$pid" || fail "rapidbox did not exit cleanly on SIGTERM: $(tail -5 "$log")"
    pid=""
    grep -q 'rapidbox stopped' "$log" || fail "no 'rapidbox stopped' in the log"

    echo "== apt-get purge rapidbox"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq rapidbox
    ! getent passwd rapidbox >/dev/null || fail "the rapidbox user is still there"
    [ ! -e /var/lib/rapidbox ] || fail "/var/lib/rapidbox is still there"
    [ ! -e /etc/rapidbox/rapidbox.toml ] || fail "the conffile is still there"
fi

echo "== ok"
echo "$deb"
