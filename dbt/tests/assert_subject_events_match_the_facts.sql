-- fct_subject_events agrees with the facts published at grain content, report and case:
-- - a content is in fct_content_takedowns exactly when its page lists an action_taken of a
--   qualifying action_type with no action_reversed of the same action by T, and its first
--   action's action_taken is there at taken_down_at (the takedown clock's stop);
-- - every report of fct_reports has its report_received at received_at, under the report and,
--   when it names a content, under the content;
-- - every case of fct_cases has its case_opened at opened_at.
with

events as (

    select * from {{ ref('fct_subject_events') }}

),

takedowns as (

    select * from {{ ref('fct_content_takedowns') }}

),

reports as (

    select * from {{ ref('fct_reports') }}

),

cases as (

    select * from {{ ref('fct_cases') }}

),

qualifying_from_events as (

    select distinct taken.subject_id as content_id
    from events as taken
    where taken.subject_kind = 'content'
        and taken.event = 'action_taken'
        and taken.detail in ('content_removed', 'upload_blocked', 'transmission_blocked')
        and not exists (
            select 1 from events as reversed
            where reversed.subject_kind = 'content'
                and reversed.subject_id = taken.subject_id
                and reversed.event = 'action_reversed'
                and reversed.source_id = taken.source_id
        )

)

select content_id as subject_id, 'takedown without a qualifying action_taken' as problem
from takedowns
where content_id not in (select content_id from qualifying_from_events)

union all

select content_id, 'qualifying action_taken without a takedown'
from qualifying_from_events
where content_id not in (select content_id from takedowns)

union all

select takedowns.content_id, 'no action_taken of the first action at taken_down_at'
from takedowns
where not exists (
    select 1 from events
    where events.subject_kind = 'content'
        and events.subject_id = takedowns.content_id
        and events.event = 'action_taken'
        and events.source_id = takedowns.first_action_id
        and events.event_at = takedowns.taken_down_at
)

union all

select reports.report_id, 'no report_received at received_at'
from reports
where not exists (
    select 1 from events
    where events.subject_kind = 'report'
        and events.subject_id = reports.report_id
        and events.event = 'report_received'
        and events.event_at = reports.received_at
)

union all

select reports.report_id, 'report not listed under its content'
from reports
where reports.content_id is not null
    and not exists (
        select 1 from events
        where events.subject_kind = 'content'
            and events.subject_id = reports.content_id
            and events.event = 'report_received'
            and events.source_id = reports.report_id
            and events.event_at = reports.received_at
    )

union all

select cases.case_id, 'no case_opened at opened_at'
from cases
where not exists (
    select 1 from events
    where events.subject_kind = 'case'
        and events.subject_id = cases.case_id
        and events.event = 'case_opened'
        and events.event_at = cases.opened_at
)
