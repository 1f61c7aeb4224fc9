# shellcheck shell=bash
# libvirtd-private.sh: a private real libvirtd (system mode) for the
# tests, sourced by tests/libvirt-daemon.sh and tests/libvirt-truth.sh.
#
# The daemon runs in its own mount namespace (unshare -m), in which
# /etc/libvirt (configuration and hooks), /run/libvirt, /var/lib/libvirt,
# /var/log/libvirt and /var/cache/libvirt are directories of a temporary
# directory, and its socket is in a temporary directory too.  The system
# daemon, if any, is never touched.  Only what the test started is
# stopped, by PID (never by name: that would also hit other QEMUs and
# daemons of the machine).
#
#   lvp_require               exit 77 (TAP "1..0 # SKIP reason") without
#                             root, libvirtd, virsh, unshare or the
#                             libvirt-qemu user
#   lvp_init PREFIX           make the temporary tree $LVP_DIR
#                             (/tmp/PREFIX.XXXXXX) with libvirtd.conf and
#                             qemu.conf and an empty hooks/qemu.d, and set
#                             $LVP_URI (the qemu:///system URI of its
#                             socket)
#   lvp_run CMD [ARG...]      in a new mount namespace: bind the
#                             directories, start libvirtd, wait for its
#                             socket, then run CMD; returns CMD's status
#   lvp_cleanup               stop every QEMU the daemon started, a QEMU it
#                             was probing, the daemon; remove $LVP_DIR
#                             (call it from an EXIT trap)
#   lvp_trap                  lvp_cleanup on exit, and on SIGTERM or SIGINT
#                             in a session of its own (see below)
#   lvp_stop_pid PID          SIGTERM, up to 5 s, then SIGKILL
#
# The daemon's log is $LVP_DIR/daemon.log.  The QEMUs run as root with no
# security driver (qemu.conf), so that no file of the test needs
# relabelling and /dev/kvm (root's only, without udev rules) is usable.

LVP_HELPER=$(realpath "${BASH_SOURCE[0]}")

lvp_skip() { echo "1..0 # SKIP $1"; exit 77; }

lvp_require() {
    [ "$(id -u)" = 0 ] || lvp_skip "needs root to run a system-mode libvirtd"
    command -v libvirtd >/dev/null || lvp_skip "libvirtd is not installed"
    command -v virsh >/dev/null || lvp_skip "virsh is not installed"
    command -v unshare >/dev/null || lvp_skip "unshare is not installed"
    getent passwd libvirt-qemu >/dev/null ||
        lvp_skip "the libvirt-qemu user does not exist (tools/install-deps.sh creates it)"
}

# lvp_pid_of FILE: the PID in a pidfile, if it holds one.
lvp_pid_of() {
    local pid
    pid=$(head -c 32 "$1" 2>/dev/null | tr -d '[:space:]')
    [[ $pid =~ ^[1-9][0-9]*$ ]] && echo "$pid"
}

# lvp_has_arg PID REGEX: an argument of PID's command line matches REGEX
# whole, so a PID the kernel gave to another process since is left alone.
lvp_has_arg() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qx -- "$2"; }

lvp_stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    # A QEMU a test stopped (SIGSTOP) takes SIGTERM only once continued.
    kill -CONT "$pid" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
}

lvp_init() {
    LVP_DIR=$(mktemp -d "/tmp/$1.XXXXXX") || exit 1
    # shellcheck disable=SC2034  # for the sourcing test
    LVP_URI="qemu:///system?socket=$LVP_DIR/sock/libvirt-sock"
    # The mount points must exist outside the namespace too.
    mkdir -p "$LVP_DIR"/{etc/hooks/qemu.d,run,lib,log,cache,sock} /var/lib/libvirt \
        /var/log/libvirt /var/cache/libvirt /run/libvirt
    cat >"$LVP_DIR/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$LVP_DIR/sock"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
EOF
    cat >"$LVP_DIR/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
EOF
}

lvp_run() {
    cat >"$LVP_DIR/inner.sh" <<EOF
set -u
mount --bind "$LVP_DIR/etc" /etc/libvirt
mount --bind "$LVP_DIR/run" /run/libvirt
mount --bind "$LVP_DIR/lib" /var/lib/libvirt
mount --bind "$LVP_DIR/log" /var/log/libvirt
mount --bind "$LVP_DIR/cache" /var/cache/libvirt
libvirtd --config "$LVP_DIR/etc/libvirtd.conf" --pid-file "$LVP_DIR/libvirtd.pid" >"$LVP_DIR/daemon.log" 2>&1 &
echo \$! >"$LVP_DIR/daemon.pid"
for i in \$(seq 100); do [ -S "$LVP_DIR/sock/libvirt-sock" ] && break; sleep 0.1; done
exec "\$@"
EOF
    unshare -m --propagation private bash "$LVP_DIR/inner.sh" "$@"
}

lvp_cleanup() {
    local f pid dom
    [ -n "${LVP_DIR:-}" ] && [ -d "$LVP_DIR" ] || return 0
    # Each QEMU the daemon started, from the pidfile libvirt keeps for it
    # in its state directory, /run/libvirt/qemu/DOMAIN.pid, which is
    # $LVP_DIR/run/qemu here (libvirt removes it when the domain stops):
    # stopped while that PID still runs that domain (-name guest=DOMAIN,...);
    # the driver's own driver.pid there names the daemon and matches no QEMU.
    for f in "$LVP_DIR"/run/qemu/*.pid; do
        [ -f "$f" ] || continue
        dom=$(basename "$f" .pid)
        pid=$(lvp_pid_of "$f") || continue
        lvp_has_arg "$pid" "guest=$dom\(,.*\)\?" && lvp_stop_pid "$pid"
    done
    # A QEMU the daemon was probing for its capabilities when it stopped,
    # from the pidfile it gave that QEMU (-pidfile .../qmp-XXXXXX/qmp.pid).
    for f in "$LVP_DIR"/lib/qemu/qmp-*/qmp.pid; do
        [ -f "$f" ] || continue
        pid=$(lvp_pid_of "$f") || continue
        lvp_has_arg "$pid" ".*/$(basename "$(dirname "$f")")/qmp\.pid" && lvp_stop_pid "$pid"
    done
    # The daemon: inner.sh wrote its PID ($!), and the daemon its pidfile.
    for f in "$LVP_DIR/daemon.pid" "$LVP_DIR/libvirtd.pid"; do
        pid=$(lvp_pid_of "$f") || continue
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ] && lvp_stop_pid "$pid"
    done
    rm -rf "$LVP_DIR"
}

# meson stops a test that ran out of time with SIGTERM to its process
# group and, 0.5 s later, SIGKILL; QEMU runs in a session of its own
# (libvirt daemonizes it), so it outlives both.  On SIGTERM or SIGINT the
# cleanup therefore runs in a new session, which that SIGKILL misses.
lvp_trap() {
    trap lvp_cleanup EXIT
    trap 'lvp_detached_cleanup; exit 143' TERM
    trap 'lvp_detached_cleanup; exit 130' INT
}

lvp_detached_cleanup() {
    trap - EXIT
    # shellcheck disable=SC2016  # expanded by that bash
    LVP_DIR=$LVP_DIR setsid -f bash -c '. "$1"; lvp_cleanup' bash "$LVP_HELPER" \
        </dev/null >/dev/null 2>&1
}
