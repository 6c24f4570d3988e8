#!/bin/sh
# Stop the pcscd started by pcscd-start.sh: SIGTERM (pcscd removes its socket and pid file),
# wait up to $EMVTAP_PCSCD_TIMEOUT seconds (10), then SIGKILL and clean the stale files.
# Stops the pcscd of /run/pcscd/pcscd.pid only. Exit 0 when no pcscd is left running.
set -eu

RUNDIR=/run/pcscd
TIMEOUT=${EMVTAP_PCSCD_TIMEOUT:-10}

exec 9>/tmp/emvtap-pcscd-start.lock
flock -w 60 9 || { echo "pcscd-stop: a start/stop has held the lock for 60 s" >&2; exit 1; }

pid=""
if [ -r "$RUNDIR/pcscd.pid" ]; then
    pid=$(tr -dc 0-9 <"$RUNDIR/pcscd.pid" 2>/dev/null || true)
fi
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$RUNDIR/pcscd.comm" "$RUNDIR/pcscd.pid"
    exit 0
fi

kill -TERM "$pid"
deadline=$(( $(date +%s) + TIMEOUT ))
while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "pcscd-stop: pcscd (pid $pid) ignored SIGTERM for ${TIMEOUT}s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
    fi
    sleep 0.05
done
rm -f "$RUNDIR/pcscd.comm" "$RUNDIR/pcscd.pid"
exit 0
