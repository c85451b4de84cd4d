"""Who may see what: the roles and the page matrix.

One table decides every page's audience, so the matrix in the README, the navigation a
user is offered and the server-side check each page runs before its first query cannot
disagree. A page not listed for a role is refused, whatever URL is typed.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    LEADERSHIP = "leadership"  # the OCSE prevention committee: everything at a glance
    ASSESSOR = "assessor"  # external assessment panel: metrics and method, no individuals
    RESEARCHER = "researcher"  # research partners: anonymised, disclosure-controlled aggregates
    OPERATIONS = "operations"  # trust & safety operations: queues, offenders, pipeline
    ADMIN = "admin"  # runs the platform: everything, plus the access log
    # A wall screen showing the operations queue: that page only, read-only, no
    # individual-level columns, no idle limit (dashboards/views/operations_queue.py).
    DISPLAY = "display"


ROLES: tuple[str, ...] = tuple(role.value for role in Role)

# Roles that may see pseudonymous user references (and content, report and case ids).
SEES_INDIVIDUALS: frozenset[Role] = frozenset({Role.OPERATIONS, Role.ADMIN})

_EVERYONE = frozenset(Role) - {Role.DISPLAY}
_GOVERNANCE = frozenset({Role.LEADERSHIP, Role.ASSESSOR, Role.OPERATIONS, Role.ADMIN})
_OPERATORS = SEES_INDIVIDUALS

# page id -> roles allowed. Page ids are stable: they appear in URLs and the access log.
PAGE_ACCESS: dict[str, frozenset[Role]] = {
    "overview": _GOVERNANCE,
    "sla": _GOVERNANCE,
    "trends": _GOVERNANCE,
    "offenders": _GOVERNANCE,  # individuals only for SEES_INDIVIDUALS; counts for the rest
    "cases": _GOVERNANCE,
    "operations_queue": _OPERATORS | {Role.DISPLAY},
    "pipeline_health": _OPERATORS,
    "research": frozenset({Role.RESEARCHER, Role.ADMIN}),
    "methodology": _EVERYONE,
    "access_log": frozenset({Role.ADMIN}),
}


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValueError(f"unknown role {value!r}; roles are: {', '.join(ROLES)}") from None


def may_view(role: Role | str, page_id: str) -> bool:
    """Unknown pages and unknown roles are refused."""
    try:
        role = Role(role)
    except ValueError:
        return False
    return role in PAGE_ACCESS.get(page_id, frozenset())


def sees_individuals(role: Role | str) -> bool:
    try:
        return Role(role) in SEES_INDIVIDUALS
    except ValueError:
        return False


def pages_for(role: Role | str) -> list[str]:
    return [page for page in PAGE_ACCESS if may_view(role, page)]
