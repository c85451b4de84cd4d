-- Every stretch of fct_user_tier_history must be explained by the counts it carries (those at
-- valid_from) under the policy in force at valid_from: assert_user_tiers_explained_by_counts
-- for each moment a stretch began, not only for T.
--
-- What must hold at valid_from (policy.md): a rule that holds then gives at least its tier
-- (zero_tolerance or, where its window is the violation window's, repeat: black; violation or
-- reports: grey), and a grey or lighter row has no black rule holding. What a black row's own
-- counts must show is weaker, because black does not expire: it began when its rule held, but
-- possibly with the window already past (a reversal that hands the account an old takedown
-- makes it black at the reversal, its violations long out of the 180 days), or under an
-- earlier version's lower threshold. Counts up to valid_from never fall within an epoch, so
-- those rows still need zero_tolerance_violations (zero_tolerance) or violations_total
-- (repeat_180d) at least the lowest threshold of the versions in force up to valid_from.
with

history as (

    select * from {{ ref('fct_user_tier_history') }}

),

rules as (

    select * from {{ ref('dim_policy_tier_rules') }}

),

thresholds as (

    select
        *,
        min(zero_tolerance_min_violations) over up_to_here as lowest_zero_tolerance_min,
        min(repeat_min_violations) over up_to_here as lowest_repeat_min

    from rules
    window up_to_here as (order by valid_from rows unbounded preceding)

),

judged as (

    select
        history.*,
        thresholds.policy_version,
        thresholds.lowest_zero_tolerance_min,
        thresholds.lowest_repeat_min,
        history.zero_tolerance_violations >= thresholds.zero_tolerance_min_violations
            as holds_zero_tolerance,
        thresholds.repeat_window_days = thresholds.violation_window_days
        and history.violations_180d >= thresholds.repeat_min_violations as holds_repeat,
        history.violations_180d >= thresholds.violation_min_violations as holds_violation,
        history.reports_30d >= thresholds.reports_min_reports as holds_reports

    from history
    left join thresholds
        on history.valid_from >= thresholds.valid_from
        and (thresholds.valid_to is null or history.valid_from < thresholds.valid_to)

),

problems as (

    select
        *,
        case
            when policy_version is null then 'no policy version in force at valid_from'
            when violations_total < violations_180d or violations_total < zero_tolerance_violations
                then 'violations_total below one of its parts'
            -- black: the rule held, so the counts that never fall are at its threshold
            when tier_reason = 'zero_tolerance'
                and zero_tolerance_violations < greatest(lowest_zero_tolerance_min, 1)
                then 'zero_tolerance without enough zero-tolerance violations'
            when tier_reason = 'repeat_180d'
                and violations_total < greatest(lowest_repeat_min, 1)
                then 'repeat_180d without enough violations'
            -- the first rule that holds is the reason
            when tier_reason = 'repeat_180d' and holds_zero_tolerance
                then 'repeat_180d where zero_tolerance holds'
            when tier != 'black' and (holds_zero_tolerance or holds_repeat)
                then 'not black where a black rule holds'
            when tier_reason = 'violation_180d' and not holds_violation
                then 'violation_180d without enough violations in the window'
            when tier_reason = 'reports_30d' and (holds_violation or not holds_reports)
                then 'reports_30d where violation_180d holds or reports_30d does not'
            when tier in ('white', 'none') and (holds_violation or holds_reports)
                then 'white or none where a grey rule holds'
        end as problem

    from judged

)

select *
from problems
where problem is not null
