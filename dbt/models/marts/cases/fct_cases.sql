-- One row per case opened by T, its state at T and its referral clock (from confirmation
-- to referral), judged under the policy in force when the crime was confirmed.
with

cases as not materialized (

    select * from {{ ref('int_cases_known_at_t') }}

),

sla_targets as not materialized (

    select * from {{ ref('int_policy_sla_targets') }}
    where clock = 'referral'

),

final as (

    select
        cases.case_id,
        cases.opened_at,
        cases.category_code,
        cases.subject_user_id_ref as subject_user_ref,
        cases.action_id,
        cases.victims_count,
        cases.youngest_victim_age_band,
        cases.confirmed_at,
        cases.referred_at,
        cases.authority_type,
        cases.authority_accepted_at,
        cases.outcome,
        cases.victim_support,
        cases.support_types,
        cases.closed_at,
        sla_targets.target_minutes as referral_target_minutes,
        {{ minutes_between('cases.confirmed_at', 'cases.referred_at') }} / 60.0
            as hours_to_referral,
        case
            when cases.confirmed_at is not null
                then {{ is_within_target(
                    'cases.confirmed_at', 'cases.referred_at', 'sla_targets.target_minutes'
                ) }}
        end as is_referral_within_target,
        sla_targets.policy_version,
        {{ local_month_start('cases.opened_at') }} as month_start

    from cases
    left join sla_targets
        on cases.category_code = sla_targets.category_code
        and cases.confirmed_at >= sla_targets.valid_from
        and (sla_targets.valid_to is null or cases.confirmed_at < sla_targets.valid_to)

)

select * from final
