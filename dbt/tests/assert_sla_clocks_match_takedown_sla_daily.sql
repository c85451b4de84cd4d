-- fct_sla_clocks must give rpt_takedown_sla_daily's numbers, exactly, per (report_date,
-- category_code): the decided takedown clocks are the day's takedowns, those on time its
-- within_sla, and the evidence clocks its evidence_on_time_rate. Takedown clocks still
-- running or missed at T have no report_date and no row there. Returns what disagrees.
with

clocks as (

    select
        report_date,
        category_code,
        count(*) filter (where clock = 'takedown' and is_decided) as takedowns,
        count(*) filter (where clock = 'takedown' and is_on_time) as within_sla,
        {{ safe_rate(
            "count(*) filter (where clock = 'evidence' and is_on_time)",
            "count(*) filter (where clock = 'evidence' and is_decided)"
        ) }} as evidence_on_time_rate

    from {{ ref('fct_sla_clocks') }}
    where clock in ('takedown', 'evidence') and report_date is not null
    group by report_date, category_code

),

daily as (

    select * from {{ ref('rpt_takedown_sla_daily') }}

)

select
    coalesce(clocks.report_date, daily.report_date) as report_date,
    coalesce(clocks.category_code, daily.category_code) as category_code,
    clocks.takedowns as clock_takedowns,
    daily.takedowns as daily_takedowns,
    clocks.within_sla as clock_within_sla,
    daily.within_sla as daily_within_sla,
    clocks.evidence_on_time_rate as clock_evidence_on_time_rate,
    daily.evidence_on_time_rate as daily_evidence_on_time_rate

from clocks
full outer join daily
    on clocks.report_date = daily.report_date
    and clocks.category_code = daily.category_code
where {{ distinct_from('clocks.takedowns', 'daily.takedowns') }}
    or {{ distinct_from('clocks.within_sla', 'daily.within_sla') }}
    or {{ distinct_from('clocks.evidence_on_time_rate', 'daily.evidence_on_time_rate') }}
