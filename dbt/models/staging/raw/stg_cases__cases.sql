-- Current state of each case as of T (see macro current_version).
{{ config(unique_key='case_id') }}

with

source as not materialized (

    select * from {{ ref('base_raw__cases') }}

),

current_version as (

    {{ current_version('source', 'case_id') }}

),

final as (

    select
        case_id,
        opened_at,
        category_code,
        subject_user_id_ref,
        action_id,
        victims_count,
        youngest_victim_age_band,
        confirmed_at,
        referred_at,
        authority_type,
        authority_accepted_at,
        outcome,
        victim_support,
        support_types,
        closed_at,
        updated_at,
        _file_id as source_file_id,
        _row_number as source_row_number,
        _staged_as_of,
        _staged_through_file_id

    from current_version

)

select * from final
