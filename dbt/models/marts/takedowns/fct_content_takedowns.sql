{{ incremental_by_entity('content', 'content_id') }}
{%- set mode = changes_mode() %}
-- One row per content id with at least one qualifying action by T (metrics.md, Takedowns).
with

actions as not materialized (

    select * from {{ ref('int_actions_known_at_t') }}
    where {{ only_changed('content', 'content_id', mode) }}

),

-- The content's takedown at T: the stretch of its takedown history still current
-- (int_takedown_versions, which also says who had it before a reversal).
current_takedowns as not materialized (

    select * from {{ ref('int_takedown_versions') }}
    where version_until = 'infinity'::timestamptz
        and {{ only_changed('content', 'content_id', mode) }}

),

hits as not materialized (

    select * from {{ ref('int_hits_known_at_t') }}
    where {{ only_changed('content', 'content_id', mode) }}

),

sla_targets as not materialized (

    select * from {{ ref('int_policy_sla_targets') }}
    where clock = 'takedown'

),

qualifying as (

    select * from actions
    where is_qualifying

),

-- metrics.md: the qualifying action with the earliest actioned_at (ties: smallest id).
first_action as (

    select qualifying.*
    from qualifying
    inner join current_takedowns on qualifying.action_id = current_takedowns.action_id

),

-- What every action and hit reported about the content: posting and detection times.
sightings as (

    select
        content_id,
        posted_at,
        detected_at
    from actions
    where content_id is not null
    union all
    select
        content_id,
        posted_at,
        detected_at
    from hits

),

content_times as (

    select
        content_id,
        min(posted_at) as posted_at,
        min(detected_at) as detected_at

    from sightings
    where content_id in (select first_action.content_id from first_action)
    group by content_id

),

evidence as (

    select
        qualifying.content_id,
        bool_or(qualifying.evidence_preserved_at <= first_action.actioned_at) as is_evidence_on_time

    from qualifying
    inner join first_action on qualifying.content_id = first_action.content_id
    group by qualifying.content_id

),

takedowns as (

    select
        first_action.content_id,
        first_action.action_id as first_action_id,
        first_action.category_code,
        first_action.trigger,
        first_action.user_id_ref as user_ref,
        content_times.posted_at,
        content_times.detected_at,
        first_action.actioned_at as taken_down_at,
        content_times.posted_at is null as is_prevented,
        coalesce(evidence.is_evidence_on_time, false) as is_evidence_on_time,
        -- the clock started at posting (at detection when the content never went up)
        coalesce(content_times.posted_at, content_times.detected_at) as clock_started_at

    from first_action
    inner join content_times on first_action.content_id = content_times.content_id
    left join evidence on first_action.content_id = evidence.content_id

),

final as (

    select
        takedowns.content_id,
        takedowns.first_action_id,
        takedowns.category_code,
        takedowns.trigger,
        takedowns.user_ref,
        takedowns.posted_at,
        takedowns.detected_at,
        takedowns.taken_down_at,
        takedowns.is_prevented,
        case
            when takedowns.is_prevented then 0.0
            else {{ minutes_between('takedowns.posted_at', 'takedowns.taken_down_at') }}
        end as exposure_minutes,
        {{ minutes_between('takedowns.detected_at', 'takedowns.taken_down_at') }}
            as detection_to_takedown_minutes,
        sla_targets.target_minutes as sla_target_minutes,
        sla_targets.policy_version,
        case
            when takedowns.is_prevented then true
            else {{ minutes_between('takedowns.posted_at', 'takedowns.taken_down_at') }}
                <= sla_targets.target_minutes
        end as is_within_sla,
        takedowns.is_evidence_on_time,
        {{ local_date('takedowns.taken_down_at') }} as report_date

    from takedowns
    left join sla_targets
        on takedowns.category_code = sla_targets.category_code
        and takedowns.clock_started_at >= sla_targets.valid_from
        and (sla_targets.valid_to is null or takedowns.clock_started_at < sla_targets.valid_to)

)

select * from final
