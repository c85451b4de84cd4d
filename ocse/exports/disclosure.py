"""Statistical disclosure control for published counts: primary and complementary suppression.

Everything the warehouse publishes outside the platform (research exports, the assessment
report) is a set of count cells tied together by equations anyone can write down: a row
total is the sum of its cells, `takedowns = within_sla + breached`, a total shared by two
tables is one number. A reader who holds the published cells can solve those equations, so
hiding a small cell is not enough: the cells around it must hide it too.

The rules (README, "Research exports and the assessment report"):

1. **Primary**: every count below k is suppressed, zeros included (a published zero says
   "nobody", which is itself a disclosure about a small group). A magnitude (victims) is
   also suppressed when fewer than k units (cases) contribute to it.
2. **Complementary**, repeated until nothing changes:
   - an equation with exactly one suppressed cell would give it away: suppress the
     published cell of that equation with the smallest value (ties: the key's order);
   - an equation whose suppressed cells all sit on the same side reveals their sum: when
     that sum is below k (a hidden group of fewer than k, or a pair of hidden zeros),
     suppress one more of its cells the same way;
   - an attack: for every suppressed cell, search for another non-negative integer
     solution of all the published equations and subset relations (`part <= whole`) in
     which the cell takes a different value. A cell with no such solution is exactly
     recoverable: suppress the smallest published cell of an equation it is in, and start
     again.
3. Rates and quantiles are derived from the protected counts by the tables that publish
   them (`tables.py`): a rate only when its numerator and denominator are both published, a
   quantile only when its unit count is.

Deterministic: the same cells, equations and k give the same suppression pattern.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np

Key = Hashable

# The floor no setting, flag or caller can go below.
MIN_K = 5
DEFAULT_K = 10


class DisclosureError(ValueError):
    """A disclosure-control problem that must stop the publication (message says why)."""


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise DisclosureError(f"the threshold k must be an integer, not {k!r}")
    if k < MIN_K:
        raise DisclosureError(
            f"the disclosure threshold k={k} is below the minimum of {MIN_K}: "
            "counts that small identify people"
        )
    return k


@dataclass(frozen=True)
class Equation:
    """sum(coefficient * value) == 0 over the cells named."""

    terms: tuple[tuple[Key, int], ...]

    @staticmethod
    def total(total: Key, parts: Iterable[Key]) -> Equation:
        """`total = sum(parts)`."""
        return Equation(((total, 1), *((part, -1) for part in parts)))

    def canonical(self) -> tuple[tuple[Key, int], ...]:
        terms = sorted(self.terms, key=lambda t: _order(t[0]))
        # An equation and its negation say the same thing.
        if terms and terms[0][1] < 0:
            terms = [(key, -coef) for key, coef in terms]
        return tuple(terms)


@dataclass
class Problem:
    """Count cells that are about to be published and what a reader knows relates them."""

    values: dict[Key, int] = field(default_factory=dict)
    equations: list[Equation] = field(default_factory=list)
    # (part, whole): part <= whole, known from the definitions (proactive <= takedowns).
    subsets: list[tuple[Key, Key]] = field(default_factory=list)
    # magnitude cell -> the count of units behind it (victims -> cases opened).
    contributors: dict[Key, Key] = field(default_factory=dict)

    def add(self, key: Key, value: int) -> None:
        value = int(value)
        if value < 0:
            raise DisclosureError(f"count {key!r} is negative ({value})")
        if key in self.values and self.values[key] != value:
            # The same quantity published twice must be one number, or the equations lie.
            raise DisclosureError(
                f"{key!r} is published with two values ({self.values[key]} and {value})"
            )
        self.values[key] = value

    def validate(self) -> None:
        """The equations and relations must hold on the data, else they are not what a reader
        can rely on, and the protection computed from them would be wrong."""
        for eq in self.equations:
            missing = [key for key, _ in eq.terms if key not in self.values]
            if missing:
                raise DisclosureError(f"equation over unknown cells {missing!r}")
            if sum(coef * self.values[key] for key, coef in eq.terms) != 0:
                raise DisclosureError(f"equation does not hold on the data: {eq.terms!r}")
        for part, whole in self.subsets:
            if self.values[part] > self.values[whole]:
                raise DisclosureError(f"{part!r} > {whole!r}, though declared a part of it")
        for cell, units in self.contributors.items():
            if cell not in self.values or units not in self.values:
                raise DisclosureError(f"contributor rule over unknown cells {cell!r}")


@dataclass(frozen=True)
class Protection:
    k: int
    suppressed: frozenset[Key]
    primary: frozenset[Key]

    def is_published(self, key: Key) -> bool:
        return key not in self.suppressed

    @property
    def complementary(self) -> frozenset[Key]:
        return self.suppressed - self.primary


def _order(key: Key) -> str:
    return repr(key)


def primary_suppression(problem: Problem, k: int) -> set[Key]:
    primary = {key for key, value in problem.values.items() if value < k}
    primary |= {cell for cell, units in problem.contributors.items() if problem.values[units] < k}
    return primary


def protect(problem: Problem, k: int = DEFAULT_K) -> Protection:
    """Primary and complementary suppression of `problem` at threshold k (see module doc)."""
    check_k(k)
    problem.validate()
    equations = _unique_equations(problem.equations)
    primary = primary_suppression(problem, k)
    suppressed = set(primary)
    # A component's verdict depends only on its members (the published cells around them
    # are fixed), so only components that grew are attacked again.
    verdicts: dict[frozenset, set[Key]] = {}
    while True:
        _apply_line_rules(problem.values, equations, suppressed, k)
        exposed = recoverable_cells(problem, suppressed, equations=equations, cache=verdicts)
        if not exposed:
            break
        for cell in sorted(exposed, key=_order):
            if cell in exposed and _suppress_next_to(cell, problem, equations, suppressed):
                break
        else:
            # Nothing left to suppress next to any exposed cell: only possible if the
            # equations pin a cell by themselves (a structural value), which no table has.
            raise DisclosureError(f"cannot protect {sorted(map(_order, exposed))[:3]}")
    return Protection(k=k, suppressed=frozenset(suppressed), primary=frozenset(primary))


def _unique_equations(equations: Iterable[Equation]) -> list[Equation]:
    seen: dict[tuple, Equation] = {}
    for eq in equations:
        seen.setdefault(eq.canonical(), Equation(eq.canonical()))
    return [seen[key] for key in sorted(seen, key=repr)]


def _smallest(values: dict[Key, int], keys: Iterable[Key]) -> Key | None:
    return min(keys, key=lambda key: (values[key], _order(key)), default=None)


def _apply_line_rules(
    values: dict[Key, int], equations: list[Equation], suppressed: set[Key], k: int
) -> None:
    changed = True
    while changed:
        changed = False
        for eq in equations:
            hidden = [(key, coef) for key, coef in eq.terms if key in suppressed]
            shown = [key for key, _ in eq.terms if key not in suppressed]
            if not hidden or not shown:
                continue
            alone = len(hidden) == 1
            same_side = len({coef > 0 for _, coef in hidden}) == 1
            small_group = same_side and sum(values[key] for key, _ in hidden) < k
            if alone or small_group:
                suppressed.add(_smallest(values, shown))
                changed = True


def _suppress_next_to(
    cell: Key, problem: Problem, equations: list[Equation], suppressed: set[Key]
) -> bool:
    """Suppress the smallest published cell of an equation (or relation) holding `cell`;
    failing that, of any equation connected to it."""
    near = {key for eq in equations if any(k == cell for k, _ in eq.terms) for key, _ in eq.terms}
    near |= {key for pair in problem.subsets if cell in pair for key in pair}
    candidate = _smallest(problem.values, near - suppressed)
    if candidate is None:
        component = _components(problem, equations, suppressed).get(cell, [cell])
        linked = {
            key
            for eq in equations
            if any(k in component for k, _ in eq.terms)
            for key, _ in eq.terms
        }
        candidate = _smallest(problem.values, linked - suppressed)
    if candidate is None:
        return False
    suppressed.add(candidate)
    return True


# --- the attack: which suppressed cells can a reader recover exactly? ---------------------


def _components(
    problem: Problem, equations: list[Equation], suppressed: set[Key]
) -> dict[Key, list[Key]]:
    """Suppressed cells grouped by the equations and relations that link them."""
    parent = {key: key for key in suppressed}

    def find(key: Key) -> Key:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(keys: list[Key]) -> None:
        roots = sorted({find(key) for key in keys}, key=_order)
        for root in roots[1:]:
            parent[root] = roots[0]

    for eq in equations:
        hidden = [key for key, _ in eq.terms if key in suppressed]
        if len(hidden) > 1:
            union(hidden)
    for part, whole in problem.subsets:
        if part in suppressed and whole in suppressed:
            union([part, whole])
    groups: dict[Key, list[Key]] = defaultdict(list)
    for key in sorted(suppressed, key=_order):
        groups[find(key)].append(key)
    return {key: members for members in groups.values() for key in members}


def recoverable_cells(
    problem: Problem,
    suppressed: set[Key],
    *,
    equations: list[Equation] | None = None,
    cache: dict[frozenset, set[Key]] | None = None,
) -> set[Key]:
    """The suppressed cells a reader could recover exactly from the published cells: those
    that take the same value in every non-negative integer solution of the published
    equations and subset relations."""
    equations = equations if equations is not None else _unique_equations(problem.equations)
    components = _components(problem, equations, suppressed)
    done: set[Key] = set()
    exposed: set[Key] = set()
    for cell in sorted(suppressed, key=_order):
        if cell in done:
            continue
        members = components[cell]
        done.update(members)
        signature = frozenset(members)
        if cache is not None and signature in cache:
            exposed |= cache[signature]
            continue
        pinned = _pinned_in_component(problem, equations, members, suppressed)
        if cache is not None:
            cache[signature] = pinned
        exposed |= pinned
    return exposed


def _component_system(
    problem: Problem, equations: list[Equation], members: list[Key], suppressed: set[Key]
):
    index = {key: i for i, key in enumerate(members)}
    rows, rhs = [], []
    for eq in equations:
        if not any(key in index for key, _ in eq.terms):
            continue
        row = np.zeros(len(members))
        constant = 0
        for key, coef in eq.terms:
            if key in index:
                row[index[key]] += coef
            else:
                constant -= coef * problem.values[key]
        rows.append(row)
        rhs.append(constant)
    ub_rows, ub_rhs = [], []
    for part, whole in problem.subsets:
        if part not in index and whole not in index:
            continue
        row = np.zeros(len(members))
        constant = 0
        if part in index:
            row[index[part]] += 1
        else:
            constant -= problem.values[part]
        if whole in index:
            row[index[whole]] -= 1
        else:
            constant += problem.values[whole]
        ub_rows.append(row)
        ub_rhs.append(constant)
    return index, rows, rhs, ub_rows, ub_rhs


def _pinned_in_component(
    problem: Problem, equations: list[Equation], members: list[Key], suppressed: set[Key]
) -> set[Key]:
    index, rows, rhs, ub_rows, ub_rhs = _component_system(problem, equations, members, suppressed)
    truth = np.array([problem.values[key] for key in members], dtype=float)
    if not rows and not ub_rows:
        return set()  # nothing relates these cells to anything published
    pinned: set[Key] = set()
    free = np.zeros(len(members), dtype=bool)
    if rows:
        a = np.array(rows)
        # x_i is fixed by A x = b exactly when no direction of A's null space moves it.
        _, singular, vh = np.linalg.svd(a)
        rank = int((singular > 1e-9 * max(1.0, singular.max(initial=0.0))).sum())
        null = vh[rank:].T
        linear = np.linalg.norm(null, axis=1) < 1e-9 if null.size else np.ones(len(members), bool)
        pinned |= {key for key, i in index.items() if linear[i]}
        free |= linear  # nothing more to learn about those
    else:
        linear = np.zeros(len(members), dtype=bool)
    undecided = [i for i in range(len(members)) if not free[i]]
    if not undecided:
        return pinned
    from scipy.optimize import Bounds, LinearConstraint, milp

    constraints = []
    if rows:
        constraints.append(LinearConstraint(np.array(rows), np.array(rhs), np.array(rhs)))
    if ub_rows:
        constraints.append(LinearConstraint(np.array(ub_rows), -np.inf, np.array(ub_rhs)))
    bounds = Bounds(np.zeros(len(members)), np.full(len(members), 1e9))
    integrality = np.ones(len(members))

    def solve(objective: np.ndarray) -> np.ndarray | None:
        result = milp(objective, constraints=constraints, bounds=bounds, integrality=integrality)
        return np.round(result.x) if result.x is not None else None

    moved = np.zeros(len(members), dtype=bool)
    # A few deterministic pseudo-random objectives usually show most cells can move.
    rng = np.random.default_rng(len(members))
    for _ in range(4):
        weights = rng.normal(size=len(members))
        for objective in (weights, -weights):
            x = solve(objective)
            if x is not None:
                moved |= np.abs(x - truth) > 0.5
    for i in undecided:
        if moved[i]:
            continue
        for sign in (1.0, -1.0):
            objective = np.zeros(len(members))
            objective[i] = sign
            x = solve(objective)
            if x is not None:
                moved |= np.abs(x - truth) > 0.5
            if moved[i]:
                break
        if not moved[i]:
            pinned.add(members[i])
    return pinned
