-- Each content's takedown as it was known over time (policy.md, "Reversals"): one row per
-- stretch during which one action was the content's first qualifying action. A violation
-- is a content takedown, attributed to the first action's user, dated at its takedown time;
-- which action is the first can change only where an action takes effect or is reversed.
-- At each such moment the first is the earliest action (then the smallest id) in effect and
-- not yet reversed; a reversal of the first hands the takedown to the next one (its user,
-- its category, dated at its own actioned_at), or ends it when none is left.
--
--   version_from / version_until   the stretch (version_until 'infinity': still at T)
--   known_from                     null when the stretch starts at the action itself; else
--                                  the reversal that made it the content's takedown
--   known_until                    null while still the takedown at T; else its end
--
-- A view: the tier intervals read it for the changed accounts' contents only, and the
-- filter on content_id (the partition of every window here) applies before the work.
with

takedown_actions as not materialized (

    select * from {{ ref('int_actions_known_at_t') }}
    where action_type in ('content_removed', 'upload_blocked', 'transmission_blocked')
        and content_id is not null

),

content_moments as (

    select
        content_id,
        actioned_at as moment_at
    from takedown_actions
    union
    select
        content_id,
        reversed_at as moment_at
    from takedown_actions
    where reversed_at is not null

),

first_actions as (

    select
        content_moments.content_id,
        content_moments.moment_at,
        first(
            takedown_actions.action_id
            order by takedown_actions.actioned_at, takedown_actions.action_id
        ) as first_action_id

    from content_moments
    inner join takedown_actions
        on
        content_moments.content_id = takedown_actions.content_id
        and content_moments.moment_at >= takedown_actions.actioned_at
        and (
            takedown_actions.reversed_at is null
            or content_moments.moment_at < takedown_actions.reversed_at
        )
    group by content_moments.content_id, content_moments.moment_at

),

-- A moment with no action in effect (every one reversed) has no row above: it ends the
-- stretch before it.
stretches as (

    select
        content_moments.content_id,
        content_moments.moment_at,
        first_actions.first_action_id,
        {{ distinct_from(
            'first_actions.first_action_id',
            'lag(first_actions.first_action_id) over by_time'
        ) }} as is_new

    from content_moments
    left join first_actions
        on
        content_moments.content_id = first_actions.content_id
        and content_moments.moment_at = first_actions.moment_at
    window by_time as (
        partition by content_moments.content_id order by content_moments.moment_at
    )

),

versions as (

    select
        content_id,
        first_action_id,
        moment_at as version_from,
        coalesce(
            lead(moment_at) over (partition by content_id order by moment_at),
            'infinity'::timestamptz
        ) as version_until

    from stretches
    where is_new

),

final as (

    select
        versions.content_id,
        versions.first_action_id as action_id,
        takedown_actions.user_id_ref as user_ref,
        takedown_actions.category_code,
        takedown_actions.actioned_at as violated_at,
        versions.version_from,
        versions.version_until,
        case
            when versions.version_from > takedown_actions.actioned_at
                then versions.version_from
        end as known_from,
        case
            when versions.version_until < 'infinity'::timestamptz
                then versions.version_until
        end as known_until

    from versions
    inner join takedown_actions on versions.first_action_id = takedown_actions.action_id

)

select * from final
