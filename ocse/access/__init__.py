"""Dashboard accounts, roles and the access log (see `roles.py` for the page matrix)."""

from ocse.access.roles import PAGE_ACCESS, ROLES, Role, may_view, pages_for, sees_individuals
from ocse.access.store import AccessEntry, AccessStore, AccessStoreError, User, access_store

__all__ = [
    "PAGE_ACCESS",
    "ROLES",
    "AccessEntry",
    "AccessStore",
    "AccessStoreError",
    "Role",
    "User",
    "access_store",
    "may_view",
    "pages_for",
    "sees_individuals",
]
