-- Current state of each hit as of T (see macro current_version).
{{ config(unique_key='hit_id') }}

with

source as not materialized (

    select * from {{ ref('base_raw__screening_hits') }}

),

current_version as (

    {{ current_version('source', 'hit_id') }}

),

final as (

    select
        hit_id,
        content_id,
        content_type,
        uploader_id_ref,
        posted_at,
        detected_at,
        detection_method,
        matched_list,
        score,
        category_code,
        review_status,
        reviewed_at,
        reviewer_id_ref,
        updated_at,
        _file_id as source_file_id,
        _row_number as source_row_number,
        _staged_as_of,
        _staged_through_file_id

    from current_version

)

select * from final
