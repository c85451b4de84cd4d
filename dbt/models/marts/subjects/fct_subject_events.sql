-- What happened to each subject by T, for the operations drill-down: one row per event of a
-- screening hit, enforcement action, report or case known at T, under the content, report or
-- case it concerns (docs block fct_subject_events). A report about a content and a case that
-- came from an action on a content are listed under that content too, so a content's page
-- lists everything. The as-of views keep only timestamps at or before T: a review, reversal,
-- acknowledgement, referral... after T is no event yet.
-- A table rebuilt on every run (the serving snapshot copies tables): 1.2 s on the test data
-- (16 thousand events). At L it is about 32 million events: some 50 CPU-seconds to build
-- (most of it writing the rows; 7 the one posting per content) and 20 for the grain test,
-- measured on the test data replicated 2,000 times. Maintaining it by subject, as
-- fct_content_takedowns is by content, is the way down if the incremental run needs it.
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

-- Every posting a hit or an action of the content reported by T.
postings as (

    select
        content_id,
        posted_at,
        'hit' as source_kind,
        hit_id as source_id,
        category_code,
        uploader_id_ref as user_ref
    from hits
    where posted_at is not null

    union all

    select
        content_id,
        posted_at,
        'action' as source_kind,
        action_id as source_id,
        category_code,
        user_id_ref as user_ref
    from actions
    where content_id is not null and posted_at is not null

),

-- The content became visible once: at its earliest posted_at (fct_content_takedowns'
-- posted_at, the takedown clock's start), from the hit that said so, else the action; ties
-- by the smallest id.
first_postings as (

    select * from postings
    qualify row_number() over (
            partition by content_id
            order by posted_at, source_kind = 'action', source_id
        ) = 1

),

content_events as (

    select
        content_id as subject_id,
        detected_at as event_at,
        'hit_detected' as event,
        'hit' as source_kind,
        hit_id as source_id,
        category_code,
        detection_method as detail,
        uploader_id_ref as user_ref
    from hits

    union all

    select
        content_id as subject_id,
        reviewed_at as event_at,
        'hit_reviewed' as event,
        'hit' as source_kind,
        hit_id as source_id,
        category_code,
        review_status as detail,
        uploader_id_ref as user_ref
    from hits
    where reviewed_at is not null

    union all

    select
        content_id as subject_id,
        posted_at as event_at,
        'posted' as event,
        source_kind,
        source_id,
        category_code,
        cast(null as varchar) as detail,
        user_ref
    from first_postings

    union all

    select
        content_id as subject_id,
        actioned_at as event_at,
        'action_taken' as event,
        'action' as source_kind,
        action_id as source_id,
        category_code,
        action_type as detail,
        user_id_ref as user_ref
    from actions
    where content_id is not null

    union all

    select
        content_id as subject_id,
        evidence_preserved_at as event_at,
        'evidence_preserved' as event,
        'action' as source_kind,
        action_id as source_id,
        category_code,
        action_type as detail,
        user_id_ref as user_ref
    from actions
    where content_id is not null and evidence_preserved_at is not null

    union all

    select
        content_id as subject_id,
        reversed_at as event_at,
        'action_reversed' as event,
        'action' as source_kind,
        action_id as source_id,
        category_code,
        action_type as detail,
        user_id_ref as user_ref
    from actions
    where content_id is not null and reversed_at is not null

),

-- A report's events; the account concerned is the reported user (never the reporter).
report_events as (

    select
        report_id,
        content_id,
        received_at as event_at,
        'report_received' as event,
        category_code,
        channel as detail,
        reported_user_id_ref as user_ref
    from reports

    union all

    select
        report_id,
        content_id,
        acknowledged_at as event_at,
        'report_acknowledged' as event,
        category_code,
        cast(null as varchar) as detail,
        reported_user_id_ref as user_ref
    from reports
    where acknowledged_at is not null

    union all

    select
        report_id,
        content_id,
        resolved_at as event_at,
        'report_resolved' as event,
        category_code,
        resolution as detail,
        reported_user_id_ref as user_ref
    from reports
    where resolved_at is not null

    union all

    select
        report_id,
        content_id,
        feedback_sent_at as event_at,
        'feedback_sent' as event,
        category_code,
        cast(null as varchar) as detail,
        reported_user_id_ref as user_ref
    from reports
    where feedback_sent_at is not null

),

-- A case, with the content of the action it came from (if that action is on a content).
cases_with_content as (

    select
        cases.*,
        actions.content_id
    from cases
    left join actions on cases.action_id = actions.action_id

),

-- A case's stages; the account concerned is the case's subject.
case_events as (

    select
        case_id,
        content_id,
        opened_at as event_at,
        'case_opened' as event,
        category_code,
        cast(null as varchar) as detail,
        subject_user_id_ref as user_ref
    from cases_with_content

    union all

    select
        case_id,
        content_id,
        confirmed_at as event_at,
        'case_confirmed' as event,
        category_code,
        cast(null as varchar) as detail,
        subject_user_id_ref as user_ref
    from cases_with_content
    where confirmed_at is not null

    union all

    select
        case_id,
        content_id,
        referred_at as event_at,
        'case_referred' as event,
        category_code,
        authority_type as detail,
        subject_user_id_ref as user_ref
    from cases_with_content
    where referred_at is not null

    union all

    select
        case_id,
        content_id,
        authority_accepted_at as event_at,
        'authority_accepted' as event,
        category_code,
        authority_type as detail,
        subject_user_id_ref as user_ref
    from cases_with_content
    where authority_accepted_at is not null

    union all

    select
        case_id,
        content_id,
        closed_at as event_at,
        'case_closed' as event,
        category_code,
        outcome as detail,
        subject_user_id_ref as user_ref
    from cases_with_content
    where closed_at is not null

),

final as (

    select
        'content' as subject_kind,
        subject_id,
        event_at,
        event,
        source_kind,
        source_id,
        category_code,
        detail,
        user_ref
    from content_events

    union all

    select
        'report' as subject_kind,
        report_id as subject_id,
        event_at,
        event,
        'report' as source_kind,
        report_id as source_id,
        category_code,
        detail,
        user_ref
    from report_events

    union all

    select
        'content' as subject_kind,
        content_id as subject_id,
        event_at,
        event,
        'report' as source_kind,
        report_id as source_id,
        category_code,
        detail,
        user_ref
    from report_events
    where content_id is not null

    union all

    select
        'case' as subject_kind,
        case_id as subject_id,
        event_at,
        event,
        'case' as source_kind,
        case_id as source_id,
        category_code,
        detail,
        user_ref
    from case_events

    union all

    select
        'content' as subject_kind,
        content_id as subject_id,
        event_at,
        event,
        'case' as source_kind,
        case_id as source_id,
        category_code,
        detail,
        user_ref
    from case_events
    where content_id is not null

)

select * from final
