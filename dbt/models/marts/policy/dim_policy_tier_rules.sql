-- The published copy of the reference model int_policy_tier_rules (models/intermediate/reference):
-- the dashboards, exports and outside tools read this one, under its contract.
with

reference as not materialized (

    select * from {{ ref('int_policy_tier_rules') }}

),

final as (

    select
        policy_version,
        zero_tolerance_min_violations,
        repeat_min_violations,
        repeat_window_days,
        violation_min_violations,
        violation_window_days,
        reports_min_reports,
        reports_window_days,
        valid_from,
        valid_to

    from reference

)

select * from final
