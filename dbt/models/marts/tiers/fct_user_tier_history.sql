{{ incremental_by_entity('account', 'user_ref') }}
{%- set mode = changes_mode() %}
-- Each account's tier over time, reconstructed from event times (a violation, a violation
-- leaving its window, a report received, resolved or leaving its window, a hit reviewed, a
-- policy version taking effect, a takedown reversed), never from when the pipeline happened
-- to run. One row per stretch of time with the same tier and reason; valid_to is null on
-- the current row.
--
-- The tier at a moment t follows policy.md under the policy in force at t, with what was
-- known at t (policy.md, "Reversals"): a takedown reversed at r was a violation until r and
-- is not from r on, so the history keeps the grey or black tier it gave until r; the past
-- is never rewritten by a later reversal. A reversal is not an expiry: a black tier whose
-- grounds are reversed ends at the reversal.
--
-- How: the moments at which an account's known violations change (its intervals'
-- known_from and known_until, see int_user_tier_intervals) cut its time into epochs. In
-- each epoch the set of known violations is fixed; the sweep below runs over the whole
-- past with that set (black holds once its rule held at any earlier moment) and keeps the
-- rows that fall in the epoch. An account without reversals has one epoch.
--
-- Each row carries the counts behind it (policy.md: the rule and the counts behind it), as
-- the sweep had them at valid_from, with the epoch's violations and the windows of the
-- policy in force then: violations_total, violations_180d (the violation_180d rule's
-- window), zero_tolerance_violations and reports_30d, defined as dim_user_tiers defines
-- them at T. They are the running sums the rules are judged on, taken where a row starts.
-- Black persists once its rule held, so a black row's window counts may be below its
-- threshold (a reversal that hands an old takedown over can make an account black with
-- its violations long out of the window); its violations_total and
-- zero_tolerance_violations never are.
with

intervals as not materialized (

    select * from {{ ref('int_user_tier_intervals') }}
    where {{ only_changed('account', 'user_ref', mode) }}

),

tier_rules as not materialized (

    select * from {{ ref('int_policy_tier_rules') }}
    where valid_from <= {{ as_of() }}

),

first_seen as (

    select
        user_ref,
        started_at as first_seen_at
    from intervals
    where kind = 'known'

),

epoch_starts as (

    select
        user_ref,
        '-infinity'::timestamptz as epoch_start
    from first_seen
    union
    select
        user_ref,
        known_from
    from intervals
    where known_from <= {{ as_of() }}
    union
    select
        user_ref,
        known_until
    from intervals
    where known_until <= {{ as_of() }}

),

epochs as (

    select
        user_ref,
        epoch_start,
        coalesce(
            lead(epoch_start) over (partition by user_ref order by epoch_start),
            'infinity'::timestamptz
        ) as epoch_end

    from epoch_starts

),

-- The intervals that count in each epoch: those whose violation was known throughout it
-- (every interval of another kind is).
epoch_intervals as (

    select
        intervals.user_ref,
        intervals.kind,
        intervals.started_at,
        intervals.ended_at,
        epochs.epoch_start,
        epochs.epoch_end

    from intervals
    inner join epochs
        on intervals.user_ref = epochs.user_ref
        and coalesce(intervals.known_from, '-infinity'::timestamptz) <= epochs.epoch_start
        and (
            intervals.known_until is null
            or intervals.known_until > {{ as_of() }}
            or intervals.known_until >= epochs.epoch_end
        )

),

-- +1 where an interval starts, -1 where it ends (if by T); a new policy version is a
-- moment of change for every account already known, and so is the start of an epoch.
-- Nothing after the epoch's end is needed.
deltas as (

    select
        user_ref,
        epoch_start,
        started_at as changed_at,
        kind,
        1 as delta
    from epoch_intervals
    where started_at < epoch_end
    union all
    select
        user_ref,
        epoch_start,
        ended_at as changed_at,
        kind,
        -1 as delta
    from epoch_intervals
    where ended_at <= {{ as_of() }} and ended_at < epoch_end
    union all
    select
        first_seen.user_ref,
        epochs.epoch_start,
        tier_rules.valid_from as changed_at,
        'policy' as kind,
        0 as delta

    from first_seen
    inner join epochs on first_seen.user_ref = epochs.user_ref
    inner join tier_rules
        on first_seen.first_seen_at < tier_rules.valid_from
        and epochs.epoch_end > tier_rules.valid_from
    union all
    select
        user_ref,
        epoch_start,
        epoch_start as changed_at,
        'epoch' as kind,
        0 as delta
    from epochs
    where epoch_start > '-infinity'::timestamptz

),

moments as (

    select
        user_ref,
        epoch_start,
        changed_at,
        sum(delta) filter (where kind = 'known')::integer as d_known,
        sum(delta) filter (where kind = 'violation')::integer as d_violation,
        sum(delta) filter (where kind = 'zero_tolerance')::integer as d_zero_tolerance,
        sum(delta) filter (where kind = 'repeat_window')::integer as d_repeat_window,
        sum(delta) filter (where kind = 'violation_window')::integer as d_violation_window,
        sum(delta) filter (where kind = 'report_window')::integer as d_report_window,
        sum(delta) filter (where kind = 'signal')::integer as d_signal,
        sum(delta) filter (where kind = 'unresolved')::integer as d_unresolved

    from deltas
    group by user_ref, epoch_start, changed_at

),

-- What held from each moment until the next one. (Counts as integer: DuckDB sums integers
-- into hugeint, and these running sums are the model's largest cost.)
states as (

    select
        user_ref,
        epoch_start,
        changed_at,
        coalesce(sum(d_known) over running, 0)::integer as known,
        coalesce(sum(d_violation) over running, 0)::integer as violations_total,
        coalesce(sum(d_zero_tolerance) over running, 0)::integer as zero_tolerance_violations,
        coalesce(sum(d_repeat_window) over running, 0)::integer as repeat_window_violations,
        coalesce(sum(d_violation_window) over running, 0)::integer as violation_window_violations,
        coalesce(sum(d_report_window) over running, 0)::integer as window_reports,
        coalesce(sum(d_signal) over running, 0)::integer as signals,
        coalesce(sum(d_unresolved) over running, 0)::integer as unresolved

    from moments
    window running as (
        partition by user_ref, epoch_start order by changed_at rows unbounded preceding
    )

),

judged as (

    select
        states.user_ref,
        states.epoch_start,
        states.changed_at,
        states.known,
        states.violations_total,
        states.violation_window_violations as violations_180d,
        states.zero_tolerance_violations,
        states.window_reports as reports_30d,
        -- black does not expire by itself: once a black rule held (with this epoch's
        -- violations), it still does (a later policy version with a higher threshold does
        -- not lift it either)
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
        partition by states.user_ref, states.epoch_start
        order by states.changed_at rows unbounded preceding
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
        end as tier_reason,
        violations_total,
        violations_180d,
        zero_tolerance_violations,
        reports_30d

    from judged
    where known > 0 and changed_at >= epoch_start

),

changes as (

    select
        *,
        {{ distinct_from('tier', 'lag(tier) over by_time') }}
        or {{ distinct_from('tier_reason', 'lag(tier_reason) over by_time') }} as is_new_row,
        {{ distinct_from('tier', 'lag(tier) over by_time') }} as is_new_tier

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
        min(changed_at) over (partition by user_ref, tier_run) as tier_since,
        -- the counts as the rules saw them when the stretch began
        violations_total::bigint as violations_total,
        violations_180d::bigint as violations_180d,
        zero_tolerance_violations::bigint as zero_tolerance_violations,
        reports_30d::bigint as reports_30d

    from numbered

)

select * from final
