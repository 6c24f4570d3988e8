#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Remove what udev/install.sh installed (see udev/README.md).
#
#   udev/uninstall.sh                      dry run: print what would be removed
#   sudo udev/uninstall.sh --apply         remove the files and reload udev
#   udev/uninstall.sh --root DIR --apply   remove them under DIR instead of / (no udevadm)
#
# The kernel NFC modules are not loaded back: they load at the next plug-in or with
# `sudo modprobe pn533_usb port100`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

usage() { sed -n '3,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

parse_args 0 "$@"

removed=0
rules_removed=0
for relative in "$RULES_DEST" "$BLACKLIST_DEST"; do
    target=$(dest "$relative")
    if [[ -e $target || -L $target ]]; then
        echo "remove     $target"
        removed=$((removed + 1))
        [[ $relative == "$RULES_DEST" ]] && rules_removed=1
        ((apply)) && rm -f "$target"
    else
        echo "absent     $target"
    fi
done

((rules_removed)) && reload_udev

echo "removed: $removed file(s)"
if ((!apply)); then
    echo "dry run: nothing removed; rerun with --apply (as root for /) to remove these files"
fi
