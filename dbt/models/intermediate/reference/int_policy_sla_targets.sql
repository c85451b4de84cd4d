-- SLA target of every clock and category under every policy version. A seed row without a
-- category applies to every category of that clock (the report and referral clocks).
with

versions as not materialized (

    select * from {{ ref('int_policy_versions') }}

),

targets as not materialized (

    select * from {{ ref('policy_sla_targets') }}

),

categories as not materialized (

    select * from {{ ref('int_categories') }}

),

expanded as (

    select
        targets.policy_version,
        targets.clock,
        coalesce(targets.category_code, categories.category_code) as category_code,
        targets.target_minutes,
        -- a row for this very category overrides one for every category
        row_number() over (
            partition by targets.policy_version, targets.clock, categories.category_code
            order by targets.category_code nulls last
        ) as preference

    from targets
    inner join categories
        on targets.category_code is null or targets.category_code = categories.category_code

),

final as (

    select
        expanded.policy_version,
        expanded.clock,
        expanded.category_code,
        expanded.target_minutes,
        versions.near_breach_share,
        versions.valid_from,
        versions.valid_to

    from expanded
    inner join versions on expanded.policy_version = versions.policy_version
    where expanded.preference = 1

)

select * from final
