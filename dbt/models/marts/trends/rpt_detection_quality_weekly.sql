-- Screening quality per ISO week of detection (reporting time zone) and detection method:
-- how many hits were reviewed and how many of those were confirmed (precision). Weeks from
-- the first to the last with hits, every method seen, zeros included.
with

hits as not materialized (

    select * from {{ ref('int_hits_known_at_t') }}

),

methods as (

    select distinct detection_method from hits

),

weekly as (

    select
        {{ local_week_start('detected_at') }} as week_start,
        detection_method,
        count(*) as hits,
        count(*) filter (where review_status != 'pending') as reviewed,
        count(*) filter (where review_status = 'confirmed') as confirmed,
        count(*) filter (where review_status = 'false_positive') as false_positives,
        count(*) filter (where review_status = 'pending') as pending,
        quantile_cont(
            {{ minutes_between('detected_at', 'reviewed_at') }}, 0.5
        ) filter (where review_status != 'pending') as median_minutes_to_review

    from hits
    group by all

),

weeks as (

    select cast(series.week_start as date) as week_start
    from range(
            (select min(week_start) from weekly),
            (select max(week_start) from weekly) + interval 7 day,
            interval 7 day
        ) as series (week_start)

),

final as (

    select
        weeks.week_start,
        methods.detection_method,
        coalesce(weekly.hits, 0) as hits,
        coalesce(weekly.reviewed, 0) as reviewed,
        coalesce(weekly.confirmed, 0) as confirmed,
        coalesce(weekly.false_positives, 0) as false_positives,
        coalesce(weekly.pending, 0) as pending,
        {{ safe_rate('weekly.confirmed', 'weekly.reviewed') }} as precision,
        weekly.median_minutes_to_review

    from weeks
    cross join methods
    left join weekly
        on weeks.week_start = weekly.week_start
        and methods.detection_method = weekly.detection_method

)

select * from final
