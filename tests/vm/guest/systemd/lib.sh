# Helpers for the case scripts of the systemd guest (sourced by /usr/local/lib/vmtest/run).
# Results leave through the serial console as "VMTEST: <what> ... up=<uptime>" lines; the
# host stamps them as they arrive. A case ends with `done` (all its own checks passed) or
# `fail <reason>` (the first that did not); `note <text>` lines go into the report.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
up() { cut -d' ' -f1 /proc/uptime; }
mark() { echo "VMTEST: $* up=$(up)" >/dev/console; }
note() { mark "note $*"; }
fail() { mark "fail $*"; exit 1; }
done_case() { mark "done"; exit 0; }

# unit_state UNIT: ActiveState (active, activating, deactivating, inactive, failed)
unit_state() { systemctl show -p ActiveState --value "$1"; }
main_pid() { systemctl show -p MainPID --value "$1"; }

# wait_state UNIT STATE SECONDS: until the unit is in STATE; fails the case otherwise
wait_state() {
    _i=0
    while [ "$(unit_state "$1")" != "$2" ]; do
        usleep 100000; _i=$((_i + 1))
        [ $_i -ge $(($3 * 10)) ] && fail "$1 not $2 within $3 s (it is $(unit_state "$1"))"
    done
}

# wdfeed_log: wdfeed's lines in the journal, with monotonic stamps
wdfeed_log() { journalctl -q -o short-monotonic --no-pager -u wdfeed.service; }

# wait_log PATTERN SECONDS: until wdfeed's journal has a line matching PATTERN
wait_log() {
    _i=0
    while ! wdfeed_log | grep -q "$1"; do
        usleep 200000; _i=$((_i + 1))
        [ $_i -ge $(($2 * 5)) ] && return 1
    done
    return 0
}
