-- Reports received by T, as they stood at T: an acknowledgement, resolution or feedback
-- timestamped after T has not happened yet, so the report is still pending at T.
with

reports as not materialized (

    select * from {{ ref('stg_reports__reports') }}

),

final as (

    select
        report_id,
        received_at,
        channel,
        reporter_type,
        content_id,
        reported_user_id_ref,
        category_code,
        case when acknowledged_at <= {{ as_of() }} then acknowledged_at end as acknowledged_at,
        case when resolved_at <= {{ as_of() }} then resolved_at end as resolved_at,
        case when resolved_at <= {{ as_of() }} then resolution else 'pending' end as resolution,
        case
            when resolved_at <= {{ as_of() }} and feedback_sent_at <= {{ as_of() }}
                then feedback_sent_at
        end as feedback_sent_at

    from reports
    where received_at <= {{ as_of() }}

)

select * from final
