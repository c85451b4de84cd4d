"""The dbt CLI resource, without the in-process dbt adapter dagster-dbt sets up per call."""

from dagster_dbt import DbtCliResource


class OcseDbtCliResource(DbtCliResource):
    """dagster-dbt builds a dbt adapter inside the run process before every `dbt` call
    (loading the profile, the adapter plugin and the manifest: seconds on each run) only to
    fetch column metadata and row counts afterwards, which this project never asks for. The
    dbt subprocess does the work either way; without the handle nothing else changes."""

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - dagster-dbt's signature
        return None
