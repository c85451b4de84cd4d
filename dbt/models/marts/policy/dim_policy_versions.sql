-- The published copy of the reference model int_policy_versions (models/intermediate/reference):
-- the dashboards, exports and outside tools read this one, under its contract.
with

reference as not materialized (

    select * from {{ ref('int_policy_versions') }}

),

final as (

    select
        policy_version,
        valid_from,
        valid_to,
        near_breach_share,
        approved_by,
        description

    from reference

)

select * from final
