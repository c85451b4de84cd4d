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
-- How, and why so: an interval counts at t while it is both running and known at t (from
-- the later of its start and known_from to the earlier of its end and known_until; see
-- int_user_tier_intervals), so every count at t, and every rule but black's, is one sweep
-- over the account's moments. Black persists once its rule held at any earlier moment,
-- judged with what is known at t (a reversal ends a black tier whose grounds it removes):
-- after the last moment at which knowledge changed (an epoch start, a known_from or
-- known_until), the sweep carries it on; before that moment, each epoch asks once whether
-- black held in the past with the epoch's violations (a sweep of the black rules' own
-- intervals only). Re-sweeping the whole past per epoch for every kind, as before, made a
-- prolific account with 650 reversals and 715,000 intervals 465 million rows at L.
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

changed_intervals as not materialized (

    select * from {{ ref('int_user_tier_intervals') }}
    where {{ only_changed('account', 'user_ref', mode) }}

),

-- The sweeps sort every moment of every account (one sort per window): on a small integer
-- per account rather than the 67-character reference, which is joined back at the end.
account_refs as (

    select distinct user_ref from changed_intervals

),

accounts as (

    select
        user_ref,
        row_number() over () as account_id
    from account_refs

),

intervals as (

    select
        accounts.account_id,
        changed_intervals.kind,
        changed_intervals.started_at,
        changed_intervals.ended_at,
        changed_intervals.known_from,
        -- a known_until after T is not (yet) a reversal
        case
            when changed_intervals.known_until <= {{ as_of() }}
                then changed_intervals.known_until
        end as known_until
    from changed_intervals
    inner join accounts on changed_intervals.user_ref = accounts.user_ref
    where coalesce(changed_intervals.known_from, '-infinity'::timestamptz) <= {{ as_of() }}

),

tier_rules as not materialized (

    select * from {{ ref('int_policy_tier_rules') }}
    where valid_from <= {{ as_of() }}

),

first_seen as (

    select
        account_id,
        started_at as first_seen_at
    from intervals
    where kind = 'known'

),

-- Epochs: the stretches between moments at which what is known changes.
epoch_starts as (

    select
        account_id,
        '-infinity'::timestamptz as epoch_start
    from first_seen
    union
    select
        account_id,
        known_from
    from intervals
    where known_from is not null
    union
    select
        account_id,
        known_until
    from intervals
    where known_until is not null

),

epochs as (

    select
        account_id,
        epoch_start,
        coalesce(
            lead(epoch_start) over (partition by account_id order by epoch_start),
            'infinity'::timestamptz
        ) as epoch_end

    from epoch_starts

),

-- When each interval counts: while running and known.
spans as (

    select
        account_id,
        kind,
        greatest(started_at, coalesce(known_from, '-infinity'::timestamptz)) as counts_from,
        least(
            coalesce(ended_at, 'infinity'::timestamptz),
            coalesce(known_until, 'infinity'::timestamptz)
        ) as counts_until

    from intervals

),

-- +1 where a span starts, -1 where it ends (if by T); a new policy version is a moment of
-- change for every account already known, and so is the start of an epoch.
deltas as (

    select
        account_id,
        counts_from as changed_at,
        kind,
        1 as delta
    from spans
    where counts_from < counts_until
    union all
    select
        account_id,
        counts_until as changed_at,
        kind,
        -1 as delta
    from spans
    where counts_from < counts_until and counts_until <= {{ as_of() }}
    union all
    select
        first_seen.account_id,
        tier_rules.valid_from as changed_at,
        'policy' as kind,
        0 as delta
    from first_seen
    inner join tier_rules on first_seen.first_seen_at < tier_rules.valid_from
    union all
    select
        account_id,
        epoch_start as changed_at,
        'epoch' as kind,
        0 as delta
    from epochs
    where epoch_start > '-infinity'::timestamptz

),

moments as (

    select
        account_id,
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
    group by account_id, changed_at

),

-- What held from each moment until the next one. (Counts as integer: DuckDB sums integers
-- into hugeint, and these running sums are the model's largest cost.)
states as (

    select
        account_id,
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
    window running as (partition by account_id order by changed_at rows unbounded preceding)

),

-- Black in the past, with an epoch's violations: the black rules' intervals known in the
-- epoch, swept over the moments before it starts (the first epoch has no such past).
past_intervals as (

    select
        intervals.account_id,
        epochs.epoch_start,
        intervals.kind,
        intervals.started_at,
        intervals.ended_at

    from intervals
    inner join epochs
        on intervals.account_id = epochs.account_id
        and coalesce(intervals.known_from, '-infinity'::timestamptz) <= epochs.epoch_start
        and (intervals.known_until is null or intervals.known_until >= epochs.epoch_end)
        and intervals.started_at < epochs.epoch_start
    where
        intervals.kind in ('zero_tolerance', 'repeat_window')
        and epochs.epoch_start > '-infinity'::timestamptz

),

past_deltas as (

    select
        account_id,
        epoch_start,
        started_at as changed_at,
        kind,
        1 as delta
    from past_intervals
    union all
    select
        account_id,
        epoch_start,
        ended_at as changed_at,
        kind,
        -1 as delta
    from past_intervals
    where ended_at < epoch_start
    union all
    select
        epochs.account_id,
        epochs.epoch_start,
        tier_rules.valid_from as changed_at,
        'policy' as kind,
        0 as delta
    from epochs
    inner join first_seen on epochs.account_id = first_seen.account_id
    inner join tier_rules
        on first_seen.first_seen_at < tier_rules.valid_from
        and epochs.epoch_start > tier_rules.valid_from

),

past_moments as (

    select
        account_id,
        epoch_start,
        changed_at,
        sum(delta) filter (where kind = 'zero_tolerance')::integer as d_zero_tolerance,
        sum(delta) filter (where kind = 'repeat_window')::integer as d_repeat_window

    from past_deltas
    group by account_id, epoch_start, changed_at

),

past_states as (

    select
        account_id,
        epoch_start,
        changed_at,
        coalesce(sum(d_zero_tolerance) over running, 0)::integer as zero_tolerance_violations,
        coalesce(sum(d_repeat_window) over running, 0)::integer as repeat_window_violations

    from past_moments
    window running as (
        partition by account_id, epoch_start order by changed_at rows unbounded preceding
    )

),

past_black as (

    select
        past_states.account_id,
        past_states.epoch_start,
        bool_or(
            past_states.zero_tolerance_violations >= tier_rules.zero_tolerance_min_violations
        ) as held_zero_tolerance,
        bool_or(past_states.repeat_window_violations >= tier_rules.repeat_min_violations)
            as held_repeat

    from past_states
    inner join tier_rules
        on past_states.changed_at >= tier_rules.valid_from
        and (tier_rules.valid_to is null or past_states.changed_at < tier_rules.valid_to)
    group by past_states.account_id, past_states.epoch_start

),

-- Each moment in its epoch (the latest epoch start at or before it).
states_in_epochs as (

    select
        states.*,
        epochs.epoch_start

    from states
    asof inner join epochs
        on states.account_id = epochs.account_id
        and states.changed_at >= epochs.epoch_start

),

judged as (

    select
        states_in_epochs.account_id,
        states_in_epochs.changed_at,
        states_in_epochs.known,
        states_in_epochs.violations_total,
        states_in_epochs.violation_window_violations as violations_180d,
        states_in_epochs.zero_tolerance_violations,
        states_in_epochs.window_reports as reports_30d,
        -- black does not expire by itself: once a black rule held (with this epoch's
        -- violations), it still does (a later policy version with a higher threshold does
        -- not lift it either)
        coalesce(past_black.held_zero_tolerance, false) or bool_or(
            states_in_epochs.zero_tolerance_violations
            >= tier_rules.zero_tolerance_min_violations
        ) over in_epoch as holds_zero_tolerance,
        coalesce(past_black.held_repeat, false) or bool_or(
            states_in_epochs.repeat_window_violations >= tier_rules.repeat_min_violations
        ) over in_epoch as holds_repeat,
        states_in_epochs.violation_window_violations >= tier_rules.violation_min_violations
            as holds_violation,
        states_in_epochs.window_reports >= tier_rules.reports_min_reports as holds_reports,
        states_in_epochs.signals > 0 and states_in_epochs.unresolved = 0 as holds_cleared

    from states_in_epochs
    inner join tier_rules
        on states_in_epochs.changed_at >= tier_rules.valid_from
        and (
            tier_rules.valid_to is null or states_in_epochs.changed_at < tier_rules.valid_to
        )
    left join past_black
        on states_in_epochs.account_id = past_black.account_id
        and states_in_epochs.epoch_start = past_black.epoch_start
    window in_epoch as (
        partition by states_in_epochs.account_id, states_in_epochs.epoch_start
        order by states_in_epochs.changed_at rows unbounded preceding
    )

),

-- policy.md: the first rule in the table that holds gives the tier and the reason.
tiered as (

    select
        account_id,
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
    where known > 0

),

changes as (

    select
        *,
        {{ distinct_from('tier', 'lag(tier) over by_time') }}
        or {{ distinct_from('tier_reason', 'lag(tier_reason) over by_time') }} as is_new_row,
        {{ distinct_from('tier', 'lag(tier) over by_time') }} as is_new_tier

    from tiered
    window by_time as (partition by account_id order by changed_at)

),

numbered as (

    select
        *,
        sum(is_new_tier::integer) over running as tier_run

    from changes
    where is_new_row
    window running as (partition by account_id order by changed_at rows unbounded preceding)

),

stretches as (

    select
        account_id,
        tier,
        tier_reason,
        changed_at as valid_from,
        lead(changed_at) over (partition by account_id order by changed_at) as valid_to,
        min(changed_at) over (partition by account_id, tier_run) as tier_since,
        -- the counts as the rules saw them when the stretch began
        violations_total::bigint as violations_total,
        violations_180d::bigint as violations_180d,
        zero_tolerance_violations::bigint as zero_tolerance_violations,
        reports_30d::bigint as reports_30d

    from numbered

),

final as (

    select
        accounts.user_ref,
        stretches.tier,
        stretches.tier_reason,
        stretches.valid_from,
        stretches.valid_to,
        stretches.tier_since,
        stretches.violations_total,
        stretches.violations_180d,
        stretches.zero_tolerance_violations,
        stretches.reports_30d

    from stretches
    inner join accounts on stretches.account_id = accounts.account_id

)

select * from final
