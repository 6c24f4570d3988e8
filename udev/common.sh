# Shared by udev/install.sh and udev/uninstall.sh (sourced, not run).
# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this

RULES_FILE=60-emvtap-nfc.rules
BLACKLIST_FILE=blacklist-emvtap-nfc.conf
RULES_DEST=etc/udev/rules.d/$RULES_FILE
BLACKLIST_DEST=etc/modprobe.d/$BLACKLIST_FILE
# Kernel modules that claim the lab's readers, in the order they can be unloaded.
STEALING_MODULES=(pn533_usb pn533 port100)

apply=0
root=/
group=plugdev

die() { echo "error: $*" >&2; exit 2; }

# parse_args ALLOW_GROUP "$@": sets apply, root, group.
parse_args() {
    local allow_group=$1
    shift
    while (($#)); do
        case $1 in
            --apply) apply=1 ;;
            --root)
                (($# >= 2)) || die "--root needs a directory"
                root=$2
                shift
                ;;
            --group)
                ((allow_group)) || die "unknown option: $1"
                (($# >= 2)) || die "--group needs a group name"
                group=$2
                shift
                ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option: $1 (see --help)" ;;
        esac
        shift
    done
    [[ -d $root ]] || die "--root $root: not a directory"
    root=$(cd "$root" && pwd -P)
    [[ $group =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--group $group: not a valid group name"
    if ((apply)) && on_system && ((EUID != 0)); then
        echo "error: --apply on / needs root: sudo $0 --apply" >&2
        exit 1
    fi
}

# True when installing into the running system (then udevadm and modprobe are run).
on_system() { [[ $root == / ]]; }

# dest RELATIVE_PATH: the path under --root.
dest() { if on_system; then echo "/$1"; else echo "$root/$1"; fi; }

# run_system CMD...: run a command on the live system, or say why it is not run.
run_system() {
    if ((!apply)); then
        echo "would run  $*"
    elif ! on_system; then
        echo "skipped    $* (--root $root is not the live system)"
    else
        echo "run        $*"
        "$@"
    fi
}

# loaded_modules: names from /proc/modules (under --root), one per line.
loaded_modules() {
    local modules
    modules=$(dest proc/modules)
    [[ -r $modules ]] || return 0
    cut -d' ' -f1 "$modules"
}

# reload_udev: apply changed rules to devices already plugged in.
reload_udev() {
    run_system udevadm control --reload-rules
    run_system udevadm trigger --action=change --subsystem-match=usb
    echo "note       serial adapters (PN532 boards) pick up the ModemManager flag when replugged"
}
