#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install emvtap's udev rules and kernel-module blacklist (see udev/README.md).
#
#   udev/install.sh                       dry run: print what would change, write nothing
#   sudo udev/install.sh --apply          write the files, reload udev, unload pn533/port100
#   udev/install.sh --root DIR --apply    install under DIR instead of / (no udevadm, no modprobe)
#   --group NAME                          grant NAME instead of plugdev access to the readers
#
# Idempotent: a file that is already up to date is left alone; a second run changes nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

usage() { sed -n '3,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

parse_args 1 "$@"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Only rule lines change group; the comments keep describing the default.
sed "/^#/!s/GROUP=\"plugdev\"/GROUP=\"$group\"/g" "$here/$RULES_FILE" >"$work/$RULES_FILE"
cp "$here/$BLACKLIST_FILE" "$work/$BLACKLIST_FILE"

changed=0
rules_changed=0

# install_file SOURCE DEST: create or update DEST with SOURCE's content, mode 0644.
install_file() {
    local source=$1 target=$2
    if [[ -f $target ]] && cmp -s "$source" "$target"; then
        echo "unchanged  $target"
        return
    fi
    if [[ -e $target ]]; then
        echo "update     $target"
        diff -u "$target" "$source" | sed 's/^/    /' || true
    else
        echo "create     $target ($(wc -l <"$source") lines)"
    fi
    changed=$((changed + 1))
    if ((apply)); then
        mkdir -p "$(dirname "$target")"
        install -m 0644 "$source" "$target.emvtap-new"
        mv -f "$target.emvtap-new" "$target"
    fi
}

install_file "$work/$RULES_FILE" "$(dest "$RULES_DEST")"
((changed)) && rules_changed=1
install_file "$work/$BLACKLIST_FILE" "$(dest "$BLACKLIST_DEST")"

((rules_changed)) && reload_udev

# Unload the modules that would keep holding a reader until the next reboot.
loaded=$(loaded_modules)
to_unload=()
for module in "${STEALING_MODULES[@]}"; do
    grep -qx "$module" <<<"$loaded" && to_unload+=("$module")
done
if ((${#to_unload[@]})); then
    run_system modprobe -r "${to_unload[@]}"
    # nfc goes too unless something else (a built-in NFC controller) still uses it.
    if grep -qx nfc <<<"$loaded"; then
        run_system modprobe -r nfc || echo "note       nfc left loaded: another driver uses it"
    fi
fi

# The group must exist, and the user must be in it (or be the local seat user: uaccess).
if on_system; then
    if ! getent group "$group" >/dev/null; then
        echo "warning    group $group does not exist: sudo groupadd --system $group," \
            "or rerun with --group NAME"
    else
        user=${SUDO_USER:-${USER:-}}
        if [[ -n $user && $user != root ]] && ! id -nG "$user" | tr ' ' '\n' | grep -qx "$group"; then
            echo "next       sudo usermod -aG $group $user   (then log in again)"
        fi
    fi
fi

echo "changed: $changed file(s)"
if ((!apply)); then
    echo "dry run: nothing written; rerun with --apply (as root for /) to make these changes"
else
    echo "next       plug the readers in (again) and run: emvtap doctor"
fi
