#!/bin/sh
# Start pcscd (with the vpcd virtual readers) for emvtap's tests and demos - idempotently.
#
# - If a pcscd is running and answers with the vpcd readers listed, do nothing.
# - Else remove stale /run/pcscd/pcscd.comm and pcscd.pid, start `pcscd --foreground` in the
#   background (its own session; log in $EMVTAP_PCSCD_LOG, default /tmp/emvtap-pcscd.log) and
#   wait until pcscd lists "Virtual PCD" readers, at most $EMVTAP_PCSCD_TIMEOUT seconds (10).
# - EMVTAP_PCSCD_DEBUG=1 adds --debug --apdu (every APDU in the log).
# Never --auto-exit (pcscd would quit after 60 s idle). No systemd needed; run as root (or a
# user that can write /run/pcscd). Concurrent runs are serialised by a lock file.
# Exit status: 0 readers up; 1 pcscd could not be started or does not answer.
set -eu

LOG=${EMVTAP_PCSCD_LOG:-/tmp/emvtap-pcscd.log}
TIMEOUT=${EMVTAP_PCSCD_TIMEOUT:-10}
RUNDIR=/run/pcscd
READER_PATTERN=${EMVTAP_PCSCD_READER:-Virtual PCD}

command -v pcscd >/dev/null 2>&1 || { echo "pcscd-start: pcscd is not installed (apt-get install pcscd vsmartcard-vpcd pcsc-tools)" >&2; exit 1; }
command -v pcsc_scan >/dev/null 2>&1 || { echo "pcscd-start: pcsc_scan is not installed (apt-get install pcsc-tools)" >&2; exit 1; }

exec 9>/tmp/emvtap-pcscd-start.lock
flock -w 60 9 || { echo "pcscd-start: another start has held the lock for 60 s" >&2; exit 1; }

readers_up() {
    timeout 3 pcsc_scan -r 2>/dev/null | grep -q "$READER_PATTERN"
}

pcscd_pid() {
    if [ -r "$RUNDIR/pcscd.pid" ]; then
        pid=$(tr -dc 0-9 <"$RUNDIR/pcscd.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            echo "$pid"
            return 0
        fi
    fi
    pidof pcscd 2>/dev/null | awk '{print $1}'
}

pid=$(pcscd_pid || true)
if [ -n "$pid" ]; then
    if readers_up; then
        exit 0
    fi
    # Running but silent: it may be starting right now; give it the timeout before judging.
    deadline=$(( $(date +%s) + TIMEOUT ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        readers_up && exit 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "pcscd-start: pcscd (pid $pid) is running but lists no '$READER_PATTERN' reader;" \
             "is vsmartcard-vpcd installed (/etc/reader.conf.d/vpcd)? See $LOG; stop it with scripts/pcscd-stop.sh" >&2
        exit 1
    fi
fi

if [ ! -e /etc/reader.conf.d/vpcd ]; then
    echo "pcscd-start: /etc/reader.conf.d/vpcd is missing (apt-get install vsmartcard-vpcd)" >&2
    exit 1
fi

mkdir -p "$RUNDIR"
rm -f "$RUNDIR/pcscd.comm" "$RUNDIR/pcscd.pid"
extra=""
if [ "${EMVTAP_PCSCD_DEBUG:-0}" = 1 ]; then
    extra="--debug --apdu"
fi
echo "=== $(date -Is) pcscd-start: pcscd --foreground $extra" >>"$LOG"
# shellcheck disable=SC2086
setsid pcscd --foreground $extra </dev/null >>"$LOG" 2>&1 9>&- &
started=$!

deadline=$(( $(date +%s) + TIMEOUT ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    if readers_up; then
        exit 0
    fi
    if ! kill -0 "$started" 2>/dev/null; then
        echo "pcscd-start: pcscd exited at once; last lines of $LOG:" >&2
        tail -n 20 "$LOG" >&2
        exit 1
    fi
    sleep 0.05
done
echo "pcscd-start: pcscd started (pid $started) but lists no '$READER_PATTERN' reader after ${TIMEOUT}s; see $LOG" >&2
tail -n 20 "$LOG" >&2
exit 1
