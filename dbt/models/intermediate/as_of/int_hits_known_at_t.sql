-- Hits as they stood at T: detected by T; a review (or a posting) timestamped after T has
-- not happened yet, so the hit is still pending (or not yet visible) at T.
with

hits as not materialized (

    select * from {{ ref('stg_screening_hits__hits') }}

),

final as (

    select
        hit_id,
        content_id,
        content_type,
        uploader_id_ref,
        case when posted_at <= {{ as_of() }} then posted_at end as posted_at,
        detected_at,
        detection_method,
        matched_list,
        score,
        category_code,
        case
            when reviewed_at <= {{ as_of() }} then review_status
            else 'pending'
        end as review_status,
        case when reviewed_at <= {{ as_of() }} then reviewed_at end as reviewed_at,
        case when reviewed_at <= {{ as_of() }} then reviewer_id_ref end as reviewer_id_ref

    from hits
    where detected_at <= {{ as_of() }}

)

select * from final
