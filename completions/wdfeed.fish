# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_wdfeed_global_optspecs
    string join \n root= allow-unsafe-config log-level= h/help V/version
end

function __fish_wdfeed_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_wdfeed_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_wdfeed_using_subcommand
    set -l cmd (__fish_wdfeed_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c wdfeed -n "__fish_wdfeed_needs_command" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_needs_command" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_needs_command" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "run" -d 'Run the daemon: pet every device while every check passes; fence when one fails'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "fence" -d 'Fence this node now, through the running daemon\'s prepared fence (check=operator): `fence.isolate`\'s links down, the kill list killed, the hardware resets the node (or `mode: reboot` reboots it). Root only'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "pause" -d 'Pause fencing for failing checks (maintenance) for DURATION, at most the config\'s max-pause: checks keep running, the devices stay armed and petted, the freeze guard still fences. The pause ends by itself; a check still failing then fences. Root only'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "resume" -d 'End a maintenance pause now: a check without a valid lease fences at the next tick. Root only'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "rejoin-now" -d 'End the rejoin delay, or a hold (fence budget spent, `wdfeed.hold` on the kernel command line), now: READY=1 goes at once and the cluster stack ordered after wdfeed starts. Only when the peer is known to have stopped waiting for this node'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "stop" -d 'End a fenced wdfeed (it ignores SIGTERM): the devices stay armed, the node still resets, and no wdfeed arms again in this boot'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "status" -d 'Show the running daemon\'s state: checks, leases, last pet, fence state, bound'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "check" -d 'Run every check once and print a table; exit 0 if healthy, 1 if not'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "info" -d 'Describe the watchdog devices from sysfs without opening them (opening arms them), and the fence bound of the config'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "doctor" -d 'Find sbd, Pacemaker, corosync, systemd\'s runtime watchdog, keepalived and any other watchdog user on this node, and say what conflicts with the config and how to fix it'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "validate" -d 'Check a config: print every problem, or "config looks good" and its fence bound'
complete -c wdfeed -n "__fish_wdfeed_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -s c -l config -d 'The config file (default: /etc/wdfeed/watchdog.yaml, else the embedded default)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -l status-file -d 'Where to keep the state `wdfeed status` reads' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -l runtime-dir -d 'wdfeed\'s runtime directory: must be on a tmpfs (or ramfs); it holds the fence record of this boot. Not under --root: it is this host\'s state' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -l state-dir -d 'wdfeed\'s persistent state directory: it holds the state record that tells the next boot whether this one ended armed (the rejoin delay). Not under --root' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -l dry-run -d 'Run every check and log each decision ("would pet", "would fence") without opening a device or killing anything'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand run" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand fence" -l reason -d 'Why (kept in the fence record, the kernel log and the metrics): one line of at most 200 bytes' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand fence" -l runtime-dir -d 'The daemon\'s runtime directory (as given to `run`)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand fence" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand fence" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand fence" -l cut-reason -d 'Cut a reason over 200 bytes to its first 200 (on a character boundary) instead of refusing it: for a template whose reason holds a name of unknown length (a unit name may have 255 bytes), where a refused request would be a missed fence'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand fence" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand fence" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand fence" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand pause" -l for -d 'How long, e.g. 10m (at most max-pause, 1h by default)' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand pause" -l reason -d 'Why (shown by `status`, the metrics and the log): one line of at most 200 bytes' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand pause" -l runtime-dir -d 'The daemon\'s runtime directory (as given to `run`)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand pause" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand pause" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand pause" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand pause" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand pause" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand resume" -l runtime-dir -d 'The daemon\'s runtime directory (as given to `run`)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand resume" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand resume" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand resume" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand resume" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand resume" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand rejoin-now" -l status-file -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand rejoin-now" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand rejoin-now" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand rejoin-now" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand rejoin-now" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand rejoin-now" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand stop" -l status-file -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand stop" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand stop" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand stop" -l fenced -d 'Required: says that the daemon to stop is fenced'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand stop" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand stop" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand stop" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand status" -l status-file -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand status" -l format -d 'What to print: a table, the JSON the daemon wrote, or Prometheus metrics' -r -f -a "text\t'A table for operators'
json\t'The JSON the daemon wrote'
prometheus\t'The Prometheus text format (docs/METRICS.md)'"
complete -c wdfeed -n "__fish_wdfeed_using_subcommand status" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand status" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand status" -l json -d 'Same as `--format json`'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand status" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand status" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand check" -s c -l config -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand check" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand check" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand check" -l json -d 'Print JSON instead of a table'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand check" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand check" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand check" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand info" -s c -l config -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand info" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand info" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand info" -l json -d 'Print JSON instead of a table'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand info" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand info" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand info" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand doctor" -s c -l config -d 'The config file (default: as `run`)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand doctor" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand doctor" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand doctor" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand validate" -l root -d 'Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host\'s root mounted in a container, e.g. /host)' -r -F
complete -c wdfeed -n "__fish_wdfeed_using_subcommand validate" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c wdfeed -n "__fish_wdfeed_using_subcommand validate" -l print-default -d 'Print the embedded default config and exit'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand validate" -l allow-unsafe-config -d 'Accept a config that users other than its owner and root can write, or replace in its directory (a warning instead of a refusal). For test rigs only: those users can make wdfeed fence this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand validate" -s h -l help -d 'Print help'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand validate" -s V -l version -d 'Print version'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "run" -d 'Run the daemon: pet every device while every check passes; fence when one fails'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "fence" -d 'Fence this node now, through the running daemon\'s prepared fence (check=operator): `fence.isolate`\'s links down, the kill list killed, the hardware resets the node (or `mode: reboot` reboots it). Root only'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "pause" -d 'Pause fencing for failing checks (maintenance) for DURATION, at most the config\'s max-pause: checks keep running, the devices stay armed and petted, the freeze guard still fences. The pause ends by itself; a check still failing then fences. Root only'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "resume" -d 'End a maintenance pause now: a check without a valid lease fences at the next tick. Root only'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "rejoin-now" -d 'End the rejoin delay, or a hold (fence budget spent, `wdfeed.hold` on the kernel command line), now: READY=1 goes at once and the cluster stack ordered after wdfeed starts. Only when the peer is known to have stopped waiting for this node'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "stop" -d 'End a fenced wdfeed (it ignores SIGTERM): the devices stay armed, the node still resets, and no wdfeed arms again in this boot'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "status" -d 'Show the running daemon\'s state: checks, leases, last pet, fence state, bound'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "check" -d 'Run every check once and print a table; exit 0 if healthy, 1 if not'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "info" -d 'Describe the watchdog devices from sysfs without opening them (opening arms them), and the fence bound of the config'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "doctor" -d 'Find sbd, Pacemaker, corosync, systemd\'s runtime watchdog, keepalived and any other watchdog user on this node, and say what conflicts with the config and how to fix it'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "validate" -d 'Check a config: print every problem, or "config looks good" and its fence bound'
complete -c wdfeed -n "__fish_wdfeed_using_subcommand help; and not __fish_seen_subcommand_from run fence pause resume rejoin-now stop status check info doctor validate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
