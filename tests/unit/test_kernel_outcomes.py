"""The kernel ends with an Outcome member (EMV Contactless Book A, 6.2.2) that it returns,
never a string it raises: every path of the quick path, the full path and kernel activation
returns a :class:`KernelOutcome`; only card data the kernel cannot use raises
(:class:`KernelAbort`, END APPLICATION). The cryptogram asked for and returned is one enum on
both sides, coded as Book 3 Table 12 (GENERATE AC P1) and Table 14 (CID) code it."""

from __future__ import annotations

import ast
import enum
import random
import typing
from pathlib import Path
from typing import Any

import pytest
import test_terminal_outcomes
from test_terminal_doubles import Host, MutatingCard, loopback

from emvtap.bits import CID, CryptogramType
from terminal import pay
from terminal.kernel.common import KernelAbort
from terminal.outcome import KernelOutcome, Outcome
from terminal.pay import perform_transaction

KERNEL = Path(__file__).resolve().parents[2] / "terminal" / "kernel"
PATH_MODULES = ("activation.py", "quick_path.py", "full_path.py")
#: The only exceptions kernel code raises: aborts, and ODA failures its callers turn into TVR
#: bits.
ABORTS = {"KernelAbort", "OdaFailure"}


def test_the_kernel_outcome_is_the_outcome_enum() -> None:
    hints = typing.get_type_hints(KernelOutcome)
    assert hints["outcome"] is Outcome
    assert issubclass(Outcome, enum.Enum)
    with pytest.raises(TypeError, match="Outcome member"):
        KernelOutcome("APPROVED", "a string is not an outcome")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        Outcome.APROVED  # type: ignore[attr-defined]  # noqa: B018 - a typo fails loudly
    # The record keeps the Book A text.
    assert str(Outcome.ONLINE_REQUEST) == "ONLINE REQUEST"


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def _returns_kernel_outcome(fn: ast.FunctionDef) -> bool:
    return isinstance(fn.returns, ast.Name) and fn.returns.id == "KernelOutcome"


def _path_functions() -> tuple[dict[str, ast.FunctionDef], set[str]]:
    functions: dict[str, ast.FunctionDef] = {}
    for name in PATH_MODULES:
        functions |= _functions(ast.parse((KERNEL / name).read_text()))
    outcome_functions = {n for n, fn in functions.items() if _returns_kernel_outcome(fn)}
    return functions, outcome_functions


def test_every_kernel_path_returns_a_kernel_outcome() -> None:
    """Static: each function typed ``-> KernelOutcome`` ends in a return, and every return
    gives ``KernelOutcome(...)`` or the result of another such function."""
    functions, outcome_functions = _path_functions()
    assert {"activate_kernel", "quick_path", "full_path", "online_processing"} <= outcome_functions
    for name in sorted(outcome_functions):
        fn = functions[name]
        assert isinstance(fn.body[-1], ast.Return), f"{name} can end without returning"
        for node in ast.walk(fn):
            if isinstance(node, ast.Return):
                call = node.value
                assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name), (
                    f"{name} line {node.lineno}: returns something other than a call")
                assert call.func.id in outcome_functions | {"KernelOutcome"}, (
                    f"{name} line {node.lineno}: returns {call.func.id}(...)")
                if call.func.id == "KernelOutcome":
                    first = call.args[0]
                    assert (isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name)
                            and first.value.id == "Outcome"), (
                        f"{name} line {node.lineno}: the outcome is not an Outcome member")


def test_the_kernel_raises_only_aborts() -> None:
    for path in sorted(KERNEL.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                assert isinstance(exc, ast.Name) and exc.id in ABORTS, (
                    f"{path.name} line {node.lineno} raises {ast.unparse(node.exc)}")


def test_every_tap_gets_a_kernel_outcome_from_the_kernel(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Dynamic: over the outcome scenarios and 400 seeded taps with one card answer mutated,
    each kernel run returns a KernelOutcome with Outcome members or aborts with a reason."""
    seen: list[Outcome | str] = []
    real = pay.activate_kernel

    def spy(*args: Any, **kwargs: Any) -> KernelOutcome:
        try:
            out = real(*args, **kwargs)
        except KernelAbort as abort:
            assert abort.reason
            seen.append("abort")
            raise
        assert isinstance(out, KernelOutcome), out
        assert isinstance(out.outcome, Outcome)
        assert out.final_outcome is None or isinstance(out.final_outcome, Outcome)
        assert out.reason
        seen.append(out.outcome)
        return out

    monkeypatch.setattr(pay, "activate_kernel", spy)
    for scenario, _ in test_terminal_outcomes.OUTCOME_SCENARIOS.values():
        scenario()
    rng = random.Random(20261202)
    factories = test_terminal_outcomes._card_factories()
    for case in range(400):
        card, cfg, kw = factories[case % len(factories)]()
        target, mutate = rng.randrange(12), test_terminal_outcomes._mutations(rng)
        count = {"n": 0}

        def hostile(command: bytes, response: bytes, *, _m: Any = mutate, _t: int = target,
                    _c: dict[str, int] = count) -> bytes:
            _c["n"] += 1
            return _m(response) if _c["n"] - 1 == _t else response

        perform_transaction(loopback(MutatingCard(card, hostile)), cfg, 15000,
                            authorise=Host("00"), **kw)
    assert {Outcome.APPROVED, Outcome.DECLINED, Outcome.ONLINE_REQUEST, "abort"} <= set(seen)


@pytest.mark.parametrize(("kind", "coding"), [
    (CryptogramType.AAC, 0x00), (CryptogramType.TC, 0x40), (CryptogramType.ARQC, 0x80)])
def test_a_cryptogram_type_is_its_p1_and_cid_coding(kind: CryptogramType, coding: int) -> None:
    assert kind == coding and bytes([kind]) == bytes([coding])
    assert CryptogramType.of(coding | 0x10) is kind  # the CDA bit or a CID reason is not the type
    assert CID.type_of(coding) == kind.name == f"{kind}" == str(kind)


def test_the_rfu_cryptogram_type_is_no_member() -> None:
    with pytest.raises(ValueError):
        CryptogramType.of(0xC0)  # Book 3 Table 12 / 14: 11 is RFU (AAR)
