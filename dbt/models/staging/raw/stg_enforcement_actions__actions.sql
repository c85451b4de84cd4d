-- Current state of each enforcement action as of T (see macro current_version).
{{ config(unique_key='action_id') }}

with

source as not materialized (

    select * from {{ ref('base_raw__enforcement_actions') }}

),

current_version as (

    {{ current_version('source', 'action_id') }}

),

final as (

    select
        action_id,
        content_id,
        user_id_ref,
        category_code,
        action_type,
        trigger,
        hit_id,
        report_id,
        posted_at,
        detected_at,
        actioned_at,
        evidence_preserved_at,
        evidence_ref,
        reversed_at,
        updated_at,
        _file_id as source_file_id,
        _row_number as source_row_number,
        _staged_as_of,
        _staged_through_file_id

    from current_version

)

select * from final
