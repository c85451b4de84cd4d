-- One row per report received by T, its state at T and its two SLA clocks
-- (acknowledgement, resolution), judged under the policy in force when it was received.
with

reports as not materialized (

    select * from {{ ref('int_reports_known_at_t') }}

),

sla_targets as not materialized (

    select * from {{ ref('int_policy_sla_targets') }}

),

with_targets as (

    select
        reports.*,
        ack.target_minutes as ack_target_minutes,
        resolution.target_minutes as resolution_target_minutes,
        ack.policy_version

    from reports
    left join sla_targets as ack
        on ack.clock = 'report_acknowledgement'
        and reports.category_code = ack.category_code
        and reports.received_at >= ack.valid_from
        and (ack.valid_to is null or reports.received_at < ack.valid_to)
    left join sla_targets as resolution
        on resolution.clock = 'report_resolution'
        and reports.category_code = resolution.category_code
        and reports.received_at >= resolution.valid_from
        and (resolution.valid_to is null or reports.received_at < resolution.valid_to)

),

final as (

    select
        report_id,
        received_at,
        channel,
        reporter_type,
        content_id,
        reported_user_id_ref as reported_user_ref,
        category_code,
        acknowledged_at,
        resolved_at,
        resolution,
        feedback_sent_at,
        {{ minutes_between('received_at', 'acknowledged_at') }} as minutes_to_acknowledge,
        {{ minutes_between('received_at', 'resolved_at') }} as minutes_to_resolve,
        ack_target_minutes,
        resolution_target_minutes,
        {{ is_within_target('received_at', 'acknowledged_at', 'ack_target_minutes') }}
            as is_ack_within_target,
        {{ is_within_target('received_at', 'resolved_at', 'resolution_target_minutes') }}
            as is_resolution_within_target,
        policy_version,
        {{ local_date('received_at') }} as report_date

    from with_targets

)

select * from final
