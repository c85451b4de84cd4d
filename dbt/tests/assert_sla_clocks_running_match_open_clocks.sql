-- The clocks fct_sla_clocks holds as not stopped at T (evidence aside) are exactly the
-- running clocks of int_running_sla_clocks, the rules behind the operations queue
-- (fct_open_sla_breaches): same category, start, target, elapsed time and policy, and
-- `running` up to the deadline, `missed` past it (a breach in the queue). Report and referral
-- clocks come from fct_reports / fct_cases here, so the two readings of "running" must agree.
-- Returns what disagrees.
with

clocks as (

    select * from {{ ref('fct_sla_clocks') }}
    where stopped_at is null and clock != 'evidence'

),

running as (

    select * from {{ ref('int_running_sla_clocks') }}

)

select
    coalesce(clocks.clock, running.clock) as clock,
    coalesce(clocks.subject_id, running.subject_id) as subject_id,
    clocks.state,
    running.elapsed_minutes as running_elapsed_minutes,
    running.target_minutes as running_target_minutes

from clocks
full outer join running
    on clocks.clock = running.clock
    and clocks.subject_id = running.subject_id
where clocks.subject_id is null
    or running.subject_id is null
    or {{ distinct_from('clocks.category_code', 'running.category_code') }}
    or {{ distinct_from('clocks.clock_started_at', 'running.clock_started_at') }}
    or {{ distinct_from('clocks.deadline_at', 'running.deadline_at') }}
    or {{ distinct_from('clocks.target_minutes', 'running.target_minutes') }}
    or {{ distinct_from('clocks.elapsed_minutes', 'running.elapsed_minutes') }}
    or {{ distinct_from('clocks.policy_version', 'running.policy_version') }}
    or clocks.state != case
        when running.elapsed_minutes > running.target_minutes then 'missed'
        else 'running'
    end
