-- Case outcomes and victim support per month opened (reporting time zone) and category.
with

cases as not materialized (

    select * from {{ ref('fct_cases') }}

),

final as (

    select
        month_start,
        category_code,
        count(*) as cases_opened,
        count(confirmed_at) as confirmed,
        count(referred_at) as referred,
        count(is_referral_within_target) as referral_decided,
        count(*) filter (where is_referral_within_target) as referral_on_time,
        {{ safe_rate(
            'count(*) filter (where is_referral_within_target)',
            'count(is_referral_within_target)'
        ) }} as referral_compliance_rate,
        count(authority_accepted_at) as authority_accepted,
        count(*) filter (where outcome in ('prosecuted', 'convicted')) as prosecuted,
        count(*) filter (where outcome = 'convicted') as convicted,
        coalesce(sum(victims_count), 0)::bigint as victims,
        count(*) filter (where victim_support in ('offered', 'accepted', 'declined'))
            as support_offered,
        count(*) filter (where victim_support = 'accepted') as support_accepted,
        quantile_cont(hours_to_referral, 0.5) filter (where referred_at is not null)
            as median_hours_to_referral

    from cases
    group by month_start, category_code

)

select * from final
