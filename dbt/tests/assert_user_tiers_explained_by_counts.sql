-- Every account's tier at T (from the event sweep of fct_user_tier_history) must be
-- explained by the counts dim_user_tiers computes directly from the facts, under the
-- policy in force at T: two independent computations of policy.md that must agree.
with

tiers as (

    select * from {{ ref('dim_user_tiers') }}

),

rules as (

    select * from {{ ref('dim_policy_tier_rules') }}

),

judged as (

    select
        tiers.*,
        tiers.zero_tolerance_violations >= rules.zero_tolerance_min_violations
            as holds_zero_tolerance,
        tiers.violations_180d >= rules.violation_min_violations as holds_violation,
        tiers.reports_30d >= rules.reports_min_reports as holds_reports

    from tiers
    inner join rules on tiers.policy_version = rules.policy_version

)

select *
from judged
where
    -- zero tolerance needs such a violation, and when it holds the account is black
    (tier_reason = 'zero_tolerance' and zero_tolerance_violations = 0)
    or (holds_zero_tolerance and tier != 'black')
    -- a grey account: not black, and the reason's rule holds (the first that does)
    or (tier_reason = 'violation_180d' and not holds_violation)
    or (tier_reason = 'reports_30d' and (holds_violation or not holds_reports))
    -- black by repeat needs a violation history at least as long as the threshold
    or (tier_reason = 'repeat_180d' and violations_total < 1)
    -- white or none: no rule of black or grey holds
    or (tier in ('white', 'none') and (holds_violation or holds_reports))
