-- Every SLA clock still running at T that has used at least the near-breach share (75%)
-- of its target: the operations queue (metrics.md, Open clocks). Which clocks run is
-- int_running_sla_clocks'.
with

running as not materialized (

    select * from {{ ref('int_running_sla_clocks') }}

),

final as (

    select
        clock,
        subject_id,
        category_code,
        clock_started_at,
        target_minutes,
        elapsed_minutes,
        case
            when elapsed_minutes > target_minutes then 'breach'
            else 'near_breach'
        end as status,
        deadline_at,
        policy_version,
        {{ as_of() }} as as_of

    from running
    where elapsed_minutes >= near_breach_share * target_minutes

)

select * from final
