"""Published aggregate tables and their joint disclosure control.

A table is periods x groups (categories, detection methods, ...) x measures: counts, rates
over two of its counts, and quantiles over a count of units. Each period also has a row for
every subtotal (e.g. CSAM = both CSAM categories) and for all groups together.

What a reader can write down, and so what `disclosure.protect` must defend against:
- per period and count measure: `all = sum(groups)`, `subtotal = sum(members)`;
- per row: the table's identities (`takedowns = within_sla + breached`) and subset
  relations (`proactive_takedowns <= takedowns`);
- across tables: the same quantity is one cell (the reports received in a week are the
  same number in the trends table and in the report-handling table), so it is suppressed
  everywhere or nowhere.
There are deliberately no totals over several periods: each period is protected on its
own, so every export (of any date range) shows the same cells for the same period and two
exports cannot be subtracted from each other.

Rates are published only when their numerator and denominator are (a rate times its
published denominator is its numerator). A quantile q over n units is published only when
its unit count is published and at least k/2 units lie on each side of it
(n * min(q, 1 - q) >= k / 2): for the median that is n >= k; a 90th percentile needs 5k
units, so it never describes the few most extreme cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ocse.exports.disclosure import Equation, Problem, Protection, protect
from ocse.exports.periods import Period

ALL = "all"
RATE_DECIMALS = 4
QUANTILE_DECIMALS = 1


@dataclass(frozen=True)
class Rate:
    name: str
    numerator: str
    denominator: str


@dataclass(frozen=True)
class Quantile:
    name: str
    q: float
    units: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    dimension: str  # the breakdown column: category_code, detection_method, ...
    counts: tuple[str, ...]
    rates: tuple[Rate, ...] = ()
    quantiles: tuple[Quantile, ...] = ()
    # whole = sum(parts), in every row
    identities: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (part, whole): part <= whole, in every row
    subsets: tuple[tuple[str, str], ...] = ()
    # (magnitude, units): a magnitude needs at least k units behind it
    contributors: tuple[tuple[str, str], ...] = ()
    # measure -> the quantity's name across tables (same name = same cell)
    shared: tuple[tuple[str, str], ...] = ()
    # (group, measure) cells that cannot exist (no takedown is `unclassified`)
    not_applicable: tuple[tuple[str, str], ...] = ()
    # measures not computable for the subtotal and all rows (medians of a weekly mart)
    only_for_groups: tuple[str, ...] = ()
    source: tuple[str, ...] = ()  # the marts it is computed from
    description: str = ""

    @property
    def measures(self) -> list[str]:
        return [*self.counts, *(r.name for r in self.rates), *(q.name for q in self.quantiles)]

    def variable(self, measure: str) -> str:
        return dict(self.shared).get(measure, measure)


@dataclass
class TableData:
    """Unprotected values of one table: never written anywhere as they are."""

    spec: TableSpec
    periods: list[Period]
    groups: list[str]
    subtotals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (period label, group or subtotal or ALL) -> measure -> value
    values: dict[tuple[str, str], dict[str, float | int | None]] = field(default_factory=dict)
    drop_measures: tuple[str, ...] = ()  # measures this grain cannot give (documented)

    @property
    def row_groups(self) -> list[str]:
        return [*self.groups, *self.subtotals, ALL]

    @property
    def measures(self) -> list[str]:
        return [m for m in self.spec.measures if m not in self.drop_measures]

    @property
    def counts(self) -> list[str]:
        return [m for m in self.spec.counts if m not in self.drop_measures]

    def applicable(self, group: str, measure: str) -> bool:
        if measure in self.drop_measures:
            return False
        if (group, measure) in self.spec.not_applicable:
            return False
        return not (group not in self.groups and measure in self.spec.only_for_groups)

    def key(self, period: Period, group: str, measure: str) -> tuple:
        """The cell's identity across tables (the ALL row of a quantity is one cell whatever
        the breakdown: total confirmed hits by category and by detection method)."""
        dimension = "*" if group == ALL else self.spec.dimension
        return (self.spec.variable(measure), period.grain, period.label, dimension, group)


@dataclass(frozen=True)
class Cell:
    value: float | int | None
    status: str  # "published", "suppressed", "n/a"

    @property
    def published(self) -> bool:
        return self.status == "published"


@dataclass
class ProtectedTable:
    spec: TableSpec
    data: TableData
    cells: dict[tuple[str, str, str], Cell]  # (period label, group, measure) -> cell
    k: int

    @property
    def name(self) -> str:
        return self.spec.name

    def cell(self, period: Period | str, group: str, measure: str) -> Cell:
        label = period.label if isinstance(period, Period) else period
        return self.cells[(label, group, measure)]

    @property
    def suppressed_cells(self) -> int:
        return sum(1 for c in self.cells.values() if c.status == "suppressed")

    @property
    def published_cells(self) -> int:
        return sum(1 for c in self.cells.values() if c.status == "published")

    def columns(self) -> list[str]:
        return [
            "period_start",
            "period_end",
            self.spec.dimension,
            *self.data.measures,
            "suppressed",
        ]

    def rows(self) -> list[dict]:
        """The table as published: suppressed cells are null and named in `suppressed`."""
        out = []
        for period in self.data.periods:
            for group in self.data.row_groups:
                row: dict = {
                    "period_start": period.start,
                    "period_end": period.end,
                    self.spec.dimension: group,
                }
                hidden = []
                for measure in self.data.measures:
                    cell = self.cell(period, group, measure)
                    row[measure] = cell.value if cell.published else None
                    if cell.status == "suppressed":
                        hidden.append(measure)
                row["suppressed"] = "|".join(hidden)
                out.append(row)
        return out


def build_problem(tables: list[TableData]) -> Problem:
    problem = Problem()
    for table in tables:
        spec = table.spec
        counts = table.counts
        for period in table.periods:
            for group in table.row_groups:
                row = table.values[(period.label, group)]
                for measure in counts:
                    if table.applicable(group, measure):
                        problem.add(table.key(period, group, measure), int(row[measure]))
            for measure in counts:
                members = [g for g in table.groups if table.applicable(g, measure)]
                if not table.applicable(ALL, measure):
                    continue
                problem.equations.append(
                    Equation.total(
                        table.key(period, ALL, measure),
                        [table.key(period, g, measure) for g in members],
                    )
                )
                for subtotal, parts in table.subtotals.items():
                    problem.equations.append(
                        Equation.total(
                            table.key(period, subtotal, measure),
                            [
                                table.key(period, g, measure)
                                for g in parts
                                if table.applicable(g, measure)
                            ],
                        )
                    )
            for group in table.row_groups:
                cell = lambda m, g=group, p=period, t=table: t.key(p, g, m)  # noqa: E731
                for whole, parts in spec.identities:
                    if all(table.applicable(group, m) for m in (whole, *parts)):
                        problem.equations.append(Equation.total(cell(whole), map(cell, parts)))
                for part, whole in spec.subsets:
                    if table.applicable(group, part) and table.applicable(group, whole):
                        problem.subsets.append((cell(part), cell(whole)))
                for magnitude, units in spec.contributors:
                    if table.applicable(group, magnitude) and table.applicable(group, units):
                        problem.contributors[cell(magnitude)] = cell(units)
    return problem


def protect_tables(tables: list[TableData], k: int) -> tuple[list[ProtectedTable], Protection]:
    """Protect every table of one publication together (shared cells are one cell)."""
    problem = build_problem(tables)
    protection = protect(problem, k)
    protected = []
    for table in tables:
        cells: dict[tuple[str, str, str], Cell] = {}
        for period in table.periods:
            for group in table.row_groups:
                row = table.values[(period.label, group)]

                def count_cell(
                    measure: str, row=row, period=period, group=group, table=table
                ) -> Cell:
                    if not table.applicable(group, measure):
                        return Cell(None, "n/a")
                    if protection.is_published(table.key(period, group, measure)):
                        return Cell(int(row[measure]), "published")
                    return Cell(None, "suppressed")

                for measure in table.counts:
                    cells[(period.label, group, measure)] = count_cell(measure)
                for rate in table.spec.rates:
                    if rate.name in table.drop_measures:
                        continue
                    num, den = count_cell(rate.numerator), count_cell(rate.denominator)
                    if not table.applicable(group, rate.name) or "n/a" in (
                        num.status,
                        den.status,
                    ):
                        cell = Cell(None, "n/a")
                    elif num.published and den.published and den.value:
                        cell = Cell(round(num.value / den.value, RATE_DECIMALS), "published")
                    else:
                        cell = Cell(None, "suppressed")
                    cells[(period.label, group, rate.name)] = cell
                for quantile in table.spec.quantiles:
                    if quantile.name in table.drop_measures:
                        continue
                    units = count_cell(quantile.units)
                    value = row.get(quantile.name)
                    if not table.applicable(group, quantile.name):
                        cell = Cell(None, "n/a")
                    elif (
                        units.published
                        and value is not None
                        and units.value * min(quantile.q, 1 - quantile.q) >= k / 2 - 1e-9
                    ):
                        cell = Cell(round(float(value), QUANTILE_DECIMALS), "published")
                    else:
                        cell = Cell(None, "suppressed")
                    cells[(period.label, group, quantile.name)] = cell
        protected.append(ProtectedTable(spec=table.spec, data=table, cells=cells, k=k))
    return protected, protection


def empty_row(spec: TableSpec) -> dict[str, float | int | None]:
    return {**dict.fromkeys(spec.counts, 0), **{q.name: None for q in spec.quantiles}}
