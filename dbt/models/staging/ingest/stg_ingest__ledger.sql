-- The gate's ledger of landed files, as written: the one reader of the source.
with

ledger as not materialized (

    select * from {{ source('ingest', 'ledger') }}

),

final as (

    select * from ledger

)

select * from final
