"""An attacker, written independently of `ocse.exports.disclosure`: given published cells,
the equations a reader can write and the withheld cells, which withheld values come out?

- `linear_recoveries`: exact rational Gaussian elimination (fractions, no floating point):
  a withheld cell is recoverable iff its unit vector lies in the row space of the
  equations restricted to the withheld cells (then the published cells give its value).
- `integer_recoveries`: the stronger reader who also knows counts are non-negative
  integers and that some counts are parts of others: for every withheld cell, its minimum
  and maximum over all such solutions (scipy's MILP); equal bounds = recovered.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import numpy as np

# An equation: list of (cell, coefficient) summing to zero.
Equation = list[tuple[object, int]]


def _components(equations: list[Equation], withheld: set) -> list[list]:
    parent = {cell: cell for cell in withheld}

    def find(cell):
        while parent[cell] != cell:
            cell = parent[cell]
        return cell

    for eq in equations:
        cells = [c for c, _ in eq if c in withheld]
        for other in cells[1:]:
            a, b = find(cells[0]), find(other)
            if a != b:
                parent[b] = a
    groups = defaultdict(list)
    for cell in withheld:
        groups[find(cell)].append(cell)
    return list(groups.values())


def linear_recoveries(
    equations: list[Equation], published: dict, withheld: dict
) -> dict[object, Fraction]:
    """Withheld cells whose value the equations determine, with the value they give."""
    recovered: dict[object, Fraction] = {}
    for members in _components(equations, set(withheld)):
        index = {cell: i for i, cell in enumerate(members)}
        rows = []
        for eq in equations:
            if not any(c in index for c, _ in eq):
                continue
            row = [Fraction(0)] * (len(members) + 1)
            for cell, coef in eq:
                if cell in index:
                    row[index[cell]] += coef
                else:
                    row[-1] -= coef * published[cell]
            rows.append(row)
        pivots = _rref(rows, len(members))
        for column, row in pivots.items():
            if all(row[j] == 0 for j in range(len(members)) if j != column):
                recovered[members[column]] = row[-1]
    return recovered


def _rref(rows: list[list[Fraction]], width: int) -> dict[int, list[Fraction]]:
    rows = [r[:] for r in rows]
    pivots: dict[int, list[Fraction]] = {}
    r = 0
    for column in range(width):
        pivot = next((i for i in range(r, len(rows)) if rows[i][column] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][column]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][column] != 0:
                factor = rows[i][column]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[r], strict=True)]
        r += 1
    for row in rows[:r]:
        column = next(j for j in range(width) if row[j] != 0)
        pivots[column] = row
    return pivots


def integer_recoveries(
    equations: list[Equation],
    published: dict,
    withheld: dict,
    subsets: list[tuple[object, object]] = (),
) -> dict[object, int]:
    """Withheld cells with a single value over all non-negative integer solutions."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    recovered = {}
    for members in _components(
        [*equations, *([(a, 1), (b, -1)] for a, b in subsets)], set(withheld)
    ):
        index = {cell: i for i, cell in enumerate(members)}
        eq_rows, eq_rhs, le_rows, le_rhs = [], [], [], []
        for eq in equations:
            if any(c in index for c, _ in eq):
                row, rhs = np.zeros(len(members)), 0.0
                for cell, coef in eq:
                    if cell in index:
                        row[index[cell]] += coef
                    else:
                        rhs -= coef * published[cell]
                eq_rows.append(row)
                eq_rhs.append(rhs)
        for part, whole in subsets:
            if part in index or whole in index:
                row, rhs = np.zeros(len(members)), 0.0
                for cell, sign in ((part, 1), (whole, -1)):
                    if cell in index:
                        row[index[cell]] += sign
                    else:
                        rhs -= sign * published[cell]
                le_rows.append(row)
                le_rhs.append(rhs)
        if not eq_rows and not le_rows:
            continue
        constraints = []
        if eq_rows:
            constraints.append(LinearConstraint(np.array(eq_rows), eq_rhs, eq_rhs))
        if le_rows:
            constraints.append(LinearConstraint(np.array(le_rows), -np.inf, le_rhs))
        bounds = Bounds(0, 1e9)
        for cell, i in index.items():
            values = []
            for sign in (1, -1):
                objective = np.zeros(len(members))
                objective[i] = sign
                result = milp(
                    objective,
                    constraints=constraints,
                    bounds=bounds,
                    integrality=np.ones(len(members)),
                )
                assert result.success, result.message  # the truth is a solution
                values.append(round(result.x[i]))
            if values[0] == values[1]:
                recovered[cell] = values[0]
    return recovered
