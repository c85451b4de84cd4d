"""Disclosure control on synthetic tables (fast, no pipeline): what a research partner or an
assessor could work out about small groups of children, offenders or reporters if the
suppression were wrong."""

from __future__ import annotations

import itertools
import random
from datetime import date

import numpy as np
import pytest

from ocse.exports.disclosure import (
    DisclosureError,
    Equation,
    Problem,
    primary_suppression,
    protect,
    recoverable_cells,
)
from ocse.exports.periods import Period
from ocse.exports.tables import ALL, Quantile, Rate, TableData, TableSpec, protect_tables
from tests.disclosure_attack import integer_recoveries, linear_recoveries

K = 10


def table_problem(values: np.ndarray) -> tuple[Problem, list[list]]:
    """A two-way table with published row totals, column totals and grand total."""
    rows, cols = values.shape
    problem = Problem()
    for i, j in itertools.product(range(rows), range(cols)):
        problem.add(("cell", i, j), int(values[i, j]))
    for i in range(rows):
        problem.add(("row", i), int(values[i].sum()))
        problem.equations.append(Equation.total(("row", i), [("cell", i, j) for j in range(cols)]))
    for j in range(cols):
        problem.add(("col", j), int(values[:, j].sum()))
        problem.equations.append(Equation.total(("col", j), [("cell", i, j) for i in range(rows)]))
    problem.add("grand", int(values.sum()))
    problem.equations.append(Equation.total("grand", [("row", i) for i in range(rows)]))
    problem.equations.append(Equation.total("grand", [("col", j) for j in range(cols)]))
    return problem, [list(eq.terms) for eq in problem.equations]


def attack(problem: Problem, suppressed) -> tuple[dict, dict]:
    equations = [list(eq.terms) for eq in problem.equations]
    published = {c: v for c, v in problem.values.items() if c not in suppressed}
    withheld = {c: problem.values[c] for c in suppressed}
    linear = linear_recoveries(equations, published, withheld)
    integer = integer_recoveries(equations, published, withheld, problem.subsets)
    return linear, integer


SIZES = [(3, 3, 1.0), (4, 6, 6.0), (6, 5, 12.0), (9, 8, 8.0), (14, 9, 20.0)]


@pytest.mark.parametrize(("rows", "cols", "mean"), SIZES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_small_cell_is_published_and_none_can_be_recovered(rows, cols, mean, seed):
    """Tables of several sizes and densities (many zeros, many small cells): every published
    count is at least k, and neither rational elimination nor a non-negative integer search
    over the row and column equations gives back a withheld cell."""
    rng = np.random.default_rng(seed)
    values = rng.negative_binomial(1, 1 / (1 + mean), size=(rows, cols))
    problem, _ = table_problem(values)
    protection = protect(problem, K)
    published = {c: v for c, v in problem.values.items() if protection.is_published(c)}
    assert all(v >= K for v in published.values())
    assert primary_suppression(problem, K) <= protection.suppressed
    linear, integer = attack(problem, protection.suppressed)
    assert linear == {}
    assert integer == {}


def test_primary_suppression_alone_gives_cells_away():
    """The attacker is real: withholding only the small cells lets a reader subtract them
    back out of the totals (the test above could not pass by an attacker that finds
    nothing)."""
    values = np.array([[40, 3, 25], [12, 30, 0], [18, 22, 35]])
    problem, _ = table_problem(values)
    naive = primary_suppression(problem, K)
    assert naive == {("cell", 0, 1), ("cell", 1, 2)}
    linear, integer = attack(problem, naive)
    assert linear == {("cell", 0, 1): 3, ("cell", 1, 2): 0}
    assert integer == {("cell", 0, 1): 3, ("cell", 1, 2): 0}
    assert recoverable_cells(problem, naive) == naive
    protection = protect(problem, K)
    assert attack(problem, protection.suppressed) == ({}, {})


def test_hidden_zeros_are_pinned_by_non_negativity_unless_protected():
    """A 2x2 block of withheld cells satisfies every row and column equation, and no
    linear combination isolates a cell; but two of them are zeros, and a count cannot go
    below zero, so the block cannot move: the integer attacker recovers all four."""
    values = np.array([[0, 0, 30, 40], [25, 31, 12, 50], [44, 17, 60, 22]])
    problem, _ = table_problem(values)
    pattern = {("cell", 0, 0), ("cell", 0, 1), ("cell", 1, 0), ("cell", 1, 1)}
    linear, integer = attack(problem, pattern)
    assert linear == {}
    # the zeros are pinned at 0, and then the cells below them follow from the columns
    assert integer == {("cell", 0, 0): 0, ("cell", 0, 1): 0, ("cell", 1, 0): 25, ("cell", 1, 1): 31}
    assert recoverable_cells(problem, pattern) == pattern
    protection = protect(problem, K)
    assert attack(problem, protection.suppressed) == ({}, {})


def test_an_odd_cycle_of_equations_is_caught():
    """Every equation holds two withheld cells, which the simple line rule accepts, yet
    x + y, y + z and x + z published give x, y and z: the exact check must catch it."""
    problem = Problem()
    for key, value in {"x": 3, "y": 4, "z": 12, "a": 20, "b": 30, "c": 25}.items():
        problem.add(key, value)
    for total, parts in {
        "s1": ("x", "y", "a"),
        "s2": ("y", "z", "b"),
        "s3": ("x", "z", "c"),
    }.items():
        problem.add(total, sum(problem.values[p] for p in parts))
        problem.equations.append(Equation.total(total, parts))
    cycle = {"x", "y", "z"}
    linear, _ = attack(problem, cycle)
    assert linear == {"x": 3, "y": 4, "z": 12}
    protection = protect(problem, K)
    assert {"x", "y"} <= protection.suppressed
    assert attack(problem, protection.suppressed) == ({}, {})


def test_linked_measures_in_a_row_are_defended():
    """takedowns = within_sla + breached: withholding a small `breached` while publishing
    takedowns and within_sla would give it away."""
    problem = Problem()
    for group, (within, breached) in {"a": (40, 2), "b": (55, 12), "c": (31, 14)}.items():
        problem.add(("within", group), within)
        problem.add(("breached", group), breached)
        problem.add(("takedowns", group), within + breached)
        problem.equations.append(
            Equation.total(("takedowns", group), [("within", group), ("breached", group)])
        )
    for measure in ("within", "breached", "takedowns"):
        problem.add((measure, ALL), sum(problem.values[(measure, g)] for g in "abc"))
        problem.equations.append(Equation.total((measure, ALL), [(measure, g) for g in "abc"]))
    protection = protect(problem, K)
    assert ("breached", "a") in protection.suppressed
    assert attack(problem, protection.suppressed) == ({}, {})


def test_same_input_gives_the_same_pattern_whatever_the_order():
    rng = np.random.default_rng(7)
    values = rng.poisson(9, size=(7, 6))
    problem, _ = table_problem(values)
    first = protect(problem, K).suppressed
    shuffled = Problem(values=dict(reversed(list(problem.values.items()))))
    shuffled.equations = list(problem.equations)
    random.Random(3).shuffle(shuffled.equations)
    assert protect(shuffled, K).suppressed == first


def test_k_below_five_is_refused_and_zeros_are_small_counts():
    problem, _ = table_problem(np.array([[0, 50], [60, 70]]))
    with pytest.raises(DisclosureError, match="below the minimum of 5"):
        protect(problem, 4)
    assert ("cell", 0, 0) in protect(problem, 5).primary


def test_a_false_identity_stops_the_publication():
    """Equations that do not hold on the data would make the protection reason about a
    table that is not the one published."""
    problem = Problem()
    problem.add("whole", 10)
    problem.add("part", 4)
    problem.equations.append(Equation.total("whole", ["part"]))
    with pytest.raises(DisclosureError, match="does not hold"):
        protect(problem, K)


SPEC = TableSpec(
    name="demo",
    title="Demo",
    dimension="category_code",
    counts=("takedowns", "within_sla", "breached", "exposed"),
    rates=(Rate("compliance_rate", "within_sla", "takedowns"),),
    quantiles=(
        Quantile("median_exposure_minutes", 0.5, "exposed"),
        Quantile("p90_exposure_minutes", 0.9, "exposed"),
    ),
    identities=(("takedowns", ("within_sla", "breached")),),
)


def _demo_table(rows: dict[str, tuple[int, int, int]]) -> TableData:
    period = Period(date(2025, 1, 6), date(2025, 1, 12), "week")
    table = TableData(spec=SPEC, periods=[period], groups=list(rows))
    for group, (within, breached, exposed) in {
        **rows,
        ALL: tuple(sum(v[i] for v in rows.values()) for i in range(3)),
    }.items():
        table.values[(period.label, group)] = {
            "takedowns": within + breached,
            "within_sla": within,
            "breached": breached,
            "exposed": exposed,
            "median_exposure_minutes": 12.34,
            "p90_exposure_minutes": 56.78,
        }
    return table


def test_rates_and_quantiles_follow_their_counts():
    """A rate is withheld with its numerator (rate x takedowns = within_sla); a median needs
    k units, a 90th percentile 5k (so it never shows the few longest exposures)."""
    tables, _ = protect_tables(
        [_demo_table({"a": (95, 2, 60), "b": (80, 30, 12), "c": (70, 40, 9), "d": (300, 60, 120)})],
        K,
    )
    t = tables[0]
    label = t.data.periods[0].label
    assert t.cell(label, "a", "breached").status == "suppressed"
    assert t.cell(label, "a", "compliance_rate").status == "suppressed"
    shown = 0
    for group in t.data.row_groups:
        rate = t.cell(label, group, "compliance_rate")
        within, takedowns = (t.cell(label, group, m) for m in ("within_sla", "takedowns"))
        assert rate.published == (within.published and takedowns.published)
        if rate.published:
            assert rate.value == round(within.value / takedowns.value, 4)
            shown += 1
    assert shown  # the rule is exercised both ways
    assert t.cell(label, "c", "median_exposure_minutes").status == "suppressed"  # 9 units
    assert t.cell(label, "d", "median_exposure_minutes").value == 12.3
    assert t.cell(label, "d", "p90_exposure_minutes").value == 56.8  # 120 units >= 50
    assert t.cell(label, "b", "p90_exposure_minutes").status == "suppressed"  # 12 < 50
    for row in t.rows():
        hidden = set(filter(None, row["suppressed"].split("|")))
        for measure in t.data.measures:
            assert (row[measure] is None) == (measure in hidden)
