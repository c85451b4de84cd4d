"""Dashboard accounts, roles, the access log (see `roles.py` for the page matrix) and the
release register of research partners (`releases.py`)."""

from ocse.access.releases import (
    CHANNELS,
    REASONS,
    RELEASE_GRAINS,
    Partner,
    Release,
    ReleaseRefused,
    ReleaseRegister,
    ReleaseRegisterError,
    release_register,
)
from ocse.access.roles import PAGE_ACCESS, ROLES, Role, may_view, pages_for, sees_individuals
from ocse.access.store import AccessEntry, AccessStore, AccessStoreError, User, access_store

__all__ = [
    "CHANNELS",
    "PAGE_ACCESS",
    "REASONS",
    "RELEASE_GRAINS",
    "ROLES",
    "AccessEntry",
    "AccessStore",
    "AccessStoreError",
    "Partner",
    "Release",
    "ReleaseRefused",
    "ReleaseRegister",
    "ReleaseRegisterError",
    "Role",
    "User",
    "access_store",
    "may_view",
    "pages_for",
    "release_register",
    "sees_individuals",
]
