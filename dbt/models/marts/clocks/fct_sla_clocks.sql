-- Every SLA clock, decided or running at T: one row per (clock, subject_id). Decided clocks
-- come from the facts that judge them (fct_content_takedowns, fct_reports, fct_cases), the
-- takedown clocks still running from int_running_sla_clocks (the rules of
-- fct_open_sla_breaches), so compliance here is exactly the rpt_ marts' (dbt/tests/).
with

takedowns as not materialized (

    select * from {{ ref('fct_content_takedowns') }}

),

reports as not materialized (

    select * from {{ ref('fct_reports') }}

),

cases as not materialized (

    select * from {{ ref('fct_cases') }}

),

running_takedowns as not materialized (

    select * from {{ ref('int_running_sla_clocks') }}
    where clock = 'takedown'

),

actions as not materialized (

    select * from {{ ref('int_actions_known_at_t') }}

),

-- When a taken-down content's evidence was first preserved (by T), by any of its
-- qualifying actions: the time behind fct_content_takedowns.is_evidence_on_time.
evidence_preserved as (

    select
        content_id,
        min(evidence_preserved_at) as evidence_preserved_at

    from actions
    where is_qualifying
    group by content_id

),

-- One row per clock. met_at: when the event the clock waits for happened (takedown,
-- acknowledgement, resolution, referral, evidence preserved); stopped_at: when the clock
-- stopped (met_at, or the resolution of a report never acknowledged: metrics.md, Open
-- clocks); is_on_time: the verdict of the fact (null while not decided).
clocks as (

    select
        'takedown' as clock,
        content_id as subject_id,
        category_code,
        report_date,
        -- the clock started at posting (at detection when the content never went up)
        coalesce(posted_at, detected_at) as clock_started_at,
        taken_down_at as met_at,
        taken_down_at as stopped_at,
        sla_target_minutes as target_minutes,
        exposure_minutes as elapsed_minutes,
        is_within_sla as is_on_time,
        policy_version
    from takedowns

    union all

    select
        'takedown' as clock,
        subject_id,
        category_code,
        cast(null as date) as report_date,
        clock_started_at,
        cast(null as timestamptz) as met_at,
        cast(null as timestamptz) as stopped_at,
        target_minutes,
        elapsed_minutes,
        case when elapsed_minutes > target_minutes then false end as is_on_time,
        policy_version
    from running_takedowns

    union all

    select
        'evidence' as clock,
        takedowns.content_id as subject_id,
        takedowns.category_code,
        takedowns.report_date,
        coalesce(takedowns.posted_at, takedowns.detected_at) as clock_started_at,
        evidence_preserved.evidence_preserved_at as met_at,
        evidence_preserved.evidence_preserved_at as stopped_at,
        cast(null as integer) as target_minutes,
        {{ minutes_between(
            'coalesce(takedowns.posted_at, takedowns.detected_at)',
            'coalesce(evidence_preserved.evidence_preserved_at, ' ~ as_of() ~ ')'
        ) }} as elapsed_minutes,
        takedowns.is_evidence_on_time as is_on_time,
        takedowns.policy_version
    from takedowns
    left join evidence_preserved on takedowns.content_id = evidence_preserved.content_id

    union all

    select
        'report_acknowledgement' as clock,
        report_id as subject_id,
        category_code,
        report_date,
        received_at as clock_started_at,
        acknowledged_at as met_at,
        coalesce(acknowledged_at, resolved_at) as stopped_at,
        ack_target_minutes as target_minutes,
        {{ minutes_between(
            'received_at', 'coalesce(acknowledged_at, resolved_at, ' ~ as_of() ~ ')'
        ) }} as elapsed_minutes,
        is_ack_within_target as is_on_time,
        policy_version
    from reports

    union all

    select
        'report_resolution' as clock,
        report_id as subject_id,
        category_code,
        report_date,
        received_at as clock_started_at,
        resolved_at as met_at,
        resolved_at as stopped_at,
        resolution_target_minutes as target_minutes,
        {{ minutes_between('received_at', 'coalesce(resolved_at, ' ~ as_of() ~ ')') }}
            as elapsed_minutes,
        is_resolution_within_target as is_on_time,
        policy_version
    from reports

    union all

    -- dated by the local day the case was opened, as rpt_case_outcomes_monthly
    select
        'referral' as clock,
        case_id as subject_id,
        category_code,
        {{ local_date('opened_at') }} as report_date,
        confirmed_at as clock_started_at,
        referred_at as met_at,
        referred_at as stopped_at,
        referral_target_minutes as target_minutes,
        {{ minutes_between('confirmed_at', 'coalesce(referred_at, ' ~ as_of() ~ ')') }}
            as elapsed_minutes,
        is_referral_within_target as is_on_time,
        policy_version
    from cases
    where confirmed_at is not null

),

final as (

    select
        clock,
        subject_id,
        category_code,
        report_date,
        cast(date_trunc('week', report_date) as date) as week_start,
        cast(date_trunc('month', report_date) as date) as month_start,
        clock_started_at,
        {{ add_minutes('clock_started_at', 'target_minutes') }} as deadline_at,
        stopped_at,
        target_minutes,
        elapsed_minutes,
        case
            when is_on_time then 'on_time'
            when not is_on_time and met_at is not null then 'late'
            when not is_on_time then 'missed'
            when stopped_at is null then 'running'
            -- resolved without an acknowledgement, before the acknowledgement's deadline
            else 'resolved_unacknowledged'
        end as state,
        is_on_time is not null as is_decided,
        is_on_time,
        policy_version,
        {{ as_of() }} as as_of

    from clocks

)

select * from final
