-- fct_sla_clocks must give rpt_case_outcomes_monthly's referral numbers, exactly, per
-- (month_start, category_code): referral clocks decided and on time are referral_decided and
-- referral_on_time (a month with cases but none confirmed has no referral clock: zeros).
-- Returns what disagrees.
with

clocks as (

    select
        month_start,
        category_code,
        count(*) filter (where is_decided) as referral_decided,
        count(*) filter (where is_on_time) as referral_on_time

    from {{ ref('fct_sla_clocks') }}
    where clock = 'referral'
    group by month_start, category_code

),

monthly as (

    select * from {{ ref('rpt_case_outcomes_monthly') }}

)

select
    coalesce(clocks.month_start, monthly.month_start) as month_start,
    coalesce(clocks.category_code, monthly.category_code) as category_code,
    clocks.referral_decided as clock_referral_decided,
    monthly.referral_decided as monthly_referral_decided,
    clocks.referral_on_time as clock_referral_on_time,
    monthly.referral_on_time as monthly_referral_on_time

from clocks
full outer join monthly
    on clocks.month_start = monthly.month_start
    and clocks.category_code = monthly.category_code
where {{ distinct_from('coalesce(clocks.referral_decided, 0)', 'monthly.referral_decided') }}
    or {{ distinct_from('coalesce(clocks.referral_on_time, 0)', 'monthly.referral_on_time') }}
