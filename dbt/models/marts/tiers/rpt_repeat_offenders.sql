-- The black and grey list at T, most violations first (offender_rank 1 = most), with the
-- category the account violated most. Pseudonymous references only: operations use it;
-- research exports never include it.
with

tiers as not materialized (

    select * from {{ ref('dim_user_tiers') }}
    where tier in ('black', 'grey')

),

takedowns as not materialized (

    select * from {{ ref('fct_content_takedowns') }}

),

top_category as (

    select
        user_ref,
        category_code as top_category_code

    from takedowns
    where user_ref in (select tiers.user_ref from tiers)
    group by user_ref, category_code
    qualify row_number() over (
            partition by user_ref
            order by count(*) desc, max(taken_down_at) desc, category_code
        ) = 1

),

final as (

    select
        row_number() over (
            order by
                tiers.violations_total desc,
                tiers.violations_180d desc,
                tiers.last_violation_at desc nulls last,
                tiers.user_ref asc
        ) as offender_rank,
        tiers.user_ref,
        tiers.tier,
        tiers.tier_reason,
        tiers.violations_total,
        tiers.violations_180d,
        tiers.zero_tolerance_violations,
        tiers.reports_30d,
        tiers.last_violation_at,
        tiers.tier_since,
        top_category.top_category_code

    from tiers
    left join top_category on tiers.user_ref = top_category.user_ref

)

select * from final
