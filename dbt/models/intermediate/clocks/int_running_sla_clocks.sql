-- Every SLA clock still running at T (metrics.md, Open clocks), whatever share of its target
-- it has used: the rules of which clock runs, written once. fct_open_sla_breaches lists those
-- past the near-breach share (the operations queue); fct_sla_clocks all of them, with the
-- decided clocks.
with

hits as not materialized (

    select * from {{ ref('int_hits_known_at_t') }}

),

actions as not materialized (

    select * from {{ ref('int_actions_known_at_t') }}

),

reports as not materialized (

    select * from {{ ref('int_reports_known_at_t') }}

),

cases as not materialized (

    select * from {{ ref('int_cases_known_at_t') }}

),

sla_targets as not materialized (

    select * from {{ ref('int_policy_sla_targets') }}

),

-- Takedown clocks: content hit by a screening mechanism (not a false positive at T),
-- visible by T and not yet taken down.
taken_down as (

    select distinct content_id from actions
    where is_qualifying

),

posted as (

    select
        content_id,
        min(posted_at) as posted_at
    from (
        select
            content_id,
            posted_at
        from hits
        union all
        select
            content_id,
            posted_at
        from actions
        where content_id is not null
    ) as sightings
    where posted_at is not null
    group by content_id

),

live_hits as (

    select hits.*
    from hits
    where hits.review_status != 'false_positive'
        and hits.content_id not in (select taken_down.content_id from taken_down)

),

-- The clock is judged under the policy in force when the content was posted; among the
-- categories of its live hits, the one with the smallest target (ties: earliest hit).
takedown_clocks as (

    select
        'takedown' as clock,
        live_hits.content_id as subject_id,
        live_hits.category_code,
        posted.posted_at as clock_started_at,
        sla_targets.target_minutes,
        sla_targets.near_breach_share,
        sla_targets.policy_version

    from live_hits
    inner join posted on live_hits.content_id = posted.content_id
    inner join sla_targets
        on sla_targets.clock = 'takedown'
        and live_hits.category_code = sla_targets.category_code
        and posted.posted_at >= sla_targets.valid_from
        and (sla_targets.valid_to is null or posted.posted_at < sla_targets.valid_to)
    qualify row_number() over (
            partition by live_hits.content_id
            order by sla_targets.target_minutes, live_hits.detected_at, live_hits.hit_id
        ) = 1

),

report_clocks as (

    -- A report resolved without an acknowledgement missed that target (fct_reports says
    -- so), but its handling is over: it leaves the queue.
    select
        'report_acknowledgement' as clock,
        report_id as subject_id,
        category_code,
        received_at as clock_started_at
    from reports
    where acknowledged_at is null and resolved_at is null

    union all

    select
        'report_resolution' as clock,
        report_id as subject_id,
        category_code,
        received_at as clock_started_at
    from reports
    where resolved_at is null

    union all

    select
        'referral' as clock,
        case_id as subject_id,
        category_code,
        confirmed_at as clock_started_at
    from cases
    where confirmed_at is not null and referred_at is null

),

other_clocks as (

    select
        report_clocks.clock,
        report_clocks.subject_id,
        report_clocks.category_code,
        report_clocks.clock_started_at,
        sla_targets.target_minutes,
        sla_targets.near_breach_share,
        sla_targets.policy_version

    from report_clocks
    inner join sla_targets
        on report_clocks.clock = sla_targets.clock
        and report_clocks.category_code = sla_targets.category_code
        and report_clocks.clock_started_at >= sla_targets.valid_from
        and (
            sla_targets.valid_to is null
            or report_clocks.clock_started_at < sla_targets.valid_to
        )

),

running as (

    select * from takedown_clocks
    union all
    select * from other_clocks

),

final as (

    select
        clock,
        subject_id,
        category_code,
        clock_started_at,
        target_minutes,
        near_breach_share,
        policy_version,
        {{ add_minutes('clock_started_at', 'target_minutes') }} as deadline_at,
        {{ minutes_between('clock_started_at', as_of()) }} as elapsed_minutes

    from running

)

select * from final
