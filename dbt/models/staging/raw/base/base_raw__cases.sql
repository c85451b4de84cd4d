-- Every version of every cases record, as the gate loaded it (raw history,
-- append-only): the one reader of the source. Staging keeps each record's current
-- version; change detection (int_changed_entities) and the quarantine mart (replays)
-- need every version.
with

source as not materialized (

    select * from {{ source('raw', 'cases') }}

),

final as (

    select * from source

)

select * from final
