-- Accounts per tier at the end of every local day (reporting time zone), from the first day
-- a tier stretch starts up to the local day of T; zeros included, so every (day, tier) is
-- there. Serves the dashboards' tier counts at a day's or week's end without a range join
-- over fct_user_tier_history.
--
-- An account counts on day d when its stretch covers the end of d (day_end = local
-- midnight after d): valid_from < day_end and (valid_to is null or valid_to >= day_end).
-- A stretch therefore adds 1 from the first day whose end is strictly after valid_from and
-- removes it from the first day whose end is strictly after valid_to; that day is the local
-- date of the moment in both cases (a moment exactly at midnight belongs to the day it
-- starts). The count of a day is the running sum of those +1/-1 up to it.
with

history as not materialized (

    select * from {{ ref('fct_user_tier_history') }}

),

tiers as (

    select listed.tier from (values ('black'), ('grey'), ('white'), ('none')) as listed (tier)

),

changes as (

    select
        {{ local_date('valid_from') }} as report_date,
        tier,
        1 as delta
    from history
    union all
    select
        {{ local_date('valid_to') }} as report_date,
        tier,
        -1 as delta
    from history
    where valid_to is not null

),

daily_changes as (

    select
        report_date,
        tier,
        sum(delta) as delta
    from changes
    group by report_date, tier

),

bounds as (

    select
        min({{ local_date('valid_from') }}) as first_day,
        {{ local_date(as_of()) }} as last_day

    from history

),

days as (

    select cast(series.day as date) as report_date
    from bounds
    cross join
        range(
            cast(bounds.first_day as timestamp),
            cast(bounds.last_day as timestamp) + interval 1 day,
            interval 1 day
        ) as series (day)
    where bounds.first_day is not null

),

grid as (

    select
        days.report_date,
        tiers.tier
    from days
    cross join tiers

),

final as (

    select
        grid.report_date,
        grid.tier,
        cast(
            sum(coalesce(daily_changes.delta, 0)) over (
                partition by grid.tier order by grid.report_date
                rows between unbounded preceding and current row
            ) as bigint
        ) as users

    from grid
    left join daily_changes
        on grid.report_date = daily_changes.report_date
        and grid.tier = daily_changes.tier

)

select * from final
