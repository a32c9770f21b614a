"""The ledger: what producers were told was accepted, checked against what every tab holds."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.chaos.tab import ChaosTab


@dataclass(frozen=True)
class Accepted:
    user: str
    seq: int
    id: str
    at: float  # time.monotonic() when the producer got its answer


@dataclass
class Ledger:
    by_user: dict[str, dict[int, Accepted]] = field(default_factory=dict)
    sent: int = 0  # logical sends started
    refused: int = 0  # sends that no dispatcher accepted within the producer's deadline
    answer_conflicts: int = 0  # one (user, seq) answered with two different ids

    def record(self, user: str, seq: int, ident: str) -> None:
        seqs = self.by_user.setdefault(user, {})
        known = seqs.get(seq)
        if known is not None and known.id != ident:
            self.answer_conflicts += 1
        if known is None:
            seqs[seq] = Accepted(user, seq, ident, time.monotonic())

    @property
    def accepted(self) -> int:
        return sum(len(seqs) for seqs in self.by_user.values())

    def ids(self, user: str) -> list[str]:
        return [a.id for a in self.by_user.get(user, {}).values()]

    def complete(self, tabs: Iterable[ChaosTab]) -> bool:
        """Every tab holds every notification accepted for its user."""
        return all(tab.holds_all(self.ids(tab.user)) for tab in tabs)


@dataclass
class Figures:
    scenario: str
    sent: int
    accepted: int
    refused: int
    lost: int  # (tab, accepted notification) pairs not held at the bound
    dup: int  # after de-dup by id: a seq held under two ids, or an id under another seq
    raw_dup: int  # arrivals of an id the tab already held (harmless, de-duplicated)
    out_of_order: int  # first arrivals below a seq the tab already held
    foreign: int  # held notifications stored for another user
    recovery_s: float | None  # None when something is lost
    max_wait_s: float | None  # longest any tab waited for a notification after its answer
    tabs: int
    reconnects: int
    closes: dict[str, int]
    examples: list[str] = field(default_factory=list)  # a few of the failures, to start from
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    scenario: str,
    ledger: Ledger,
    tabs: list[ChaosTab],
    fault_end: float,
    owners: Mapping[str, str],
) -> Figures:
    """`owners` maps every held id to the user PostgreSQL stores it for (the truth on
    foreign rows, including ones no producer heard about)."""
    lost = dup = 0
    recovery = wait = 0.0
    examples: list[str] = []
    for tab in tabs:
        dup += tab.seq_conflicts
        for accepted in ledger.by_user.get(tab.user, {}).values():
            held = tab.held.get(accepted.id)
            if held is None:
                lost += 1
                examples.append(f"lost: {accepted.user} seq {accepted.seq} id {accepted.id}")
                continue
            if held.seq != accepted.seq:
                dup += 1
                examples.append(
                    f"dup: {accepted.id} accepted as seq {accepted.seq}, held as {held.seq}"
                )
            recovery = max(recovery, held.at - max(accepted.at, fault_end))
            wait = max(wait, held.at - accepted.at)
        examples += [
            f"foreign: tab of {tab.user} holds {i} (seq {h.seq}) stored for {owners.get(i)}"
            for i, h in tab.held.items()
            if owners.get(i) != tab.user
        ]
    closes: dict[str, int] = {}
    for tab in tabs:
        for code in tab.close_codes:
            closes[str(code)] = closes.get(str(code), 0) + 1
    return Figures(
        scenario=scenario,
        sent=ledger.sent,
        accepted=ledger.accepted,
        refused=ledger.refused,
        lost=lost,
        dup=dup + ledger.answer_conflicts,
        raw_dup=sum(t.raw_duplicates for t in tabs),
        out_of_order=sum(t.out_of_order for t in tabs),
        foreign=sum(1 for t in tabs for i in t.held if owners.get(i) != t.user),
        recovery_s=None if lost else round(recovery, 2),
        max_wait_s=round(wait, 2),
        tabs=len(tabs),
        reconnects=sum(max(0, t.connections - 1) for t in tabs),
        closes=closes,
        examples=examples[:10],
    )


COLUMNS = (
    *("scenario", "sent", "refused", "lost", "dup", "raw dup", "out of order", "foreign"),
    *("recovery s", "max wait s", "reconnects", "closes"),
)


def markdown(rows: list[Figures]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for f in rows:
        recovery = "lost" if f.recovery_s is None else f"{f.recovery_s:.2f}"
        closes = " ".join(f"{k}x{v}" for k, v in sorted(f.closes.items())) or "-"
        cells = [f.scenario, f.sent, f.refused, f.lost, f.dup, f.raw_dup, f.out_of_order]
        cells += [f.foreign, recovery, f.max_wait_s, f.reconnects, closes]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)
