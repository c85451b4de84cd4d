-- Every file: rows read = rows loaded + rows quarantined (feeds.md). Returns the files that break it.
select file_id, file_name, rows_read, rows_loaded, rows_quarantined
from {{ ref('ops_ingest_ledger') }}
where rows_read <> rows_loaded + rows_quarantined
