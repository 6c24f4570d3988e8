"""``emvtap readers``: the PC/SC readers and nfcpy devices of this machine with their role,
and with ``--watch`` the card insert/remove events with the ATR decoded."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from emvtap.cli_support import EnvironmentProblem, check_writable
from lab.readers import FORMAT_NAME, FORMAT_VERSION, PcscError, ReaderEvent, list_readers

__all__ = ["readers"]

def _event_line(event: ReaderEvent) -> list[str]:
    from emvtap.atr import decode_atr

    stamp = datetime.now().strftime("%H:%M:%S")
    lines = [f"{stamp} {event.kind}: {event.reader}"]
    if event.atr is not None:
        info = decode_atr(event.atr)
        lines.append(f"         ATR {event.atr.hex(' ').upper()}")
        lines.append(f"         {info.summary()}")
        if info.historical:
            lines.append(f"         historical bytes {info.historical.hex(' ').upper()}")
        lines += [f"         {d}" for d in info.details]
    return lines


@click.command()
@click.option("--watch", is_flag=True,
              help="Follow PC/SC card insert/remove (and reader plug/unplug) with the ATR "
                   "decoded, until Ctrl-C.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="With --watch: stop after this many events.")
@click.option("--nfc/--no-nfc", default=True, show_default=True,
              help="Probe USB for nfcpy devices (in a child process, time-bounded).")
@click.option("--nfc-timeout", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Seconds the nfcpy USB probe may take.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE|-",
              help="Write the list as JSON to FILE ('-': stdout); with --watch one JSON "
                   "object per event, one a line. Schema in docs/json/readers.md.")
def readers(watch: bool, count: int | None, nfc: bool, nfc_timeout: float,
            json_path: Path | None) -> None:
    """List the readers: PC/SC readers (pcscd) and nfcpy USB devices, with the spec to give
    --reader / --link, and the role each can play (terminal, card emulator). nfcpy's udp
    radio (nfc:udp:HOST:PORT) is virtual and not probed.

    \b
    Examples:
      emvtap readers
      emvtap readers --watch
      emvtap readers --no-nfc --json -
    """
    if json_path is not None:
        check_writable(json_path, "--json")
    if watch:
        _watch(count, json_path)
        return
    found = list_readers(nfc=nfc, nfc_timeout=nfc_timeout)
    if json_path is not None:
        doc = {"format": {"name": FORMAT_NAME, "version": FORMAT_VERSION},
               "created": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
               "readers": [r.to_json() for r in found.readers], "problems": found.problems}
        text = json.dumps(doc, indent=1)
        if json_path == Path("-"):
            click.echo(text)
        else:
            json_path.write_text(text + "\n")
    out = sys.stderr if json_path == Path("-") else sys.stdout
    if not found.readers:
        click.echo("no reader found", file=out)
    for r in found.readers:
        click.echo(f"{r.spec}", file=out)
        click.echo(f"    {r.name} ({r.kind}); role: {' and '.join(r.roles)}; {r.status}",
                   file=out)
        if r.note:
            click.echo(f"    {r.note}", file=out)
        if r.card_atr is not None:
            for line in _event_line(ReaderEvent("card", r.spec, r.card_atr))[1:]:
                click.echo("  " + line.strip(), file=out)
    click.echo("nfc:udp:HOST:PORT  nfcpy's virtual radio (not probed): terminal and card "
               "emulator", file=out)
    for problem in found.problems:
        click.echo(f"note: {problem}", file=out)


def _watch(count: int | None, json_path: Path | None) -> None:
    from lab.readers import watch_pcsc

    seen = 0
    sink = None
    if json_path is not None and json_path != Path("-"):
        sink = json_path.open("w", encoding="utf-8")
    human = sys.stderr if json_path == Path("-") else sys.stdout
    click.echo("watching PC/SC readers; Ctrl-C to stop", file=sys.stderr)
    try:
        for event in watch_pcsc():
            seen += 1
            for line in _event_line(event):
                click.echo(line, file=human)
            if json_path is not None:
                line = json.dumps({"format": {"name": "emvtap-readers-event", "version": 1},
                                   "created": datetime.now(UTC).astimezone().isoformat(
                                       timespec="seconds"), **event.to_json()})
                if sink is None:
                    click.echo(line)
                else:
                    sink.write(line + "\n")
                    sink.flush()
            if count is not None and seen >= count:
                break
    except PcscError as exc:
        raise EnvironmentProblem(str(exc)) from exc
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends
    finally:
        if sink is not None:
            sink.close()
