-- Report handling per day received (reporting time zone), channel and category.
with

reports as not materialized (

    select * from {{ ref('fct_reports') }}

),

final as (

    select
        report_date,
        channel,
        category_code,
        count(*) as received,
        count(is_ack_within_target) as ack_decided,
        count(*) filter (where is_ack_within_target) as ack_on_time,
        {{ safe_rate(
            'count(*) filter (where is_ack_within_target)', 'count(is_ack_within_target)'
        ) }} as ack_compliance_rate,
        count(is_resolution_within_target) as resolution_decided,
        count(*) filter (where is_resolution_within_target) as resolution_on_time,
        {{ safe_rate(
            'count(*) filter (where is_resolution_within_target)',
            'count(is_resolution_within_target)'
        ) }} as resolution_compliance_rate,
        count(resolved_at) as resolved,
        count(*) filter (where resolved_at is not null and feedback_sent_at is not null)
            as feedback_sent,
        {{ safe_rate(
            'count(*) filter (where resolved_at is not null and feedback_sent_at is not null)',
            'count(resolved_at)'
        ) }} as feedback_rate

    from reports
    group by report_date, channel, category_code

)

select * from final
