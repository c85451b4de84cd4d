{{ incremental_by_entity('account', 'user_ref') }}
{%- set mode = changes_mode() %}
-- The facts behind the white/grey/black list (policy.md), as time intervals per account:
-- while an interval is open it counts towards a rule. The tier history sweeps over their
-- start and end points; an interval with ended_at 'infinity' never ends.
--
--   known               the account appears (uploader, reported user, action user, subject)
--   violation           a violation: counts forever (violations_total)
--   zero_tolerance      a violation in a zero-tolerance category: counts forever
--   repeat_window       a violation inside the repeat rule's window (repeat_180d)
--   violation_window    a violation inside the grey rule's window (violation_180d)
--   report_window       a report naming the account inside the reports window (reports_30d),
--                       until it is resolved no_violation or duplicate
--   signal              a hit on the account's upload or a report naming it (white needs one)
--   unresolved          such a hit or report that has not (yet) come to nothing
--
-- source_id names the record behind an interval: the content of a violation, the hit or
-- report of a signal, the report of a report window (null for `known`). With the policy
-- piece (started_at) and known_from it is the grain.
--
-- Windows follow the policy in force at each moment: an interval is cut at the boundaries
-- of policy versions and each piece uses its version's window.
--
-- Reversals (policy.md): a violation is what was known at each moment. A takedown reversed
-- on appeal was a violation from its takedown until its reversed_at, and no longer after;
-- if the content had another qualifying action, that one is the content's takedown from
-- the reversal on (its user, its category, dated at its own actioned_at). So a violation
-- interval also says when the violation it stems from was known: known_from (null: from
-- the violation itself; else the reversal that made it the content's takedown) and
-- known_until (null: still at T; else its reversal). The tier history evaluates every
-- moment with the violations known then. Other kinds have both null.
with

-- The takedowns behind the changed accounts' violations: every version of a content one of
-- their actions took down (another user's action can be its takedown).
takedown_versions as not materialized (

    select * from {{ ref('int_takedown_versions') }}
    {%- if mode == 'changes' %}
    where content_id in (
        select content_id from {{ ref('int_actions_known_at_t') }}
        where content_id is not null
            and {{ only_changed('account', 'user_id_ref', mode) }}
    )
    {%- endif %}

),

categories as not materialized (

    select * from {{ ref('int_categories') }}

),

hits as not materialized (

    select * from {{ ref('int_hits_known_at_t') }}
    where {{ only_changed('account', 'uploader_id_ref', mode) }}

),

reports as not materialized (

    select * from {{ ref('int_reports_known_at_t') }}
    where reported_user_id_ref is not null
        and {{ only_changed('account', 'reported_user_id_ref', mode) }}

),

actions as not materialized (

    select * from {{ ref('int_actions_known_at_t') }}
    where {{ only_changed('account', 'user_id_ref', mode) }}

),

cases as not materialized (

    select * from {{ ref('int_cases_known_at_t') }}
    where subject_user_id_ref is not null
        and {{ only_changed('account', 'subject_user_id_ref', mode) }}

),

tier_rules as (

    select
        *,
        coalesce(valid_to, 'infinity'::timestamptz) as valid_until

    from {{ ref('int_policy_tier_rules') }}
    where valid_from <= {{ as_of() }}

),

-- A violation is a content takedown, attributed to the first action's user, dated at its
-- takedown time (policy.md), as it was known over time (int_takedown_versions).
violations as (

    select
        takedown_versions.user_ref,
        takedown_versions.content_id as source_id,
        takedown_versions.violated_at,
        categories.is_zero_tolerance,
        takedown_versions.known_from,
        takedown_versions.known_until

    from takedown_versions
    inner join categories on takedown_versions.category_code = categories.category_code
    where {{ only_changed('account', 'takedown_versions.user_ref', mode) }}

),

appearances as (

    select
        uploader_id_ref as user_ref,
        detected_at as seen_at
    from hits
    union all
    select
        reported_user_id_ref,
        received_at
    from reports
    union all
    select
        user_id_ref,
        actioned_at
    from actions
    union all
    select
        subject_user_id_ref,
        opened_at
    from cases

),

known as (

    select
        user_ref,
        'known' as kind,
        null::varchar as source_id,
        min(seen_at) as started_at,
        'infinity'::timestamptz as ended_at,
        null::timestamptz as known_from,
        null::timestamptz as known_until

    from appearances
    group by user_ref

),

violation as (

    select
        user_ref,
        'violation' as kind,
        source_id,
        violated_at as started_at,
        'infinity'::timestamptz as ended_at,
        known_from,
        known_until

    from violations

),

zero_tolerance as (

    select
        user_ref,
        'zero_tolerance' as kind,
        source_id,
        violated_at as started_at,
        'infinity'::timestamptz as ended_at,
        known_from,
        known_until

    from violations
    where is_zero_tolerance

),

repeat_window as (

    select
        violations.user_ref,
        'repeat_window' as kind,
        violations.source_id,
        greatest(violations.violated_at, tier_rules.valid_from) as started_at,
        least(
            violations.violated_at + to_days(tier_rules.repeat_window_days),
            tier_rules.valid_until
        ) as ended_at,
        violations.known_from,
        violations.known_until

    from violations
    inner join tier_rules
        on violations.violated_at < tier_rules.valid_until
        and violations.violated_at + to_days(tier_rules.repeat_window_days)
        > tier_rules.valid_from

),

violation_window as (

    select
        violations.user_ref,
        'violation_window' as kind,
        violations.source_id,
        greatest(violations.violated_at, tier_rules.valid_from) as started_at,
        least(
            violations.violated_at + to_days(tier_rules.violation_window_days),
            tier_rules.valid_until
        ) as ended_at,
        violations.known_from,
        violations.known_until

    from violations
    inner join tier_rules
        on violations.violated_at < tier_rules.valid_until
        and violations.violated_at + to_days(tier_rules.violation_window_days)
        > tier_rules.valid_from

),

-- A report counts from its receipt until it leaves the window or is resolved as
-- no_violation or duplicate, whichever comes first.
report_window as (

    select
        reports.reported_user_id_ref as user_ref,
        'report_window' as kind,
        reports.report_id as source_id,
        greatest(reports.received_at, tier_rules.valid_from) as started_at,
        least(
            reports.received_at + to_days(tier_rules.reports_window_days),
            tier_rules.valid_until,
            case
                when reports.resolution in ('no_violation', 'duplicate') then reports.resolved_at
                else 'infinity'::timestamptz
            end
        ) as ended_at,
        null::timestamptz as known_from,
        null::timestamptz as known_until

    from reports
    inner join tier_rules
        on reports.received_at < tier_rules.valid_until
        and reports.received_at + to_days(tier_rules.reports_window_days)
        > tier_rules.valid_from

),

signals as (

    select
        uploader_id_ref as user_ref,
        hit_id as source_id,
        detected_at as started_at,
        case
            when review_status = 'false_positive' then reviewed_at
            else 'infinity'::timestamptz
        end as came_to_nothing_at

    from hits

    union all

    select
        reported_user_id_ref as user_ref,
        report_id as source_id,
        received_at as started_at,
        case
            when resolution in ('no_violation', 'duplicate', 'insufficient_information')
                then resolved_at
            else 'infinity'::timestamptz
        end as came_to_nothing_at

    from reports

),

signal as (

    select
        user_ref,
        'signal' as kind,
        source_id,
        started_at,
        'infinity'::timestamptz as ended_at,
        null::timestamptz as known_from,
        null::timestamptz as known_until

    from signals

),

unresolved as (

    select
        user_ref,
        'unresolved' as kind,
        source_id,
        started_at,
        came_to_nothing_at as ended_at,
        null::timestamptz as known_from,
        null::timestamptz as known_until

    from signals

),

unioned as (

    select * from known
    union all
    select * from violation
    union all
    select * from zero_tolerance
    union all
    select * from repeat_window
    union all
    select * from violation_window
    union all
    select * from report_window
    union all
    select * from signal
    union all
    select * from unresolved

),

final as (

    select
        user_ref,
        kind,
        source_id,
        started_at,
        ended_at,
        known_from,
        known_until

    from unioned
    where started_at < ended_at
        and (known_until is null or started_at < known_until)

)

select * from final
