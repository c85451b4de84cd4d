-- Every account known by T with its tier at T, the rule behind it and the counts that
-- explain it (policy.md). The tier and tier_since are the current row of
-- fct_user_tier_history; the counts are computed here directly from the facts, and a
-- test checks the two agree.
with

history as not materialized (

    select * from {{ ref('fct_user_tier_history') }}
    where valid_to is null

),

takedowns as not materialized (

    select * from {{ ref('fct_content_takedowns') }}

),

categories as not materialized (

    select * from {{ ref('int_categories') }}

),

reports as not materialized (

    select * from {{ ref('int_reports_known_at_t') }}
    where reported_user_id_ref is not null

),

rules_at_t as not materialized (

    select * from {{ ref('int_policy_tier_rules') }}
    where valid_from <= {{ as_of() }}
        and (valid_to is null or valid_to > {{ as_of() }})

),

violation_counts as (

    select
        takedowns.user_ref,
        count(*) as violations_total,
        count(*) filter (
            where takedowns.taken_down_at
            > {{ as_of() }} - to_days(rules_at_t.violation_window_days)
        ) as violations_180d,
        count(*) filter (where categories.is_zero_tolerance) as zero_tolerance_violations,
        max(takedowns.taken_down_at) as last_violation_at

    from takedowns
    inner join categories on takedowns.category_code = categories.category_code
    cross join rules_at_t
    group by takedowns.user_ref

),

report_counts as (

    select
        reports.reported_user_id_ref as user_ref,
        count(distinct reports.report_id) as reports_30d

    from reports
    cross join rules_at_t
    where reports.received_at > {{ as_of() }} - to_days(rules_at_t.reports_window_days)
        and reports.resolution not in ('no_violation', 'duplicate')
    group by reports.reported_user_id_ref

),

final as (

    select
        history.user_ref,
        history.tier,
        history.tier_reason,
        coalesce(violation_counts.violations_total, 0) as violations_total,
        coalesce(violation_counts.violations_180d, 0) as violations_180d,
        coalesce(violation_counts.zero_tolerance_violations, 0) as zero_tolerance_violations,
        coalesce(report_counts.reports_30d, 0) as reports_30d,
        violation_counts.last_violation_at,
        history.tier_since,
        rules_at_t.policy_version

    from history
    cross join rules_at_t
    left join violation_counts on history.user_ref = violation_counts.user_ref
    left join report_counts on history.user_ref = report_counts.user_ref

)

select * from final
