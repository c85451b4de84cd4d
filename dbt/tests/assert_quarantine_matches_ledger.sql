-- The quarantine itemises exactly the rows the ledger says were quarantined (rejected files
-- are quarantined whole and not itemised). Returns the files where the two disagree.
with

itemised as (
    select file_id, count(*) as rows_itemised
    from {{ ref('ops_quarantine') }}
    group by file_id
)

select ledger.file_id, ledger.rows_quarantined, coalesce(itemised.rows_itemised, 0) as rows_itemised
from {{ ref('ops_ingest_ledger') }} as ledger
left join itemised using (file_id)
where ledger.outcome <> 'rejected'
  and ledger.rows_quarantined <> coalesce(itemised.rows_itemised, 0)
