-- Current state of each report as of T (see macro current_version).
{{ config(unique_key='report_id') }}

with

source as not materialized (

    select * from {{ ref('base_raw__reports') }}

),

current_version as (

    {{ current_version('source', 'report_id') }}

),

final as (

    select
        report_id,
        received_at,
        channel,
        reporter_type,
        reporter_id_ref,
        content_id,
        reported_user_id_ref,
        category_code,
        acknowledged_at,
        resolved_at,
        resolution,
        feedback_sent_at,
        updated_at,
        _file_id as source_file_id,
        _row_number as source_row_number,
        _staged_as_of,
        _staged_through_file_id

    from current_version

)

select * from final
