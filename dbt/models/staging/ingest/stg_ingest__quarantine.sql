-- The gate's quarantine of refused rows, as written: the one reader of the source.
with

quarantine as not materialized (

    select * from {{ source('ingest', 'quarantine') }}

),

final as (

    select * from quarantine

)

select * from final
