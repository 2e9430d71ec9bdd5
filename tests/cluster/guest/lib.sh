# The shell library of every cluster guest (busybox sh), sourced by each engine's init.
# Results leave through the serial console as lines "CL: <what> ... up=<guest uptime>",
# which the host stamps as they arrive; commands come in on the same console.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

up() { cut -d' ' -f1 /proc/uptime; }
mark() { echo "CL: $* up=$(up)"; }
# init must never exit: the kernel would panic, and a panic must not pass for a fence.
hang() { while :; do sleep 3600; done; }
fail() { mark "error $*"; dmesg | tail -n 15; hang; }

# the kernel's filesystems, and the tmpfs /run and /tmp
mount_basics() {
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev 2>/dev/null
    mount -t tmpfs tmpfs /run
    mount -t tmpfs tmpfs /tmp
    stty -echo 2>/dev/null
}

# spawn NAME CMD...: CMD in the background; its end is reported on the console (rc=137 is a
# SIGKILL; a SIGSTOP is not reported: wait ignores stops).
spawn() {
    _name=$1; shift
    rm -f "/run/cl-$_name.pid"
    ( "$@" & _p=$!; echo $_p > "/run/cl-$_name.pid"; mark "started $_name pid=$_p"; wait $_p; mark "exited $_name rc=$?" ) &
    while [ ! -s "/run/cl-$_name.pid" ]; do usleep 20000; done
}

# wait_for SECONDS CMD...: until CMD succeeds, polling every 0.1 s
wait_for() {
    _n=$(($1 * 10)); shift
    while ! "$@"; do
        _n=$((_n - 1)); [ $_n -le 0 ] && return 1
        usleep 100000
    done
}

# load_modules: insmod of every line of /case.modules ("name params"), in order
load_modules() {
    while read -r _mod _params; do
        [ -n "$_mod" ] || continue
        # word splitting of $_params is wanted: it holds module parameters
        insmod "/lib/modules/$_mod.ko" $_params || fail "insmod $_mod failed"
    done < /case.modules
    mark "modules-loaded watchdogs=$(ls /dev | grep '^watchdog[0-9]' | tr '\n' ' ')"
}

# net_up: lo and eth0 with $ADDR/24
net_up() {
    wait_for 10 test -e /sys/class/net/eth0 || fail "no eth0"
    ip link set lo up
    ip link set eth0 up
    ip addr add "$ADDR/24" dev eth0 || fail "ip addr add $ADDR"
    mark "net eth0 $ADDR mac=$(cat /sys/class/net/eth0/address)"
}

# The guest-side observer: vip=1 when this node has the service address $VIP on an interface
# that is UP (IFF_UP in its flags; an address on a down interface does not count). Polled
# every 0.2 s, printed when it changes and at least every 0.4 s. An engine may define
# report_extra, whose output is appended to the line (the heartbeat suite's DRBD role).
reporter() {
    _last=x; _n=0
    while :; do
        _v=0
        _lines=$(ip -4 -o addr show 2>/dev/null)
        while read -r _i _dev _fam _addr _rest; do
            case "$_addr" in
                "$VIP"/*)
                    read -r _flags < "/sys/class/net/$_dev/flags"
                    [ $((_flags & 1)) -eq 1 ] && _v=1 ;;
            esac
        done <<EOF
$_lines
EOF
        _x=$(report_extra 2>/dev/null)
        _n=$((_n + 1))
        if [ "$_v$_x" != "$_last" ] || [ $_n -ge 2 ]; then
            echo "CL: vip=$_v$_x"; _last=$_v$_x; _n=0
        fi
        usleep 200000
    done
}
report_extra() { :; }

# follow FILE PATTERN TAG: the lines of an engine's log matching PATTERN, to the console
follow() {
    touch "$1"
    tail -n +1 -F "$1" 2>/dev/null | awk -v p="$2" -v t="$3" '$0 ~ p { print "LOG[" t "]: " $0; fflush() }' &
}

armed() { grep -q "fence_bound_s=" /run/wdfeed.log 2>/dev/null; }
arm_done() { armed || grep -q "CL: exited wdfeed" /run/wdfeed.log 2>/dev/null; }

# start_wdfeed [ARGS]: wdfeed run with /etc/wdfeed/watchdog.yaml, its output on the console
# and in /run/wdfeed.log; returns once it armed, or fails the boot with its last words.
start_wdfeed() {
    wdfeed validate /etc/wdfeed/watchdog.yaml 2>&1
    mark "validated rc=$?"
    ( wdfeed run -c /etc/wdfeed/watchdog.yaml "$@" 2>&1 & echo $! > /run/wdfeed.pid; wait $!
      echo "CL: exited wdfeed rc=$? up=$(up)" ) 2>&1 | tee /run/wdfeed.log &
    wait_for "$ARM_TIMEOUT" arm_done
    if ! armed; then
        grep -q "CL: exited wdfeed" /run/wdfeed.log &&
            fail "wdfeed exited without arming: $(grep -v '^CL:' /run/wdfeed.log | tail -n 1)"
        fail "wdfeed did not arm within ${ARM_TIMEOUT}s"
    fi
    mark "armed pid=$(cat /run/wdfeed.pid)"
}

# start_load DIR DEV [nomem]: heavy legitimate load on this node (the healthy scenarios): CPU
# spinners, memory churn (not with `nomem`: the Pacemaker suite's load has none, as it always
# had), a tmpfs ballast, and writes with fsync into DIR, on disk DEV
start_load() {
    ( while :; do :; done ) &
    ( while :; do :; done ) &
    if [ "$3" != nomem ]; then
        ( while :; do dd if=/dev/zero of=/dev/null bs=32M count=2 2>/dev/null; done ) &
        _mem="memory, "
    else
        _mem=""
    fi
    ( while :; do head -c 64m /dev/zero > /run/ballast; rm -f /run/ballast; done ) &
    ( while :; do dd if=/dev/zero of="$1/big" bs=1M count=64 conv=fsync 2>/dev/null; sync; done ) &
    mark "load started (2 cpu spinners, ${_mem}tmpfs, fsync writes on $1)"
    ( while :; do
        sleep 10
        mark "load loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /) ${2}_written_mib=$(( $(awk '{print $7}' "/sys/block/$2/stat") / 2048 ))"
      done ) &
}

# start_writer DIR: writes into DIR every 0.2 s (the service's I/O, for a stuck disk)
start_writer() {
    ( while :; do dd if=/dev/zero of="$1/w" bs=64k count=4 conv=fsync 2>/dev/null; usleep 200000; done ) &
    mark "writer started"
}
