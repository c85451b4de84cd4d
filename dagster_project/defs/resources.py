"""The warehouse resource shared by every asset: settings, connections, the run's as-of time."""

from datetime import UTC, datetime

import dagster as dg
import duckdb

from ocse.pseudonymise import PseudonymKey
from ocse.settings import OcseSettings, get_settings
from ocse.warehouse import connect

AS_OF_TAG = "ocse/as_of"
# Run tag: rebuild the incremental staging models from raw history ("true").
FULL_REFRESH_TAG = "ocse/full_refresh"


class WarehouseResource(dg.ConfigurableResource):
    """Reads OcseSettings from the environment (the same variables dbt's profile reads)."""

    @property
    def settings(self) -> OcseSettings:
        return get_settings()

    def connect(self) -> duckdb.DuckDBPyConnection:
        return connect(self.settings.warehouse)

    def pseudonym_key(self) -> PseudonymKey:
        settings = self.settings
        return PseudonymKey.from_secret(settings.key_bytes, settings.pseudonym_key_version)

    def as_of(self, context: dg.OpExecutionContext | dg.AssetCheckExecutionContext) -> datetime:
        """T for this run: the run's `ocse/as_of` tag, else OCSE_AS_OF, else when the run was
        created, so that every asset of one run sees the same T."""
        tag = context.run.tags.get(AS_OF_TAG)
        if tag:
            return datetime.fromisoformat(tag).astimezone(UTC)
        if self.settings.as_of:
            return self.settings.resolved_as_of()
        record = context.instance.get_run_record_by_id(context.run.run_id)
        created = record.create_timestamp if record else datetime.now(UTC)
        return created.astimezone(UTC).replace(microsecond=0)

    def staged_as_of(self) -> datetime | None:
        """The latest T the incremental staging models were built at (None before the first
        build). A run at an earlier T must rebuild them in full. A staging table from before
        staging was incremental (no watermark column) reads as the end of time, which forces
        that rebuild too."""
        conn = self.connect()
        try:
            staged = conn.execute(
                "select table_name, list(column_name) from information_schema.columns "
                "where table_schema = 'staging' and table_name like 'stg_%' group by 1"
            ).fetchall()
            latest = None
            for table, columns in staged:
                if "_staged_as_of" not in columns:
                    return datetime.max.replace(tzinfo=UTC)
                (value,) = conn.execute(
                    f'select max(_staged_as_of) from staging."{table}"'
                ).fetchone()
                if value is not None and (latest is None or value > latest):
                    latest = value
            return latest
        finally:
            conn.close()
