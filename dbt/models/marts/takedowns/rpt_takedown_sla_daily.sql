-- Takedown SLA per day (reporting time zone, by taken_down_at) and category.
with

takedowns as not materialized (

    select * from {{ ref('fct_content_takedowns') }}

),

final as (

    select
        report_date,
        category_code,
        count(*) as takedowns,
        count(*) filter (where is_prevented) as prevented,
        count(*) filter (where is_within_sla) as within_sla,
        count(*) filter (where not is_within_sla) as breached,
        {{ safe_rate('count(*) filter (where is_within_sla)', 'count(*)') }} as compliance_rate,
        quantile_cont(exposure_minutes, 0.5) filter (where not is_prevented)
            as median_exposure_minutes,
        quantile_cont(exposure_minutes, 0.9) filter (where not is_prevented)
            as p90_exposure_minutes,
        {{ safe_rate('count(*) filter (where is_evidence_on_time)', 'count(*)') }}
            as evidence_on_time_rate

    from takedowns
    group by report_date, category_code

)

select * from final
