-- rpt_tier_counts_daily (a running sum of +1/-1 per local day) must agree with the
-- definition it stands for, a range join over fct_user_tier_history: accounts whose stretch
-- covers the end of the day. Checked on every 7th day and the last one (the full range join
-- is what the mart avoids), every tier, zeros included.
with

counts as (

    select * from {{ ref('rpt_tier_counts_daily') }}

),

history as (

    select * from {{ ref('fct_user_tier_history') }}

),

sampled as (

    select
        report_date,
        tier,
        users,
        timezone('{{ var("reporting_tz") }}', report_date + interval 1 day) as day_end

    from counts
    where date_diff('day', (select min(report_date) from counts), report_date) % 7 = 0
        or report_date = (select max(report_date) from counts)

),

expected as (

    select sampled.report_date, sampled.tier, count(history.user_ref) as users
    from sampled
    left join history
        on history.tier = sampled.tier
        and history.valid_from < sampled.day_end
        and (history.valid_to is null or history.valid_to >= sampled.day_end)
    group by sampled.report_date, sampled.tier

)

select
    sampled.report_date,
    sampled.tier,
    sampled.users as mart_users,
    expected.users as expected_users

from sampled
inner join expected
    on sampled.report_date = expected.report_date
    and sampled.tier = expected.tier
where sampled.users != expected.users

union all

-- every stretch must be counted somewhere: nothing starts before the first day
select min({{ local_date('valid_from') }}), null, null, null
from history
having min({{ local_date('valid_from') }}) < (select min(report_date) from counts)
    or (count(*) > 0 and (select count(*) from counts) = 0)
