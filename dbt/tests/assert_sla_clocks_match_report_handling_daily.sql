-- fct_sla_clocks must give rpt_report_handling_daily's numbers, exactly, per (report_date,
-- category_code), summed over channels: acknowledgement clocks decided and on time are
-- ack_decided and ack_on_time, resolution clocks resolution_decided and resolution_on_time.
-- Returns what disagrees.
with

clocks as (

    select
        report_date,
        category_code,
        count(*) filter (where clock = 'report_acknowledgement' and is_decided) as ack_decided,
        count(*) filter (where clock = 'report_acknowledgement' and is_on_time) as ack_on_time,
        count(*) filter (where clock = 'report_resolution' and is_decided) as resolution_decided,
        count(*) filter (where clock = 'report_resolution' and is_on_time) as resolution_on_time

    from {{ ref('fct_sla_clocks') }}
    where clock in ('report_acknowledgement', 'report_resolution')
    group by report_date, category_code

),

daily as (

    select
        report_date,
        category_code,
        sum(ack_decided) as ack_decided,
        sum(ack_on_time) as ack_on_time,
        sum(resolution_decided) as resolution_decided,
        sum(resolution_on_time) as resolution_on_time

    from {{ ref('rpt_report_handling_daily') }}
    group by report_date, category_code

)

select
    coalesce(clocks.report_date, daily.report_date) as report_date,
    coalesce(clocks.category_code, daily.category_code) as category_code,
    clocks.ack_decided as clock_ack_decided,
    daily.ack_decided as daily_ack_decided,
    clocks.ack_on_time as clock_ack_on_time,
    daily.ack_on_time as daily_ack_on_time,
    clocks.resolution_decided as clock_resolution_decided,
    daily.resolution_decided as daily_resolution_decided,
    clocks.resolution_on_time as clock_resolution_on_time,
    daily.resolution_on_time as daily_resolution_on_time

from clocks
full outer join daily
    on clocks.report_date = daily.report_date
    and clocks.category_code = daily.category_code
where {{ distinct_from('clocks.ack_decided', 'daily.ack_decided') }}
    or {{ distinct_from('clocks.ack_on_time', 'daily.ack_on_time') }}
    or {{ distinct_from('clocks.resolution_decided', 'daily.resolution_decided') }}
    or {{ distinct_from('clocks.resolution_on_time', 'daily.resolution_on_time') }}
