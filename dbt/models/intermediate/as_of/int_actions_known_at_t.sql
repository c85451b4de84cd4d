-- Enforcement actions that had taken effect by T, with what was known of them at T: a
-- reversal, evidence preservation or posting timestamped after T has not happened yet.
with

actions as not materialized (

    select * from {{ ref('stg_enforcement_actions__actions') }}

),

final as (

    select
        action_id,
        content_id,
        user_id_ref,
        category_code,
        action_type,
        trigger,
        hit_id,
        report_id,
        case when posted_at <= {{ as_of() }} then posted_at end as posted_at,
        detected_at,
        actioned_at,
        case
            when evidence_preserved_at <= {{ as_of() }} then evidence_preserved_at
        end as evidence_preserved_at,
        evidence_ref,
        case when reversed_at <= {{ as_of() }} then reversed_at end as reversed_at,
        -- metrics.md, "qualifying action": a content action with a content id, not
        -- reversed by T.
        (
            action_type in ('content_removed', 'upload_blocked', 'transmission_blocked')
            and content_id is not null
            and (reversed_at is null or reversed_at > {{ as_of() }})
        ) as is_qualifying

    from actions
    where actioned_at <= {{ as_of() }}

)

select * from final
