{{ incremental_by_entity('account', 'user_ref') }}
-- Incremental by account (macros/incremental_changes.sql); depends_on: {{ ref('int_changed_entities') }}
{%- set mode = changes_mode() %}
-- Each account's tier over time, reconstructed from event times (a violation, a violation
-- leaving its window, a report received, resolved or leaving its window, a hit reviewed, a
-- policy version taking effect), never from when the pipeline happened to run. One row per
-- stretch of time with the same tier and reason; valid_to is null on the current row.
--
-- The tier at a moment t follows policy.md under the policy in force at t. The facts are
-- those known at T: a takedown reversed by T was never a violation, in the tier at T and in
-- its history (the appeal established there was none).
with

intervals as not materialized (

    select * from {{ ref('int_user_tier_intervals') }}
    where {{ only_changed('account', 'user_ref', mode) }}

),

tier_rules as not materialized (

    select * from {{ ref('dim_policy_tier_rules') }}
    where valid_from <= {{ as_of() }}

),

first_seen as (

    select user_ref, started_at as first_seen_at from intervals
    where kind = 'known'

),

-- +1 where an interval starts, -1 where it ends (if by T); a new policy version is a
-- moment of change for every account already known.
deltas as (

    select user_ref, started_at as changed_at, kind, 1 as delta from intervals
    union all
    select user_ref, ended_at as changed_at, kind, -1 as delta from intervals
    where ended_at <= {{ as_of() }}
    union all
    select first_seen.user_ref, tier_rules.valid_from as changed_at, 'policy' as kind, 0 as delta
    from first_seen
    inner join tier_rules on tier_rules.valid_from > first_seen.first_seen_at

),

moments as (

    select
        user_ref,
        changed_at,
        sum(delta) filter (where kind = 'known') as d_known,
        sum(delta) filter (where kind = 'zero_tolerance') as d_zero_tolerance,
        sum(delta) filter (where kind = 'repeat_window') as d_repeat_window,
        sum(delta) filter (where kind = 'violation_window') as d_violation_window,
        sum(delta) filter (where kind = 'report_window') as d_report_window,
        sum(delta) filter (where kind = 'signal') as d_signal,
        sum(delta) filter (where kind = 'unresolved') as d_unresolved

    from deltas
    group by user_ref, changed_at

),

-- What held from each moment until the next one.
states as (

    select
        user_ref,
        changed_at,
        coalesce(sum(d_known) over running, 0) as known,
        coalesce(sum(d_zero_tolerance) over running, 0) as zero_tolerance_violations,
        coalesce(sum(d_repeat_window) over running, 0) as repeat_window_violations,
        coalesce(sum(d_violation_window) over running, 0) as violation_window_violations,
        coalesce(sum(d_report_window) over running, 0) as window_reports,
        coalesce(sum(d_signal) over running, 0) as signals,
        coalesce(sum(d_unresolved) over running, 0) as unresolved

    from moments
    window running as (partition by user_ref order by changed_at rows unbounded preceding)

),

judged as (

    select
        states.user_ref,
        states.changed_at,
        states.known,
        -- black does not expire by itself: once a black rule held, it still does (a later
        -- policy version with a higher threshold does not lift it either)
        bool_or(
            states.zero_tolerance_violations >= tier_rules.zero_tolerance_min_violations
        ) over running as holds_zero_tolerance,
        bool_or(states.repeat_window_violations >= tier_rules.repeat_min_violations)
            over running as holds_repeat,
        states.violation_window_violations >= tier_rules.violation_min_violations
            as holds_violation,
        states.window_reports >= tier_rules.reports_min_reports as holds_reports,
        states.signals > 0 and states.unresolved = 0 as holds_cleared

    from states
    inner join tier_rules
        on states.changed_at >= tier_rules.valid_from
        and (tier_rules.valid_to is null or states.changed_at < tier_rules.valid_to)
    window running as (
        partition by states.user_ref order by states.changed_at rows unbounded preceding
    )

),

-- policy.md: the first rule in the table that holds gives the tier and the reason.
tiered as (

    select
        user_ref,
        changed_at,
        case
            when holds_zero_tolerance or holds_repeat then 'black'
            when holds_violation or holds_reports then 'grey'
            when holds_cleared then 'white'
            else 'none'
        end as tier,
        case
            when holds_zero_tolerance then 'zero_tolerance'
            when holds_repeat then 'repeat_180d'
            when holds_violation then 'violation_180d'
            when holds_reports then 'reports_30d'
            when holds_cleared then 'cleared'
        end as tier_reason

    from judged
    where known > 0

),

changes as (

    select
        *,
        tier is distinct from lag(tier) over by_time
            or tier_reason is distinct from lag(tier_reason) over by_time as is_new_row,
        tier is distinct from lag(tier) over by_time as is_new_tier

    from tiered
    window by_time as (partition by user_ref order by changed_at)

),

numbered as (

    select
        *,
        sum(is_new_tier::integer) over running as tier_run

    from changes
    where is_new_row
    window running as (partition by user_ref order by changed_at rows unbounded preceding)

),

final as (

    select
        user_ref,
        tier,
        tier_reason,
        changed_at as valid_from,
        lead(changed_at) over (partition by user_ref order by changed_at) as valid_to,
        min(changed_at) over (partition by user_ref, tier_run) as tier_since

    from numbered

)

select * from final
