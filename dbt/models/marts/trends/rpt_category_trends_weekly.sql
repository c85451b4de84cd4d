-- Weekly trend per category (ISO weeks in the reporting time zone): confirmed hits,
-- reports, takedowns, the proactive share and spikes. Every (week, category) pair from the
-- first to the last week with data is present, zeros included, so a quiet week reads as 0
-- and the spike statistics see it.
with

hits as not materialized (

    select * from {{ ref('int_hits_known_at_t') }}

),

reports as not materialized (

    select * from {{ ref('int_reports_known_at_t') }}

),

takedowns as not materialized (

    select * from {{ ref('fct_content_takedowns') }}

),

categories as not materialized (

    select * from {{ ref('int_categories') }}

),

confirmed_hits as (

    select
        {{ local_week_start('detected_at') }} as week_start,
        category_code,
        count(*) as confirmed_hits

    from hits
    where review_status = 'confirmed'
    group by all

),

reports_received as (

    select
        {{ local_week_start('received_at') }} as week_start,
        category_code,
        count(*) as reports_received

    from reports
    group by all

),

weekly_takedowns as (

    select
        {{ local_week_start('taken_down_at') }} as week_start,
        category_code,
        count(*) as takedowns,
        count(*) filter (where trigger = 'proactive') as proactive_takedowns

    from takedowns
    group by all

),

weeks_with_data as (

    select week_start from confirmed_hits
    union
    select week_start from reports_received
    union
    select week_start from weekly_takedowns

),

weeks as (

    select cast(series.week_start as date) as week_start
    from range(
            (select min(week_start) from weeks_with_data),
            (select max(week_start) from weeks_with_data) + interval 7 day,
            interval 7 day
        ) as series (week_start)

),

grid as (

    select
        weeks.week_start,
        categories.category_code
    from weeks
    cross join categories

),

filled as (

    select
        grid.week_start,
        grid.category_code,
        coalesce(confirmed_hits.confirmed_hits, 0) as confirmed_hits,
        coalesce(reports_received.reports_received, 0) as reports_received,
        coalesce(weekly_takedowns.takedowns, 0) as takedowns,
        coalesce(weekly_takedowns.proactive_takedowns, 0) as proactive_takedowns

    from grid
    left join confirmed_hits
        on grid.week_start = confirmed_hits.week_start
        and grid.category_code = confirmed_hits.category_code
    left join reports_received
        on grid.week_start = reports_received.week_start
        and grid.category_code = reports_received.category_code
    left join weekly_takedowns
        on grid.week_start = weekly_takedowns.week_start
        and grid.category_code = weekly_takedowns.category_code

),

with_history as (

    select
        *,
        lag(takedowns) over by_week as takedowns_prev_week,
        count(*) over previous_8 as previous_weeks,
        avg(takedowns) over previous_8 as previous_mean,
        stddev_samp(takedowns) over previous_8 as previous_stddev

    from filled
    window
        by_week as (partition by category_code order by week_start),
        previous_8 as (
            partition by category_code order by week_start
            rows between 8 preceding and 1 preceding
        )

),

final as (

    select
        week_start,
        category_code,
        confirmed_hits,
        reports_received,
        takedowns,
        proactive_takedowns,
        {{ safe_rate('proactive_takedowns', 'takedowns') }} as proactive_share,
        takedowns_prev_week,
        coalesce(
            previous_weeks >= 4 and takedowns > previous_mean + 3 * previous_stddev,
            false
        ) as is_spike

    from with_history

)

select * from final
