with

quarantine as not materialized (

    select * from {{ source('ingest', 'quarantine') }}

),

final as (

    select
        feed,
        file_id,
        file_name,
        row_number,
        reason_codes,
        record,
        quarantined_at

    from quarantine

)

select * from final
