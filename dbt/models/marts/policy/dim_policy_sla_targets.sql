-- The published copy of the reference model int_policy_sla_targets (models/intermediate/reference):
-- the dashboards, exports and outside tools read this one, under its contract.
with

reference as not materialized (

    select * from {{ ref('int_policy_sla_targets') }}

),

final as (

    select
        policy_version,
        clock,
        category_code,
        target_minutes,
        near_breach_share,
        valid_from,
        valid_to

    from reference

)

select * from final
