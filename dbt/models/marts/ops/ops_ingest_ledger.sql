with

ledger as not materialized (

    select * from {{ ref('stg_ingest__ledger') }}

),

final as (

    select
        file_id,
        file_name,
        feed,
        content_sha256,
        outcome,
        rows_read,
        rows_loaded,
        rows_quarantined,
        columns_dropped,
        dropped_column_names,
        error,
        duplicate_of_file_id,
        received_at,
        ingested_at,
        size_bytes,
        supersedes_file_id,
        replay_of_file_id

    from ledger

)

select * from final
