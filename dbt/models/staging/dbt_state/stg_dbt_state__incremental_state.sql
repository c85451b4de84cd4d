-- The watermarks of the models maintained incrementally by entity, as their post-hooks
-- wrote them (macros/incremental_changes.sql reads this view: changes_mode, the oldest
-- watermark of int_changed_entities).
with

state as not materialized (

    select * from {{ source('dbt_state', 'incremental_state') }}

),

final as (

    select
        model,
        built_as_of,
        built_through_file_id,
        fingerprint

    from state

)

select * from final
