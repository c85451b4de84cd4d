-- The white/grey/black list rules of every policy version, one row per version, rule
-- thresholds and windows as columns (what the tier models read).
with

versions as not materialized (

    select * from {{ ref('int_policy_versions') }}

),

rules as not materialized (

    select * from {{ ref('policy_tier_rules') }}

),

pivoted as (

    select
        policy_version,
        max(min_count) filter (where rule_id = 'zero_tolerance') as zero_tolerance_min_violations,
        max(min_count) filter (where rule_id = 'repeat_180d') as repeat_min_violations,
        max(window_days) filter (where rule_id = 'repeat_180d') as repeat_window_days,
        max(min_count) filter (where rule_id = 'violation_180d') as violation_min_violations,
        max(window_days) filter (where rule_id = 'violation_180d') as violation_window_days,
        max(min_count) filter (where rule_id = 'reports_30d') as reports_min_reports,
        max(window_days) filter (where rule_id = 'reports_30d') as reports_window_days

    from rules
    group by policy_version

),

final as (

    select
        pivoted.policy_version,
        pivoted.zero_tolerance_min_violations,
        pivoted.repeat_min_violations,
        pivoted.repeat_window_days,
        pivoted.violation_min_violations,
        pivoted.violation_window_days,
        pivoted.reports_min_reports,
        pivoted.reports_window_days,
        versions.valid_from,
        versions.valid_to

    from pivoted
    inner join versions on pivoted.policy_version = versions.policy_version

)

select * from final
