-- The counts behind a tier are one definition (policy.md, metrics.md) taken at two kinds of
-- moment: fct_user_tier_history's at each row's valid_from (from its sweep over interval end
-- points) and dim_user_tiers' at T (from fct_content_takedowns). Both must equal a direct
-- recount of the facts at that moment t, with what was known at t and the windows of the
-- policy version in force at t:
--   violations: the content takedowns in force at t (int_takedown_versions: a stretch
--     [version_from, version_until), so a takedown reversed at r counts until r, and the one
--     it hands over to from r), dated at or before t; of those, violations_180d dated after
--     t minus the violation_180d window, zero_tolerance_violations in such a category;
--   reports_30d: distinct reports naming the account received in (t - window, t], not
--     resolved no_violation or duplicate by t.
with

history as (

    select * from {{ ref('fct_user_tier_history') }}

),

tiers as (

    select * from {{ ref('dim_user_tiers') }}

),

takedown_versions as (

    select * from {{ ref('int_takedown_versions') }}

),

categories as (

    select * from {{ ref('int_categories') }}

),

reports as (

    select * from {{ ref('int_reports_known_at_t') }}
    where reported_user_id_ref is not null

),

rules as (

    select * from {{ ref('int_policy_tier_rules') }}

),

moments as (

    select
        'fct_user_tier_history' as counted_by,
        user_ref,
        valid_from as counted_at,
        violations_total,
        violations_180d,
        zero_tolerance_violations,
        reports_30d
    from history
    union all
    select
        'dim_user_tiers' as counted_by,
        user_ref,
        {{ as_of() }} as counted_at,
        violations_total,
        violations_180d,
        zero_tolerance_violations,
        reports_30d
    from tiers

),

windows as (

    select
        moments.*,
        rules.policy_version,
        rules.violation_window_days,
        rules.reports_window_days

    from moments
    left join rules
        on moments.counted_at >= rules.valid_from
        and (rules.valid_to is null or moments.counted_at < rules.valid_to)

),

violation_counts as (

    select
        windows.counted_by,
        windows.user_ref,
        windows.counted_at,
        count(*) as violations_total,
        count(*) filter (
            where takedown_versions.violated_at
            > windows.counted_at - to_days(windows.violation_window_days)
        ) as violations_180d,
        count(*) filter (where categories.is_zero_tolerance) as zero_tolerance_violations

    from windows
    inner join takedown_versions
        on windows.user_ref = takedown_versions.user_ref
        and windows.counted_at >= takedown_versions.violated_at
        and windows.counted_at >= takedown_versions.version_from
        and windows.counted_at < takedown_versions.version_until
    inner join categories on takedown_versions.category_code = categories.category_code
    group by windows.counted_by, windows.user_ref, windows.counted_at

),

report_counts as (

    select
        windows.counted_by,
        windows.user_ref,
        windows.counted_at,
        count(distinct reports.report_id) as reports_30d

    from windows
    inner join reports
        on windows.user_ref = reports.reported_user_id_ref
        and windows.counted_at >= reports.received_at
        and windows.counted_at - to_days(windows.reports_window_days) < reports.received_at
        and not coalesce(
            reports.resolution in ('no_violation', 'duplicate')
            and windows.counted_at >= reports.resolved_at,
            false
        )
    group by windows.counted_by, windows.user_ref, windows.counted_at

),

compared as (

    select
        windows.counted_by,
        windows.user_ref,
        windows.counted_at,
        windows.policy_version,
        windows.violations_total,
        coalesce(violation_counts.violations_total, 0) as expected_violations_total,
        windows.violations_180d,
        coalesce(violation_counts.violations_180d, 0) as expected_violations_180d,
        windows.zero_tolerance_violations,
        coalesce(violation_counts.zero_tolerance_violations, 0)
            as expected_zero_tolerance_violations,
        windows.reports_30d,
        coalesce(report_counts.reports_30d, 0) as expected_reports_30d

    from windows
    left join violation_counts
        on windows.counted_by = violation_counts.counted_by
        and windows.user_ref = violation_counts.user_ref
        and windows.counted_at = violation_counts.counted_at
    left join report_counts
        on windows.counted_by = report_counts.counted_by
        and windows.user_ref = report_counts.user_ref
        and windows.counted_at = report_counts.counted_at

)

select *
from compared
where policy_version is null
    or violations_total != expected_violations_total
    or violations_180d != expected_violations_180d
    or zero_tolerance_violations != expected_zero_tolerance_violations
    or reports_30d != expected_reports_30d
