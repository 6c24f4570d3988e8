"""Hardware-in-the-loop scenarios (docs/hil.md): a scenario format, a runner that
plays scenarios on real or virtual readers, and the reports.

The runner is on the terminal side: it runs the terminal in this process and reaches the card
and the switch only over their wire and command lines (``emvtap card run``, ``emvtap switch
serve``, the switch's admin API) - never by importing them.

=================  ===============================================================
module             what
=================  ===============================================================
``model``          the scenario as data: cards, steps, expectations, budgets
``loader``         YAML → model, strictly (``ScenarioError`` with the place)
``expect``         the expectation table, checked against a tap's JSON record
``results``        statuses, step and scenario results, the stop exceptions
``procs``          ``emvtap`` child processes; "not supported by this build" detection
``switch_link``    the switch process and its admin API
``cards``          making cards; the terminal reader's field (present, remove, pull)
``rigs``           hardware, virtual-pcsc (pcscd + vpcd), virtual-nfc (nfcpy udp)
``person``         the person at the readers (or nobody)
``pcsc_watch``     waiting for pcscd to report a card in or out
``tap``            one tap on the terminal, timed, with the mid-tap pull
``runner``         running scenarios step by step
``report``         console table, JUnit XML, JSON
=================  ===============================================================
"""

from lab.hil.loader import ScenarioError, load_scenario, load_scenarios
from lab.hil.results import ScenarioResult, Status
from lab.hil.runner import RunOptions, run_scenario, run_scenarios

__all__ = [
    "RunOptions",
    "ScenarioError",
    "ScenarioResult",
    "Status",
    "load_scenario",
    "load_scenarios",
    "run_scenario",
    "run_scenarios",
]
