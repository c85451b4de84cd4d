-- Cases opened by T, as they stood at T: a confirmation, referral, acceptance or closure
-- timestamped after T has not happened yet. `outcome` and `victim_support` are the current
-- version's (feeds carry no timestamp for them).
with

cases as not materialized (

    select * from {{ ref('stg_cases__cases') }}

),

final as (

    select
        case_id,
        opened_at,
        category_code,
        subject_user_id_ref,
        action_id,
        victims_count,
        youngest_victim_age_band,
        case when confirmed_at <= {{ as_of() }} then confirmed_at end as confirmed_at,
        case when referred_at <= {{ as_of() }} then referred_at end as referred_at,
        authority_type,
        case
            when authority_accepted_at <= {{ as_of() }} then authority_accepted_at
        end as authority_accepted_at,
        outcome,
        victim_support,
        support_types,
        case when closed_at <= {{ as_of() }} then closed_at end as closed_at

    from cases
    where opened_at <= {{ as_of() }}

)

select * from final
